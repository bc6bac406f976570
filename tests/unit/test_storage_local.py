"""The embedded local store: buckets are folders, missing things are InvalidS3Object."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import EngineSettings
from engine.errors import InvalidS3ObjectException
from engine.storage import LocalObjectStore, MinioObjectStore, ObjectRef, open_object_store
from engine.storage.s3 import split_endpoint


@pytest.fixture()
def store(tmp_path):
    return LocalObjectStore(tmp_path / "objects")


def test_put_stat_and_source(store, tmp_path):
    local = tmp_path / "clip.mp4"
    local.write_bytes(b"0123456789")
    assert store.put_file(local, "videos", "nested/dir/clip.mp4") is None
    info = store.stat(ObjectRef("videos", "nested/dir/clip.mp4"))
    assert info.size_bytes == 10 and info.version is None
    source = store.source_for(ObjectRef("videos", "nested/dir/clip.mp4"))
    assert Path(source).read_bytes() == b"0123456789"
    assert store.stat(ObjectRef("videos", "nested/dir/clip.mp4", "null")).size_bytes == 10


@pytest.mark.parametrize(
    "ref, message",
    [
        (ObjectRef("nobucket", "clip.mp4"), "Bucket 'nobucket' does not exist"),
        (ObjectRef("videos", "missing.mp4"), "does not exist in bucket"),
        (ObjectRef("videos", "clip.mp4", "3HL4kqtJlcpXroDTDmJ"), "Version"),
        (ObjectRef("videos", "../../etc/passwd"), "not inside bucket"),
        (ObjectRef("..", "clip.mp4"), "does not exist"),
        (ObjectRef("videos", "nested"), "does not exist"),
    ],
)
def test_missing_things_are_invalid_s3_object(store, tmp_path, ref, message):
    local = tmp_path / "clip.mp4"
    local.write_bytes(b"x")
    store.put_file(local, "videos", "clip.mp4")
    store.put_file(local, "videos", "nested/clip.mp4")
    with pytest.raises(InvalidS3ObjectException, match=message):
        store.stat(ref)
    with pytest.raises(InvalidS3ObjectException):
        store.source_for(ref)


def test_settings_choose_the_store(tmp_path):
    assert isinstance(open_object_store(EngineSettings(data_dir=tmp_path)), LocalObjectStore)
    s3 = open_object_store(
        EngineSettings(
            data_dir=tmp_path,
            s3_endpoint="http://127.0.0.1:9",
            s3_access_key="a",
            s3_secret_key="b",
        )
    )
    assert isinstance(s3, MinioObjectStore)


def test_endpoints_accept_host_port_or_url():
    assert split_endpoint("127.0.0.1:9000", False) == ("127.0.0.1:9000", False)
    assert split_endpoint("https://s3.local:9000", False) == ("s3.local:9000", True)
    assert split_endpoint("http://s3.local:9000/", True) == ("s3.local:9000", False)
