"""Webhook notifications signed as SNS signs them (SignatureVersion 2, RSA over SHA-256 of the
canonical Notification string): a verifier accepts ours and rejects any change to a signed
field, another key's signature, an unsigned envelope and another signature version."""

from __future__ import annotations

import base64
import stat

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from engine.notify import completion_message, sns_http_envelope
from engine.notify.signing import (
    SIGNING_CERT_FILE,
    SIGNING_KEY_FILE,
    canonical_string,
    load_or_create_signer,
    verify_notification,
)

TOPIC = "arn:aws:sns:us-east-1:123456789012:moderation"
CERT_URL = "http://127.0.0.1:8080/sns/signing-cert.pem"


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return load_or_create_signer(tmp_path_factory.mktemp("signing"), CERT_URL)


def envelope() -> dict:
    return sns_http_envelope(TOPIC, completion_message("a" * 64, "SUCCEEDED", "b", "k.mp4", 1))


def test_our_signed_notification_verifies(signer):
    signed = signer.sign(envelope())
    assert signed["SignatureVersion"] == "2" and signed["SigningCertURL"] == CERT_URL
    assert verify_notification(signed, signer.certificate_pem)


def test_the_canonical_string_is_sns_s(signer):
    """Name and value, each on its own line, in SNS's order; Subject only when present."""
    signed = signer.sign(envelope())
    expected = "".join(f"{name}\n{signed[name]}\n" for name in
                       ("Message", "MessageId", "Timestamp", "TopicArn", "Type"))
    assert canonical_string(signed) == expected.encode()
    signature = base64.b64decode(signed["Signature"])
    signer.private_key.public_key().verify(signature, expected.encode(), padding.PKCS1v15(),
                                           hashes.SHA256())
    with_subject = {**envelope(), "Subject": "done"}
    assert b"Subject\ndone\nTimestamp\n" in canonical_string(with_subject)


@pytest.mark.parametrize("field, value", [
    ("Message", '{"JobId": "forged", "Status": "SUCCEEDED"}'),
    ("MessageId", "00000000-0000-0000-0000-000000000000"),
    ("Timestamp", "2020-01-01T00:00:00.000Z"),
    ("TopicArn", "arn:aws:sns:us-east-1:123456789012:other"),
    ("Signature", base64.b64encode(b"\0" * 256).decode()),
    ("Signature", "not base64!"),
    ("SignatureVersion", "1"),
    ("Type", "SubscriptionConfirmation"),
])
def test_a_tampered_notification_is_rejected(signer, field, value):
    tampered = {**signer.sign(envelope()), field: value}
    assert not verify_notification(tampered, signer.certificate_pem)


def test_unsigned_or_other_keys_notifications_are_rejected(signer, tmp_path):
    assert not verify_notification(envelope(), signer.certificate_pem)
    forger = load_or_create_signer(tmp_path, CERT_URL)
    assert not verify_notification(forger.sign(envelope()), signer.certificate_pem)
    assert not verify_notification(signer.sign(envelope()), b"not a certificate")


def test_the_key_is_generated_once_and_kept_private(tmp_path):
    first = load_or_create_signer(tmp_path, CERT_URL)
    second = load_or_create_signer(tmp_path, "http://elsewhere/cert.pem")
    assert first.certificate_pem == second.certificate_pem
    assert verify_notification(second.sign(envelope()), first.certificate_pem)
    assert stat.S_IMODE((tmp_path / SIGNING_KEY_FILE).stat().st_mode) == 0o600
    assert b"PRIVATE" not in (tmp_path / SIGNING_CERT_FILE).read_bytes()
    assert "PRIVATE" not in repr(first)
