"""Media analysis jobs (StartMediaAnalysisJob / GetMediaAnalysisJob / ListMediaAnalysisJobs)
through boto3 against `modengine serve` with the real cluster runner (Ray, Ray Data) and the
colour test double model; objects in the embedded store.

The acceptance: an adapter trained through boto3, then a job over a manifest of 20 images
whose results manifest holds, for every image, exactly what DetectModerationLabels answers for
it with the same adapter and MinConfidence; the manifest summary counts and explains the lines
that could not be analysed. Also: idempotency, paging, typed errors, per-account isolation.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from tests.integration.api_fixtures import (
    ServerProcess,
    rekognition_client,
    server_env,
    write_account_keys,
)
from tests.integration.test_api_adapters import (
    LABEL,
    create_version,
    new_project,
    picture,
    wait_trained,
    write_training_set,
)

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

OTHER_ACCOUNT = ("AKIAOTHERACCOUNT0003", "other-account-secret-media-000001")
COLOURS = ("red", "blue", "green", "white")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(client, other account's client, data dir, trained version ARN, server process)."""
    data_dir = tmp_path_factory.mktemp("media-analysis")
    write_training_set(data_dir / "objects" / "data", positives=10, negatives=12)
    more_keys = write_account_keys(data_dir / "more-keys", OTHER_ACCOUNT, "210987654399")
    env = server_env(data_dir, MODENGINE_API_CREDENTIALS_FILE=str(more_keys))
    process = ServerProcess(data_dir, env, [], data_dir / "server.log").start()
    try:
        client = rekognition_client(process.url)
        other = rekognition_client(process.url, keys=OTHER_ACCOUNT)
        project = new_project(client, "media")
        version = create_version(client, project, "v1")
        described = wait_trained(client, project, version, 120, process.log_tail)
        assert described["Status"] == "TRAINING_COMPLETED", described.get("StatusMessage")
        yield client, other, data_dir, version, process
    finally:
        process.stop()


def start_job(client, manifest: str, **extra) -> str:
    return client.start_media_analysis_job(
        Input={"S3Object": {"Bucket": "data", "Name": manifest}},
        OutputConfig={"S3Bucket": "out", "S3KeyPrefix": "media"}, **extra)["JobId"]


