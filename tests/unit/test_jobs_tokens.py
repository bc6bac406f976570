"""NextToken: bound to job and query, tamper-proof, expiring, short enough for the contract."""

from __future__ import annotations

import os
import time

import pytest

from engine.errors import InvalidPaginationTokenException
from engine.jobs.tokens import PageQuery, PageTokenCodec, load_or_create_secret

QUERY = PageQuery("a" * 64, "TIMESTAMP", "TIMESTAMPS")


@pytest.fixture()
def codec(tmp_path):
    return PageTokenCodec(load_or_create_secret(tmp_path / "page_token.key"))


def test_round_trip_and_length(codec):
    token = codec.issue(QUERY, 123_456_789)
    assert codec.verify(QUERY, token) == 123_456_789
    assert len(token) <= 255


@pytest.mark.parametrize(
    "other",
    [
        PageQuery("b" * 64, "TIMESTAMP", "TIMESTAMPS"),
        PageQuery("a" * 64, "NAME", "TIMESTAMPS"),
        PageQuery("a" * 64, "TIMESTAMP", "SEGMENTS"),
    ],
)
def test_a_token_is_refused_for_another_job_or_query(codec, other):
    with pytest.raises(InvalidPaginationTokenException):
        codec.verify(other, codec.issue(QUERY, 7))


def test_altered_or_foreign_tokens_are_refused(codec, tmp_path):
    token = codec.issue(QUERY, 7)
    position, issued, mac = token.split(".")
    for bad in (
        f"8.{issued}.{mac}",
        f"{position}.{int(issued) + 1}.{mac}",
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "garbage",
        "",
    ):
        with pytest.raises(InvalidPaginationTokenException):
            codec.verify(QUERY, bad)
    other_server = PageTokenCodec(load_or_create_secret(tmp_path / "other.key"))
    with pytest.raises(InvalidPaginationTokenException):
        other_server.verify(QUERY, token)


def test_expired_tokens_are_refused(codec):
    old = codec.issue(QUERY, 7, issued_s=int(time.time()) - 25 * 3600)
    with pytest.raises(InvalidPaginationTokenException, match="expired"):
        codec.verify(QUERY, old)


def test_the_secret_persists_and_is_private(tmp_path):
    path = tmp_path / "page_token.key"
    assert load_or_create_secret(path) == load_or_create_secret(path)
    assert os.stat(path).st_mode & 0o077 == 0
