"""Tenants see only their own objects (issue 16), through boto3 against real servers: the
embedded store, whose buckets record their owning account, and an S3 server on 127.0.0.1
(moto), where accounts other than the default one read only what `object_access_grants` names.

Account A is the server's default account ([default] profile); account B is a second profile.
Every refusal must read exactly as a missing object does (nothing of the object leaks), for
StartContentModeration, DetectModerationLabels (S3Object) and CreateProjectVersion (manifests,
the images they list, the output location); A keeps reading its own objects throughout.
"""

from __future__ import annotations

import io
import json

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from engine.api.keys import read_default_key
from engine.api.settings import ApiSettings
from engine.storage.access import UNREADABLE_OBJECT_MESSAGE
from tests.doubles.scripted_runner import write_script
from tests.integration.api_fixtures import (
    aws_client,
    rekognition_client,
    scripted_server,
    write_account_keys,
)

pytestmark = pytest.mark.integration

ACCOUNT_B = "210987654321"
KEYS_B = ("AKIAACCOUNTBOBJECTS1", "account-b-secret-for-object-access-01")


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 0, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def error_of(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def s3_object(bucket: str, key: str) -> dict:
    """A request's Video or Image member naming an S3 object."""
    return {"S3Object": {"Bucket": bucket, "Name": key}}


video = image = s3_object


def assert_unreadable(call) -> None:
    """Refused exactly as Rekognition refuses an object it cannot read: one code, one message."""
    assert error_of(call) == ("InvalidS3ObjectException", UNREADABLE_OBJECT_MESSAGE)


# -- the embedded store ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    from engine.cli import main

    data_dir = tmp_path_factory.mktemp("object-access")
    more_keys = write_account_keys(data_dir / "more-keys", KEYS_B, ACCOUNT_B, profile="tenant-b")
    source = data_dir / "source"
    source.mkdir()
    clip = write_script(source / "clip.json", 2000, {1000: {"Weapons": 90.0}})
    (source / "blue.png").write_bytes(png())
    # Objects written before owners were recorded: no owner, the default account's only.
    write_script(data_dir / "objects" / "legacy" / "clip.json", 2000)
    with scripted_server(data_dir, ApiSettings(extra_credentials_file=more_keys),
                         adapter_min_examples=1) as (url, jobs, _settings):
        for bucket, owner in (("bucket-a", ["--profile", "default"]),
                              ("bucket-b", ["--account", ACCOUNT_B])):
            for local, key in ((clip, "clip.json"), (source / "blue.png", "blue.png")):
                assert main(["put", str(local), f"{bucket}/{key}", "--data-dir", str(data_dir),
                             *owner]) == 0
        yield (rekognition_client(url),
               rekognition_client(url, keys=KEYS_B), jobs, data_dir)


def test_put_records_the_owner_and_refuses_another_accounts_bucket(embedded, tmp_path, capsys):
    from engine.cli import main

    _, _, _, data_dir = embedded
    account_a = read_default_key(data_dir / "credentials").account
    owners = data_dir / "objects" / ".owners"
    assert (owners / "bucket-a").read_text() == account_a
    assert (owners / "bucket-b").read_text() == ACCOUNT_B
    assert not (owners / "legacy").exists()
    local = tmp_path / "x.json"
    local.write_text("{}")
    for bucket in ("bucket-a", "legacy"):
        assert main(["put", str(local), f"{bucket}/x.json", "--account", ACCOUNT_B,
                     "--data-dir", str(data_dir)]) == 2
        assert "cannot be written" in capsys.readouterr().err
        assert not (data_dir / "objects" / bucket / "x.json").exists()


def test_start_b_is_refused_on_a_objects_a_is_not(embedded):
    client_a, client_b, jobs, _ = embedded
    for bucket, key in (("bucket-a", "clip.json"), ("legacy", "clip.json"),
                        ("bucket-a", "missing.json"), ("no-such-bucket", "clip.json")):
        assert_unreadable(lambda bucket=bucket, key=key: client_b.start_content_moderation(
            Video=video(bucket, key)))
    for bucket in ("bucket-a", "legacy"):
        assert client_a.start_content_moderation(Video=video(bucket, "clip.json"))["JobId"]
    assert client_b.start_content_moderation(Video=video("bucket-b", "clip.json"))["JobId"]
    # A owns its bucket, not B's: ownership is not rank.
    assert_unreadable(lambda: client_a.start_content_moderation(Video=video("bucket-b", "clip.json")))
    assert jobs.executor.wait_idle(20)


def test_detect_b_is_refused_on_a_images_a_is_not(embedded):
    client_a, client_b, _, _ = embedded
    for bucket, key in (("bucket-a", "blue.png"), ("bucket-a", "nothing.png")):
        assert_unreadable(lambda bucket=bucket, key=key: client_b.detect_moderation_labels(
            Image=image(bucket, key)))
    assert "ModerationLabels" in client_a.detect_moderation_labels(Image=image("bucket-a", "blue.png"))
    assert "ModerationLabels" in client_b.detect_moderation_labels(Image=image("bucket-b", "blue.png"))


def manifest_line(bucket: str, key: str, labels: list[str]) -> str:
    return json.dumps({"source-ref": f"s3://{bucket}/{key}", "content-moderation-groundtruth": {
        "ModerationLabels": [{"Name": name} for name in labels]}})


def create_version(client, project: str, name: str, bucket: str, manifest: str,
                   output_bucket: str) -> str:
    return client.create_project_version(
        ProjectArn=project, VersionName=name,
        OutputConfig={"S3Bucket": output_bucket, "S3KeyPrefix": "adapters"},
        TrainingData={"Assets": [{"GroundTruthManifest": {
            "S3Object": {"Bucket": bucket, "Name": manifest}}}]},
        TestingData={"AutoCreate": True})["ProjectVersionArn"]


def test_create_project_version_b_cannot_train_on_a_data(embedded):
    client_a, client_b, _, data_dir = embedded
    lines = [manifest_line("bucket-a", "blue.png", ["Hate Symbols"])] * 2 + [
        manifest_line("bucket-a", "blue.png", [])] * 2
    for bucket in ("bucket-a", "bucket-b"):
        (data_dir / "objects" / bucket / "train.manifest").write_text("\n".join(lines) + "\n")
    project_b = client_b.create_project(ProjectName="b", Feature="CONTENT_MODERATION")["ProjectArn"]

    def refusal(bucket: str, manifest: str, output: str = "out-b") -> tuple[str, str]:
        code, message = error_of(lambda: create_version(
            client_b, project_b, "v1", bucket, manifest, output))
        return code, message.replace(f"s3://{bucket}/{manifest}", "MANIFEST")

    # A's manifest, a missing one in A's bucket, and one in no bucket read alike.
    refused = refusal("bucket-a", "train.manifest")
    assert refused == ("InvalidParameterException",
                       f"The manifest MANIFEST cannot be read: {UNREADABLE_OBJECT_MESSAGE}")
    assert refusal("bucket-a", "missing.manifest") == refused
    assert refusal("nowhere", "train.manifest") == refused
    # B's own manifest listing A's images: refused at the image, before it is read.
    code, message = refusal("bucket-b", "train.manifest")
    assert code == "InvalidParameterException"
    assert message.endswith(f"the image s3://bucket-a/blue.png cannot be read: "
                            f"{UNREADABLE_OBJECT_MESSAGE}")
    # B may not write its outputs into A's bucket.
    assert error_of(lambda: create_version(client_b, project_b, "v1", "bucket-b",
                                           "train.manifest", "bucket-a"))[0] == (
        "AccessDeniedException")
    # A trains on its own data; its new output bucket becomes its own.
    project_a = client_a.create_project(ProjectName="a", Feature="CONTENT_MODERATION")["ProjectArn"]
    assert create_version(client_a, project_a, "v1", "bucket-a", "train.manifest", "out-a")
    assert (data_dir / "objects" / ".owners" / "out-a").read_text() == read_default_key(
        data_dir / "credentials").account


# -- an S3 server (moto) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def on_s3(tmp_path_factory, moto_endpoint):
    s3 = aws_client("s3", moto_endpoint)
    for bucket in ("s3-bucket-a", "s3-bucket-b"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="clip.json", Body=b'{"duration_ms": 1000}')
        s3.put_object(Bucket=bucket, Key="shared/blue.png", Body=png())
        s3.put_object(Bucket=bucket, Key="private/blue.png", Body=png())
    data_dir = tmp_path_factory.mktemp("object-access-s3")
    more_keys = write_account_keys(data_dir / "more-keys", KEYS_B, ACCOUNT_B, profile="tenant-b")
    grants = f"{ACCOUNT_B}=s3-bucket-b,{ACCOUNT_B}=s3-bucket-a/shared/"
    with scripted_server(data_dir, ApiSettings(extra_credentials_file=more_keys),
                         s3_endpoint=moto_endpoint, s3_access_key="x", s3_secret_key="y",
                         object_access_grants=grants) as (url, jobs, _):
        yield (rekognition_client(url),
               rekognition_client(url, keys=KEYS_B), jobs)


def test_s3_b_reads_only_what_its_grants_name(on_s3):
    client_a, client_b, jobs = on_s3
    for bucket, key in (("s3-bucket-a", "clip.json"), ("s3-bucket-a", "missing.json"),
                        ("no-such-s3-bucket", "clip.json")):
        assert_unreadable(lambda bucket=bucket, key=key: client_b.start_content_moderation(
            Video=video(bucket, key)))
    assert_unreadable(lambda: client_b.detect_moderation_labels(
        Image=image("s3-bucket-a", "private/blue.png")))
    assert client_b.start_content_moderation(Video=video("s3-bucket-b", "clip.json"))["JobId"]
    assert "ModerationLabels" in client_b.detect_moderation_labels(
        Image=image("s3-bucket-a", "shared/blue.png"))
    # The default account reads every bucket the server's keys reach.
    assert client_a.start_content_moderation(Video=video("s3-bucket-a", "clip.json"))["JobId"]
    assert "ModerationLabels" in client_a.detect_moderation_labels(
        Image=image("s3-bucket-a", "private/blue.png"))
    assert jobs.executor.wait_idle(20)