def wait_job(client, job_id: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get_media_analysis_job(JobId=job_id)
        if job["Status"] in ("SUCCEEDED", "FAILED"):
            return job
        assert job["Status"] in ("QUEUED", "IN_PROGRESS", "CREATED")
        assert time.monotonic() < deadline, f"job {job_id} still {job['Status']}"
        time.sleep(0.2)


def stored(data_dir, s3_object: dict) -> bytes:
    return (data_dir / "objects" / s3_object["Bucket"] / s3_object["Name"]).read_bytes()


def test_the_results_manifest_equals_detect_moderation_labels_with_the_same_adapter(server):
    client, _, data_dir, version, _ = server
    images = data_dir / "objects" / "data" / "bulk"
    images.mkdir()
    manifest = []
    for number in range(20):
        key = f"bulk/{number:02d}.{'jpg' if number % 2 else 'png'}"
        image_format = "JPEG" if number % 2 else "PNG"
        (data_dir / "objects" / "data" / key).write_bytes(
            picture(COLOURS[number % 4], 500 + number, image_format))
        manifest.append(json.dumps({"source-ref": f"s3://data/{key}", "note": number}))
    # Lines the job cannot analyse: broken JSON, no source-ref, a missing image, not an image.
    (images / "notes.png").write_text("not a picture")
    manifest += ["{broken", json.dumps({"other": 1}),
                 json.dumps({"source-ref": "s3://data/bulk/missing.png"}),
                 json.dumps({"source-ref": "s3://data/bulk/notes.png"})]
    (data_dir / "objects" / "data" / "bulk.manifest").write_text("\n".join(manifest) + "\n")
    operations = {"DetectModerationLabels": {"MinConfidence": 40.0, "ProjectVersion": version}}
    started = time.time()
    job_id = start_job(client, "bulk.manifest", JobName="bulk-20", OperationsConfig=operations,
                       ClientRequestToken="bulk-20", KmsKeyId="alias/ignored")
    assert start_job(client, "bulk.manifest", JobName="bulk-20", OperationsConfig=operations,
                     ClientRequestToken="bulk-20", KmsKeyId="alias/ignored") == job_id
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException):
        start_job(client, "bulk.manifest", OperationsConfig=operations,
                  ClientRequestToken="bulk-20")
    job = wait_job(client, job_id)
    print(f"20 images analysed in {time.time() - started:.1f} s")
    assert job["Status"] == "SUCCEEDED", job.get("FailureDetails")
    assert job["JobName"] == "bulk-20" and job["KmsKeyId"] == "alias/ignored"
    assert job["OperationsConfig"] == operations
    assert job["CompletionTimestamp"] >= job["CreationTimestamp"]
    assert job["Results"]["ModelVersions"]["Moderation"]

    results = [json.loads(text) for text in
               stored(data_dir, job["Results"]["S3Object"]).decode().splitlines()]
    assert [entry["note"] for entry in results] == list(range(20))  # input order, input members
    flagged = 0
    for entry in results:
        key = entry["source-ref"].removeprefix("s3://data/")
        alone = client.detect_moderation_labels(
            Image={"S3Object": {"Bucket": "data", "Name": key}}, MinConfidence=40.0,
            ProjectVersion=version)
        alone.pop("ResponseMetadata")
        assert entry["detect-moderation-labels"] == alone, key
        flagged += LABEL in {label["Name"] for label in alone["ModerationLabels"]}
    assert flagged == 5  # the red pictures, and only they, through the adapter

    summary = json.loads(stored(data_dir, job["ManifestSummary"]["S3Object"]))
    assert summary["statistics"] == {"total-json-lines": 24, "valid-json-lines": 20,
                                     "invalid-json-lines": 4}
    codes = {error["line-number"]: error["code"] for error in summary["errors"]}
    assert codes == {21: "INVALID_JSON_LINE", 22: "INVALID_SOURCE_REF",
                     23: "InvalidS3ObjectException", 24: "InvalidImageFormatException"}


def test_jobs_are_listed_newest_first_in_pages_and_only_to_their_account(server):
    client, other, data_dir, _, _ = server
    (data_dir / "objects" / "data" / "one.manifest").write_text(
        json.dumps({"source-ref": "s3://data/pos0.png"}) + "\n")
    first = start_job(client, "one.manifest", OperationsConfig={"DetectModerationLabels": {}})
    second = start_job(client, "one.manifest", OperationsConfig={"DetectModerationLabels": {}})
    assert wait_job(client, second)["Status"] == "SUCCEEDED"
    assert wait_job(client, first)["Status"] == "SUCCEEDED"
    page = client.list_media_analysis_jobs(MaxResults=1)
    assert [job["JobId"] for job in page["MediaAnalysisJobs"]] == [second]
    listed = [second]
    token = page.get("NextToken")
    while token:
        page = client.list_media_analysis_jobs(MaxResults=1, NextToken=token)
        listed += [job["JobId"] for job in page["MediaAnalysisJobs"]]
        token = page.get("NextToken")
    assert listed[1] == first and len(listed) == len(set(listed))
    with pytest.raises(client.exceptions.InvalidPaginationTokenException):
        client.list_media_analysis_jobs(NextToken="1.2.nonsense")
    assert other.list_media_analysis_jobs()["MediaAnalysisJobs"] == []
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.get_media_analysis_job(JobId=first)


