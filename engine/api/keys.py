"""Access keys: the generated default credentials and the key ring the SigV4 verifier reads.

Keys live in AWS shared-credentials INI files, so the same file that configures the server
configures boto3 (`AWS_SHARED_CREDENTIALS_FILE=<data-dir>/credentials`):

    [default]
    aws_access_key_id = AKIA...
    aws_secret_access_key = ...
    modengine_account = 123456789012

Every profile is one key; `modengine_account` names the account the key belongs to (keys of one
account see the same jobs); without it the profile name is the account. boto3 ignores the extra
entries. A rotated profile (`modengine keys rotate`, engine/api/key_admin.py) also keeps its
previous key until a time: `modengine_previous_access_key_id`, `..._secret_access_key` and
`modengine_previous_valid_until` (ISO 8601, UTC); past that time the previous key is unknown.
The files are re-read when they change, so keys can be added, rotated and revoked without a
restart. Secrets never leave this module except to compute a signature; their repr is hidden.
"""

from __future__ import annotations

import configparser
import logging
import os
import secrets
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

log = logging.getLogger(__name__)

ACCOUNT_ENTRY = "modengine_account"
PREVIOUS_KEY_ID_ENTRY = "modengine_previous_access_key_id"
PREVIOUS_SECRET_ENTRY = "modengine_previous_secret_access_key"
PREVIOUS_UNTIL_ENTRY = "modengine_previous_valid_until"
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits
RECHECK_INTERVAL_S = 1.0


class CredentialsFileError(ValueError):
    """A credentials file is unreadable or inconsistent (the message never holds a secret)."""


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    account: str
    valid_until: float | None = None
    """Epoch seconds after which the key is refused (a rotated-out key); None: no end."""
    profile: str | None = None

    def expired(self, now_s: float) -> bool:
        return self.valid_until is not None and now_s >= self.valid_until


def new_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def write_private_temporary(path: Path, text: str) -> Path:
    """`text` in a new file beside `path`, mode 0600 from its creation, flushed to disk: what
    is then linked or renamed onto `path`, so no reader ever sees a half-written file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return temporary


def create_default_credentials(path: Path) -> bool:
    """Write a fresh [default] key to `path` (mode 0600) unless the file exists; True if written.

    Written to a temporary file and linked into place, so two processes starting at once keep
    one file and neither sees it half written.
    """
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    account = "".join(secrets.choice(string.digits) for _ in range(12))
    text = (
        "[default]\n"
        f"aws_access_key_id = {new_key_id()}\n"
        f"aws_secret_access_key = {new_secret()}\n"
        f"{ACCOUNT_ENTRY} = {account}\n"
    )
    temporary = write_private_temporary(path, text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True


def parse_credentials_file(path: Path) -> configparser.ConfigParser:
    """The INI document of a credentials file; CredentialsFileError (never quoting a line)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error, UnicodeDecodeError) as error:
        # `from None`: parser errors quote the offending line, which may hold a secret.
        raise CredentialsFileError(
            f"cannot read credentials file {path}: {type(error).__name__}"
        ) from None
    return parser


def read_credentials_file(path: Path) -> list[AccessKey]:
    """Every key of one shared-credentials file: each profile that has both key entries, and
    the previous key a rotated profile keeps until its end (expired or not: `find` decides)."""
    return [key for profile, section in parse_credentials_file(path).items()
            if profile != configparser.DEFAULTSECT for key in profile_keys(profile, section)]


def profile_keys(profile: str, section) -> list[AccessKey]:
    """The current key of a profile (when complete) and its previous one (when it has one)."""
    account = section.get(ACCOUNT_ENTRY, "").strip() or profile
    keys = []
    key_id = section.get("aws_access_key_id", "").strip()
    secret = section.get("aws_secret_access_key", "").strip()
    if key_id and secret:
        keys.append(AccessKey(key_id, secret, account, profile=profile))
    previous_id = section.get(PREVIOUS_KEY_ID_ENTRY, "").strip()
    previous_secret = section.get(PREVIOUS_SECRET_ENTRY, "").strip()
    if previous_id and previous_secret:
        keys.append(AccessKey(previous_id, previous_secret, account,
                              _epoch_s(section.get(PREVIOUS_UNTIL_ENTRY, "")), profile))
    return keys


def _epoch_s(text: str) -> float:
    """An ISO 8601 time as epoch seconds; one that cannot be read has already passed (a
    previous key whose end is unreadable is refused, never kept forever)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return float("-inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def read_profile_key(path: Path, profile: str = "default") -> AccessKey:
    """The key of one profile of a credentials file (what a client of the server signs with).
    FileNotFoundError when there is no such file, KeyError when it has no such profile."""
    path = Path(path).expanduser()
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path, encoding="utf-8"):
        raise FileNotFoundError(f"no credentials file at {path}")
    if not parser.has_section(profile):
        raise KeyError(f"profile [{profile}] is not in {path}")
    section = parser[profile]
    return AccessKey(
        section["aws_access_key_id"].strip(),
        section["aws_secret_access_key"].strip(),
        section.get(ACCOUNT_ENTRY, profile).strip(),
    )


def read_default_key(path: Path) -> AccessKey:
    """The [default] key of a credentials file (what a client of the embedded server uses)."""
    return read_profile_key(path, "default")


class KeyRing:
    """The access keys of a few credentials files, re-read when a file changes."""

    def __init__(self, paths: Iterable[Path], clock=time.monotonic, wall_clock=time.time) -> None:
        self._paths = [Path(p) for p in paths]
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._stamps: tuple = ()
        self._keys: dict[str, AccessKey] = {}
        self._checked_at = float("-inf")
        self._reload_if_changed(strict=True)

    def find(self, access_key_id: str) -> AccessKey | None:
        """The key with this id, or None: unknown, revoked (gone from its file: seen within
        RECHECK_INTERVAL_S) or past the end of its rotation grace. A miss re-checks the files
        (a key may just be added)."""
        key = self._keys.get(access_key_id)
        now = self._clock()
        if key is None or now - self._checked_at >= RECHECK_INTERVAL_S:
            self._reload_if_changed(strict=False)
            key = self._keys.get(access_key_id)
        if key is not None and key.expired(self._wall_clock()):
            return None
        return key

    def __len__(self) -> int:
        return len(self._keys)

    def _stamp(self) -> tuple:
        stamps = []
        for path in self._paths:
            try:
                info = path.stat()
                # The inode too: a rewrite is a rename onto the path (engine/api/key_admin.py).
                stamps.append((str(path), info.st_ino, info.st_mtime_ns, info.st_size))
            except FileNotFoundError:
                stamps.append((str(path), None, None, None))
        return tuple(stamps)

    def _reload_if_changed(self, strict: bool) -> None:
        with self._lock:
            self._checked_at = self._clock()
            stamps = self._stamp()
            if stamps == self._stamps:
                return
            try:
                self._keys = self._load()
            except CredentialsFileError as error:
                if strict:
                    raise
                log.error("keeping the previous access keys: %s", error)
            self._stamps = stamps

    def _load(self) -> dict[str, AccessKey]:
        keys: dict[str, AccessKey] = {}
        for path in self._paths:
            if not path.exists():
                continue
            for key in read_credentials_file(path):
                known = keys.get(key.access_key_id)
                if known is not None and (known.secret_access_key, known.account) != (
                        key.secret_access_key, key.account):
                    raise CredentialsFileError(
                        f"access key {key.access_key_id} is defined twice with different values"
                    )
                keys[key.access_key_id] = key
        return keys
