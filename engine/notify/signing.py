"""Webhook notifications signed as SNS signs its HTTP(S) deliveries, so a receiver can tell ours
from a forged one with the check it already runs for SNS.

SignatureVersion 2: an RSA PKCS#1 v1.5 signature over SHA-256 of SNS's canonical string for a
Notification: the names and values of Message, MessageId, Subject (only when present),
Timestamp, TopicArn and Type, in that order, each name and each value followed by a newline;
base64 in `Signature`. The signing key and a self-signed certificate for it are generated once
into the data dir (the key mode 0600); the server serves the certificate at `SigningCertURL`.
A receiver must fetch it only from a URL it trusts (ours, as SNS receivers trust only
amazonaws.com), then verify. Knows nothing about jobs, the API or HTTP serving.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SIGNATURE_VERSION = "2"
SIGNING_KEY_FILE = "sns-signing-key.pem"
SIGNING_CERT_FILE = "sns-signing-cert.pem"
SIGNING_CERT_PATH = "/sns/signing-cert.pem"
"""Where the server serves the certificate (engine/server.py)."""
CERTIFICATE_LIFETIME = datetime.timedelta(days=3650)
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")


def canonical_string(envelope: dict) -> bytes:
    """What SNS signs of a Notification; Subject only when the envelope has one."""
    text = "".join(f"{name}\n{envelope[name]}\n" for name in _NOTIFICATION_FIELDS
                   if name != "Subject" or envelope.get("Subject") is not None)
    return text.encode("utf-8")


@dataclass(frozen=True)
class NotificationSigner:
    """Signs envelopes with the server's key; `certificate_pem` is what SigningCertURL serves."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate_pem: bytes
    certificate_url: str

    def sign(self, envelope: dict) -> dict:
        """The envelope with SignatureVersion 2, its Signature and the SigningCertURL."""
        signature = self.private_key.sign(canonical_string(envelope), padding.PKCS1v15(),
                                          hashes.SHA256())
        return {**envelope, "SignatureVersion": SIGNATURE_VERSION,
                "Signature": base64.b64encode(signature).decode("ascii"),
                "SigningCertURL": self.certificate_url}


def verify_notification(envelope: dict, certificate_pem: bytes) -> bool:
    """True when `envelope` is a SignatureVersion 2 Notification signed by the key of this
    certificate; False for anything else (tampered, unsigned, another version, malformed)."""
    try:
        if envelope.get("Type") != "Notification" or envelope.get(
                "SignatureVersion") != SIGNATURE_VERSION:
            return False
        signature = base64.b64decode(envelope["Signature"], validate=True)
        public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
        public_key.verify(signature, canonical_string(envelope), padding.PKCS1v15(),
                          hashes.SHA256())
    except (InvalidSignature, KeyError, TypeError, ValueError, binascii.Error):
        return False
    return True


def load_or_create_signer(data_dir: Path, certificate_url: str) -> NotificationSigner:
    """The data dir's signing key and certificate, generated on first use. The key is linked
    into place from a 0600 temporary file, so two servers starting at once keep one key."""
    key_path, cert_path = Path(data_dir) / SIGNING_KEY_FILE, Path(data_dir) / SIGNING_CERT_FILE
    if not key_path.exists():
        _create_key(key_path)
    private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not cert_path.exists() or not _certifies(cert_path.read_bytes(), private_key):
        _write_replacing(cert_path, _self_signed(private_key), 0o644)
    return NotificationSigner(private_key, cert_path.read_bytes(), certificate_url)


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    temporary = _written_temporary(path, pem, 0o600)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink()


def _write_replacing(path: Path, data: bytes, mode: int) -> None:
    os.replace(_written_temporary(path, data, mode), path)


def _written_temporary(path: Path, data: bytes, mode: int) -> Path:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return temporary


def _certifies(certificate_pem: bytes, private_key: rsa.RSAPrivateKey) -> bool:
    try:
        public = x509.load_pem_x509_certificate(certificate_pem).public_key()
    except ValueError:
        return False
    return public.public_numbers() == private_key.public_key().public_numbers()


def _self_signed(private_key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modengine notification signing")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERTIFICATE_LIFETIME)
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)