def test_each_problem_at_start_answers_its_typed_error(server):
    client, other, data_dir, version, _ = server
    bucket = data_dir / "objects" / "data"
    (bucket / "empty.manifest").write_text("\n\n")
    (bucket / "junk.manifest").write_text("{broken\n" + json.dumps({"no": "ref"}) + "\n")
    moderation = {"DetectModerationLabels": {"MinConfidence": 50}}
    with pytest.raises(client.exceptions.InvalidS3ObjectException):
        start_job(client, "no-such.manifest", OperationsConfig=moderation)
    for name in ("empty.manifest", "junk.manifest"):
        with pytest.raises(client.exceptions.InvalidManifestException):
            start_job(client, name, OperationsConfig=moderation)
    unknown = version.replace("/v1/", "/v9/")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        start_job(client, "train.manifest",
                  OperationsConfig={"DetectModerationLabels": {"ProjectVersion": unknown}})
    # Another account cannot use the first account's adapter.
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        start_job(other, "train.manifest",
                  OperationsConfig={"DetectModerationLabels": {"ProjectVersion": version}})
    with pytest.raises(client.exceptions.InvalidParameterException):
        start_job(client, "train.manifest", OperationsConfig={})
    with pytest.raises(client.exceptions.InvalidParameterException):
        start_job(client, "train.manifest",
                  OperationsConfig={"DetectModerationLabels": {"MinConfidence": 101}})
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.list_media_analysis_jobs(MaxResults=101)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_media_analysis_job(JobId="no-such-job")


def test_an_output_location_that_cannot_be_written_fails_the_job_with_its_code(server):
    client, _, data_dir, _, _ = server
    (data_dir / "objects" / "blocked").write_text("a file where the output bucket would be")
    job = wait_job(client, client.start_media_analysis_job(
        Input={"S3Object": {"Bucket": "data", "Name": "one.manifest"}},
        OperationsConfig={"DetectModerationLabels": {}},
        OutputConfig={"S3Bucket": "blocked"})["JobId"])
    assert job["Status"] == "FAILED" and "Results" not in job
    assert job["FailureDetails"]["Code"] == "INVALID_OUTPUT_CONFIG"
    assert "s3://blocked/" in job["FailureDetails"]["Message"]


def test_another_account_cannot_analyse_or_write_the_first_accounts_objects(server):
    """Issue 16 on media analysis: B's job over A's manifest, A's images listed in B's own
    manifest and an output into A's bucket are refused, each saying nothing of the object."""
    from engine.storage.access import UNREADABLE_OBJECT_MESSAGE
    from tests.integration.api_fixtures import owned_bucket

    client, other, data_dir, _, _ = server
    moderation = {"DetectModerationLabels": {}}
    # A reads its own (and its jobs make the output bucket "out" A's).
    assert wait_job(client, start_job(client, "one.manifest",
                                      OperationsConfig=moderation))["Status"] == "SUCCEEDED"
    with pytest.raises(other.exceptions.InvalidS3ObjectException) as refused:
        start_job(other, "one.manifest", OperationsConfig=moderation)
    assert refused.value.response["Error"]["Message"] == UNREADABLE_OBJECT_MESSAGE
    own = owned_bucket(data_dir, "b-data", "210987654399")
    (own / "a.manifest").write_text(json.dumps({"source-ref": "s3://data/pos0.png"}) + "\n")
    with pytest.raises(other.exceptions.AccessDeniedException):
        other.start_media_analysis_job(
            Input={"S3Object": {"Bucket": "b-data", "Name": "a.manifest"}},
            OperationsConfig=moderation, OutputConfig={"S3Bucket": "out"})
    job = wait_job(other, other.start_media_analysis_job(
        Input={"S3Object": {"Bucket": "b-data", "Name": "a.manifest"}},
        OperationsConfig=moderation, OutputConfig={"S3Bucket": "b-data"})["JobId"])
    assert job["Status"] == "SUCCEEDED", job.get("FailureDetails")
    assert stored(data_dir, job["Results"]["S3Object"]) == b""
    summary = json.loads(stored(data_dir, job["ManifestSummary"]["S3Object"]))
    assert [(error["code"], error["message"]) for error in summary["errors"]] == [
        ("InvalidS3ObjectException", UNREADABLE_OBJECT_MESSAGE)]


