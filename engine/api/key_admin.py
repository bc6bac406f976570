"""`modengine keys`: create, list, rotate and revoke access keys in the credentials file the
server re-reads (engine/api/keys.py: KeyRing), so none of it needs a restart.

Every change is one read-modify-write of the file under an exclusive lock (`<file>.lock`), the
new text written to a 0600 temporary file beside it and renamed over it: a reader (the server,
boto3) sees the old file or the new one, never half of one, and the mode stays 0600. The INI
is rewritten by configparser, so comments in the file are not kept.

- create: a new profile with a fresh key for an account;
- rotate: the profile gets a fresh key; the old one stays valid for a grace period (kept as the
  profile's `modengine_previous_*` entries), then is refused as an unknown key;
- revoke: the key is removed from the file (a previous key, just its entries), so the server
  refuses it as an unknown key once it re-reads the file (within keys.RECHECK_INTERVAL_S).
No function here returns or prints a secret: a new key's secret is in the file only.
"""

from __future__ import annotations

import configparser
import fcntl
import io
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from engine.api.keys import (
    ACCOUNT_ENTRY,
    PREVIOUS_KEY_ID_ENTRY,
    PREVIOUS_SECRET_ENTRY,
    PREVIOUS_UNTIL_ENTRY,
    new_key_id,
    new_secret,
    parse_credentials_file,
    profile_keys,
    write_private_temporary,
)

PROTECTED_PROFILE = "default"
"""The server's own key: its account is the default account (engine/storage/access.py)."""


class KeyAdminError(ValueError):
    """A key command that cannot be done (no such key, a taken profile); never holds a secret."""


@dataclass(frozen=True)
class KeyListing:
    """What `keys list` shows of one key: never its secret."""

    access_key_id: str
    account: str
    profile: str
    valid_until: str | None
    """ISO 8601 end of a rotated-out key's grace period; None for a current key."""


def create_key(path: Path, account: str, profile: str | None = None) -> KeyListing:
    """A new profile (default: named after the key) holding a fresh key of `account`."""
    if not account.strip() or any(char in account for char in "\n\r[]"):
        raise KeyAdminError(f"{account!r} is not an account name")
    key_id = new_key_id()
    profile = profile or key_id.lower()
    with _editing(path) as document:
        if document.has_section(profile):
            raise KeyAdminError(f"profile [{profile}] already exists in {path}")
        document[profile] = {"aws_access_key_id": key_id, "aws_secret_access_key": new_secret(),
                             ACCOUNT_ENTRY: account}
    return KeyListing(key_id, account, profile, None)


def list_keys(path: Path) -> list[KeyListing]:
    """Every key of the file, current and rotated-out, with its account and profile."""
    document = parse_credentials_file(path)
    return [KeyListing(key.access_key_id, key.account, profile,
                       None if key.valid_until is None else _iso(key.valid_until))
            for profile in document.sections() for key in profile_keys(profile, document[profile])]


def render_keys(keys: list[KeyListing]) -> str:
    """`keys list` for people: one line a key."""
    lines = [f"{'key id':<22} {'account':<14} {'profile':<24} valid until"]
    lines += [f"{key.access_key_id:<22} {key.account:<14} {key.profile:<24} "
              f"{key.valid_until or '-'}" for key in keys]
    return "\n".join(lines)


def rotate_key(path: Path, key_id: str, grace_s: float,
               clock: Callable[[], float] = time.time) -> KeyListing:
    """Give the profile holding current key `key_id` a fresh key; `key_id` stays valid for
    `grace_s` seconds more (a key rotated before keeps only its newest previous key)."""
    if grace_s < 0:
        raise KeyAdminError("the grace period must be >= 0 seconds")
    new_id = new_key_id()
    with _editing(path) as document:
        profile = _profile_with(document, key_id, "aws_access_key_id", path)
        section = document[profile]
        section[PREVIOUS_KEY_ID_ENTRY] = key_id
        section[PREVIOUS_SECRET_ENTRY] = section["aws_secret_access_key"]
        section[PREVIOUS_UNTIL_ENTRY] = _iso(clock() + grace_s)
        section["aws_access_key_id"] = new_id
        section["aws_secret_access_key"] = new_secret()
        account = section.get(ACCOUNT_ENTRY, profile)
    return KeyListing(new_id, account, profile, None)


def revoke_key(path: Path, key_id: str) -> KeyListing:
    """Remove key `key_id` (a profile's current key: the whole profile; a rotated-out key: its
    entries). The [default] profile's current key is the server's own: rotate it instead."""
    with _editing(path) as document:
        for profile in document.sections():
            section = document[profile]
            if section.get(PREVIOUS_KEY_ID_ENTRY, "").strip() == key_id:
                for entry in (PREVIOUS_KEY_ID_ENTRY, PREVIOUS_SECRET_ENTRY, PREVIOUS_UNTIL_ENTRY):
                    section.pop(entry, None)
                return KeyListing(key_id, section.get(ACCOUNT_ENTRY, profile), profile, None)
        profile = _profile_with(document, key_id, "aws_access_key_id", path)
        if profile == PROTECTED_PROFILE:
            raise KeyAdminError(
                f"{key_id} is the [{PROTECTED_PROFILE}] profile's key, the server's own: rotate it "
                "(`modengine keys rotate`) instead of revoking it")
        account = document[profile].get(ACCOUNT_ENTRY, profile)
        document.remove_section(profile)
    return KeyListing(key_id, account, profile, None)


def _profile_with(document: configparser.ConfigParser, key_id: str, entry: str,
                  path: Path) -> str:
    for profile in document.sections():
        if document[profile].get(entry, "").strip() == key_id:
            return profile
    raise KeyAdminError(f"no key {key_id} in {path}")


@contextmanager
def _editing(path: Path) -> Iterator[configparser.ConfigParser]:
    """The file's INI document, written back atomically (mode 0600) if the block succeeds;
    one editor at a time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.with_name(f".{path.name}.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        document = parse_credentials_file(path) if path.exists() else configparser.ConfigParser(
            interpolation=None)
        yield document
        text = io.StringIO()
        document.write(text)
        os.replace(write_private_temporary(path, text.getvalue()), path)
    finally:
        os.close(lock)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
