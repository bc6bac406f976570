"""`modengine keys` create / list / rotate / revoke against a running server, never restarted:
it re-reads the credentials file (engine/api/keys.py), so a new key works at once, and a
revoked key or a rotated-out key past its grace period is refused exactly as an unknown key is
(UnrecognizedClientException, same status and message) within the re-read interval.
"""

from __future__ import annotations

import stat
import time

import pytest
from botocore.exceptions import ClientError

from engine.api.keys import RECHECK_INTERVAL_S, read_profile_key
from engine.cli import main
from tests.integration.api_fixtures import rekognition_client, scripted_server

pytestmark = pytest.mark.integration

NO_JOB = "0" * 64
ACCOUNT = "345678901234"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("keys-api")
    with scripted_server(data_dir) as (url, _jobs, _settings):
        yield url, data_dir


def outcome(url: str, keys: tuple[str, str]) -> tuple[str, int, str]:
    """What a GetContentModeration for no job answers this key: ResourceNotFound once the key
    is accepted (the caller is authenticated), an authentication error otherwise."""
    client = rekognition_client(url, keys=keys)
    with pytest.raises(ClientError) as raised:
        client.get_content_moderation(JobId=NO_JOB)
    response = raised.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"]["Message"])


def eventually(check, timeout_s: float = RECHECK_INTERVAL_S + 3.0):
    """`check()` once it is true, polling; the last value otherwise (for the assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def keys_of(data_dir, profile: str) -> tuple[str, str]:
    key = read_profile_key(data_dir / "credentials", profile)
    return key.access_key_id, key.secret_access_key


def run(data_dir, *argv: str) -> int:
    return main(["keys", *argv, "--data-dir", str(data_dir)])


def test_create_list_rotate_revoke_without_a_restart(server, capsys):
    url, data_dir = server
    credentials = data_dir / "credentials"
    unknown = outcome(url, ("AKIANEVERISSUEDKEY00", "no-such-secret-000000000000000000000000"))
    assert unknown[:2] == ("UnrecognizedClientException", 403)

    assert run(data_dir, "create", "--account", ACCOUNT, "--profile", "tenant") == 0
    created = keys_of(data_dir, "tenant")
    printed = capsys.readouterr().out
    assert created[0] in printed and created[1] not in printed
    assert outcome(url, created)[0] == "ResourceNotFoundException"  # accepted at once
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600

    assert run(data_dir, "list") == 0
    listed = capsys.readouterr().out
    assert created[0] in listed and ACCOUNT in listed and created[1] not in listed

    assert run(data_dir, "rotate", created[0], "--grace", "2") == 0
    rotated = keys_of(data_dir, "tenant")
    assert rotated[0] != created[0] and rotated[1] not in capsys.readouterr().out
    assert eventually(lambda: outcome(url, rotated)[0] == "ResourceNotFoundException")
    assert outcome(url, created)[0] == "ResourceNotFoundException"  # within its grace
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    # Past the grace period the old key is unknown.
    assert eventually(lambda: outcome(url, created) == unknown, timeout_s=5.0)

    assert run(data_dir, "revoke", rotated[0]) == 0
    assert eventually(lambda: outcome(url, rotated) == unknown)
    assert "tenant" not in credentials.read_text()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600


def test_a_revoked_previous_key_is_refused_before_its_grace_ends(server, capsys):
    url, data_dir = server
    assert run(data_dir, "create", "--account", ACCOUNT, "--profile", "early") == 0
    first = keys_of(data_dir, "early")
    assert run(data_dir, "rotate", first[0], "--grace", "3600") == 0
    assert outcome(url, first)[0] == "ResourceNotFoundException"
    assert run(data_dir, "revoke", first[0]) == 0
    unknown = outcome(url, ("AKIANEVERISSUEDKEY01", "no-such-secret-000000000000000000000001"))
    assert eventually(lambda: outcome(url, first) == unknown)
    assert outcome(url, keys_of(data_dir, "early"))[0] == "ResourceNotFoundException"


def test_key_commands_that_cannot_be_done_fail_with_a_message(server, capsys):
    _, data_dir = server
    default_key = keys_of(data_dir, "default")[0]
    assert run(data_dir, "revoke", default_key) == 2
    assert "rotate it" in capsys.readouterr().err
    assert run(data_dir, "revoke", "AKIANOSUCHKEY0000000") == 2
    assert run(data_dir, "rotate", "AKIANOSUCHKEY0000000") == 2
    assert run(data_dir, "create", "--account", ACCOUNT, "--profile", "default") == 2
    assert "already exists" in capsys.readouterr().err