def test_a_killed_server_runs_its_unfinished_jobs_again_or_fails_them_with_a_message(server):
    """Runs last: SIGKILLs the module's server. A job accepted before the kill succeeds after
    the restart; one already interrupted MAX_RUN_ATTEMPTS times fails with FailureDetails."""
    from engine.jobs.media_analysis import MAX_RUN_ATTEMPTS

    client, _, data_dir, _, process = server
    given_up = start_job(client, "one.manifest", OperationsConfig={"DetectModerationLabels": {}})
    wait_job(client, given_up)
    accepted = start_job(client, "bulk.manifest",
                         OperationsConfig={"DetectModerationLabels": {"MinConfidence": 50}})
    process.kill()
    with sqlite3.connect(data_dir / "jobs.sqlite3") as connection:
        connection.execute("UPDATE media_analysis_jobs SET status = 'IN_PROGRESS', attempts = ?,"
                           " outputs_json = NULL, completed_ms = NULL WHERE job_id = ?",
                           (MAX_RUN_ATTEMPTS, given_up))
        (status,) = connection.execute("SELECT status FROM media_analysis_jobs WHERE job_id = ?",
                                       (accepted,)).fetchone()
    assert status in ("QUEUED", "IN_PROGRESS")
    process.start()
    client = rekognition_client(process.url)
    assert wait_job(client, accepted)["Status"] == "SUCCEEDED"
    failed = wait_job(client, given_up)
    assert failed["Status"] == "FAILED"
    assert failed["FailureDetails"]["Code"] == "INTERNAL_ERROR"
    assert "interrupted" in failed["FailureDetails"]["Message"]


def test_a_job_over_an_s3_server_reads_and_writes_there(tmp_path, moto_endpoint):
    """Manifest, images and outputs in a real S3 server (moto on 127.0.0.1), no adapter."""
    from tests.integration.api_fixtures import aws_client

    s3 = aws_client("s3", moto_endpoint)
    for bucket in ("photos", "outputs"):
        s3.create_bucket(Bucket=bucket)
    manifest = []
    for number in range(6):
        s3.put_object(Bucket="photos", Key=f"p{number}.png", Body=picture(COLOURS[number % 4],
                                                                          900 + number))
        manifest.append(json.dumps({"source-ref": f"s3://photos/p{number}.png"}))
    s3.put_object(Bucket="photos", Key="photos.manifest", Body="\n".join(manifest).encode())
    data_dir = tmp_path / "data"
    more_keys = write_account_keys(tmp_path / "more-keys", OTHER_ACCOUNT, "210987654399")
    env = server_env(data_dir, moto_endpoint, MODENGINE_API_CREDENTIALS_FILE=str(more_keys))
    process = ServerProcess(data_dir, env, [], tmp_path / "server.log").start()
    try:
        client = rekognition_client(process.url)
        request = {"Input": {"S3Object": {"Bucket": "photos", "Name": "photos.manifest"}},
                   "OperationsConfig": {"DetectModerationLabels": {"MinConfidence": 60}}}
        # An account without object_access_grants reads nothing of the S3 backend.
        other = rekognition_client(process.url, keys=OTHER_ACCOUNT)
        with pytest.raises(other.exceptions.InvalidS3ObjectException):
            other.start_media_analysis_job(
                OutputConfig={"S3Bucket": "outputs", "S3KeyPrefix": "bulk/"}, **request)
        job = wait_job(client, client.start_media_analysis_job(
            OutputConfig={"S3Bucket": "outputs", "S3KeyPrefix": "bulk/"}, **request)["JobId"])
        assert job["Status"] == "SUCCEEDED", job.get("FailureDetails")
        results = job["Results"]["S3Object"]
        assert results["Name"] == f"bulk/{job['JobId']}/results.jsonl"
        lines = s3.get_object(Bucket="outputs", Key=results["Name"])["Body"].read().splitlines()
        for text, expected in zip(lines, manifest, strict=True):
            entry = json.loads(text)
            assert entry["source-ref"] == json.loads(expected)["source-ref"]
            alone = client.detect_moderation_labels(
                Image={"S3Object": {"Bucket": "photos",
                                    "Name": entry["source-ref"].removeprefix("s3://photos/")}},
                MinConfidence=60)
            alone.pop("ResponseMetadata")
            assert entry["detect-moderation-labels"] == alone
        summary = job["ManifestSummary"]["S3Object"]
        document = json.loads(s3.get_object(Bucket="outputs", Key=summary["Name"])["Body"].read())
        assert document["statistics"]["valid-json-lines"] == 6 and document["errors"] == []
    finally:
        process.stop()
