"""Generated credentials and the key ring: file format, mode, boto3 compatibility, reloads."""

from __future__ import annotations

import logging
import stat
import threading
from pathlib import Path

import botocore.session
import pytest

from engine.api.auth import AcceptAnyAuthenticator
from engine.api.keys import (
    CredentialsFileError,
    KeyRing,
    create_default_credentials,
    read_credentials_file,
    read_default_key,
)
from engine.api.security import open_api_security
from engine.api.settings import ApiSettings
from engine.api.sigv4 import SigV4Authenticator
from engine.config import EngineSettings


def test_default_credentials_are_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "credentials"
    assert create_default_credentials(path)
    first = path.read_text()
    assert not create_default_credentials(path)
    assert path.read_text() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_default_key(path)
    assert key.access_key_id.startswith("AKIA") and len(key.access_key_id) == 20
    assert len(key.secret_access_key) == 40 and key.account.isdigit() and len(key.account) == 12
    assert key.secret_access_key not in repr(key)


def test_concurrent_creation_keeps_one_file(tmp_path):
    path = tmp_path / "credentials"
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(create_default_credentials(path)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert len(read_credentials_file(path)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["credentials"]


def test_boto3_reads_the_generated_file(tmp_path, monkeypatch):
    path = tmp_path / "credentials"
    create_default_credentials(path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    credentials = botocore.session.Session().get_credentials()
    key = read_default_key(path)
    assert (credentials.access_key, credentials.secret_key) == (
        key.access_key_id,
        key.secret_access_key,
    )


def test_every_profile_is_a_key_and_the_account_defaults_to_the_profile(tmp_path):
    path = tmp_path / "keys"
    path.write_text(
        "[alice]\naws_access_key_id = A1\naws_secret_access_key = s1\n"
        "[bob]\naws_access_key_id = B1\naws_secret_access_key = s2\nmodengine_account = shared\n"
        "[incomplete]\naws_access_key_id = C1\n"
    )
    keys = {key.access_key_id: key.account for key in read_credentials_file(path)}
    assert keys == {"A1": "alice", "B1": "shared"}


def test_conflicting_duplicate_key_ids_are_refused(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_text("[a]\naws_access_key_id = K\naws_secret_access_key = one\n")
    second.write_text("[b]\naws_access_key_id = K\naws_secret_access_key = two\n")
    with pytest.raises(CredentialsFileError) as raised:
        KeyRing([first, second])
    assert "one" not in str(raised.value) and "two" not in str(raised.value)


def test_the_ring_rereads_changed_files_and_keeps_old_keys_if_the_new_file_is_broken(
    tmp_path, caplog
):
    now = [0.0]
    path = tmp_path / "keys"
    path.write_text("[a]\naws_access_key_id = K1\naws_secret_access_key = s1\n")
    ring = KeyRing([path], clock=lambda: now[0])
    assert ring.find("K1") is not None and ring.find("K2") is None
    path.write_text("[a]\naws_access_key_id = K2\naws_secret_access_key = s2\n")
    assert ring.find("K2") is not None  # a miss re-reads at once
    path.write_text(
        "[a]\naws_secret_access_key = leaked-secret\n  stray continuation\nno equals sign here\n["
    )
    now[0] += 5
    with caplog.at_level(logging.DEBUG):
        assert ring.find("K2") is not None
    assert "keeping the previous access keys" in caplog.text
    assert "leaked-secret" not in caplog.text


def test_security_from_settings_creates_credentials_and_honours_the_switch(tmp_path):
    settings = EngineSettings(data_dir=tmp_path)
    secured = open_api_security(ApiSettings.from_engine_settings(settings), tmp_path)
    assert (
        secured.credentials_file == tmp_path / "credentials" and secured.credentials_file.exists()
    )
    assert isinstance(secured.authenticator, SigV4Authenticator)
    open_local = open_api_security(ApiSettings(auth_enabled=False), tmp_path)
    assert isinstance(open_local.authenticator, AcceptAnyAuthenticator)


def test_api_settings_come_from_the_engine_settings():
    api = ApiSettings.from_engine_settings(EngineSettings(
        data_dir=Path("/tmp/x"), api_auth_enabled=False, api_get_rate_per_s=3.0, api_get_burst=4,
        api_credentials_file=Path("/etc/more-keys"),
    ))
    assert (api.auth_enabled, api.get_rate_per_s, api.get_burst) == (False, 3.0, 4)
    assert str(api.extra_credentials_file) == "/etc/more-keys"
    assert api.start_burst == ApiSettings().start_burst


def test_serve_refuses_to_listen_beyond_loopback_with_authentication_off(tmp_path):
    from engine.server import serve

    settings = EngineSettings(data_dir=tmp_path, api_auth_enabled=False)
    with pytest.raises(SystemExit) as refused:
        serve(settings, host="0.0.0.0", port=1, runner_factory=lambda: None)
    assert "authentication disabled" in str(refused.value)
