"""Custom Moderation adapters through boto3 against a real server whose runner is the scripted
double (no Ray): projects and versions, every typed error, training to an evaluation written
to the output location, DetectModerationLabels with ProjectVersion, per-account isolation and
what a restart does to a version still training.

Images are scored by the colour test double (tests/doubles/colour_classifier.py): its features
are its label confidences, so an adapter for "Hate Symbols" learns "red at the top" from red
positives and blue/green/white negatives.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from engine.api.settings import ApiSettings
from tests.integration.api_fixtures import (
    owned_bucket,
    rekognition_client,
    scripted_server,
    write_account_keys,
)

pytestmark = pytest.mark.integration

OTHER_ACCOUNT = ("AKIAOTHERACCOUNT0002", "other-account-secret-adapters-0001")
LABEL = "Hate Symbols"
COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0),
           "white": (255, 255, 255)}


def picture(colour: str, seed: int, image_format: str = "PNG") -> bytes:
    """A picture whose top quarter is `colour`, with a little noise so no two are equal."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.full((64, 64, 3), COLOURS[colour], np.int16)
                     + rng.integers(-12, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format)
    return buffer.getvalue()


def line(bucket: str, key: str, labels: list[str]) -> str:
    return json.dumps({"source-ref": f"s3://{bucket}/{key}",
                       "content-moderation-groundtruth": {
                           "ModerationLabels": [{"Name": name} for name in labels]}})


def write_training_set(images, positives: int, negatives: int) -> str:
    """Red-topped positives and blue/green/white negatives in the embedded store's `data`
    bucket (the folder `images`), and their manifest; returns the manifest's key."""
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for number in range(positives):
        (images / f"pos{number}.png").write_bytes(picture("red", number))
        lines.append(line("data", f"pos{number}.png", [LABEL]))
    for number in range(negatives):
        colour = ("blue", "green", "white")[number % 3]
        (images / f"neg{number}.png").write_bytes(picture(colour, 100 + number))
        lines.append(line("data", f"neg{number}.png", []))
    (images / "train.manifest").write_text("\n".join(lines) + "\n")
    return "train.manifest"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("adapters-api")
    more_keys = write_account_keys(data_dir / "more-keys", OTHER_ACCOUNT, "210987654321")
    write_training_set(data_dir / "objects" / "data", positives=10, negatives=12)
    with scripted_server(data_dir, ApiSettings(extra_credentials_file=more_keys)) as (
            url, jobs, _settings):
        yield url, jobs, data_dir


def clients(api):
    url = api[0]
    return (rekognition_client(url),
            rekognition_client(url, keys=OTHER_ACCOUNT))


def new_project(client, name: str) -> str:
    return client.create_project(ProjectName=name, Feature="CONTENT_MODERATION",
                                 AutoUpdate="DISABLED")["ProjectArn"]


def create_version(client, project_arn: str, name: str, manifest: str = "train.manifest",
                   **extra):
    return client.create_project_version(
        ProjectArn=project_arn, VersionName=name,
        OutputConfig={"S3Bucket": "results", "S3KeyPrefix": "adapters"},
        TrainingData={"Assets": [{"GroundTruthManifest": {
            "S3Object": {"Bucket": "data", "Name": manifest}}}]},
        TestingData={"AutoCreate": True}, **extra)["ProjectVersionArn"]


def wait_trained(client, project_arn: str, version_arn: str, timeout_s: float = 60,
                 log_tail=lambda: "") -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        name = version_arn.split("/version/")[1].split("/")[0]
        description = client.describe_project_versions(
            ProjectArn=project_arn, VersionNames=[name])["ProjectVersionDescriptions"][0]
        if description["Status"] != "TRAINING_IN_PROGRESS":
            return description
        assert time.monotonic() < deadline, f"the training never finished {log_tail()}"
        time.sleep(0.1)


def test_projects_are_created_described_and_deleted(api):
    client, _ = clients(api)
    arn = new_project(client, "describe-me")
    assert arn.startswith("arn:aws:rekognition:us-east-1:") and ":project/describe-me/" in arn
    # As at AWS: without Features only CUSTOM_LABELS projects are described.
    assert client.describe_projects(ProjectNames=["describe-me"])["ProjectDescriptions"] == []
    [described] = client.describe_projects(
        ProjectNames=["describe-me"], Features=["CONTENT_MODERATION"])["ProjectDescriptions"]
    assert described["ProjectArn"] == arn and described["Status"] == "CREATED"
    assert described["Feature"] == "CONTENT_MODERATION" and described["AutoUpdate"] == "DISABLED"
    assert client.delete_project(ProjectArn=arn)["Status"] == "DELETING"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_project(ProjectArn=arn)


def test_project_errors_are_typed(api):
    client, _ = clients(api)
    with pytest.raises(client.exceptions.InvalidParameterException, match="CONTENT_MODERATION"):
        client.create_project(ProjectName="labels", Feature="CUSTOM_LABELS")
    with pytest.raises(client.exceptions.InvalidParameterException, match="CONTENT_MODERATION"):
        client.create_project(ProjectName="no-feature")
    new_project(client, "taken")
    with pytest.raises(client.exceptions.ResourceInUseException, match="taken"):
        new_project(client, "taken")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_project_versions(
            ProjectArn="arn:aws:rekognition:us-east-1:123456789012:project/nothing/1")


def write_manifest(data_dir, name: str, text: str) -> str:
    (data_dir / "objects" / "data" / name).write_text(text)
    return name


def test_each_data_problem_answers_its_typed_error(api):
    client, _ = clients(api)
    _, _jobs, data_dir = api
    arn = new_project(client, "bad-data")
    good = (data_dir / "objects" / "data" / "train.manifest").read_text()
    (data_dir / "objects" / "data" / "notes.png").write_text("not a picture")
    cases = {
        "is not a JSON object": good + "{broken\n",
        "needs 'content-moderation-groundtruth'": good + json.dumps({"source-ref": "s3://data/pos0.png"}) + "\n",
        "source-ref must be s3://bucket/key": good + json.dumps({"source-ref": "pos0.png", "content-moderation-groundtruth": {"ModerationLabels": []}}) + "\n",
        "'Smokin' is not in the moderation taxonomy": good + line("data", "pos0.png", ["Smokin"]) + "\n",
        "cannot be read": good + line("data", "missing.png", []) + "\n",
        "is not a JPEG or PNG": good + line("data", "notes.png", []) + "\n",
        "Too few examples for 'Hate Symbols'": "\n".join(good.splitlines()[7:]) + "\n",
    }
    for number, (message, text) in enumerate(cases.items()):
        name = write_manifest(data_dir, f"bad{number}.manifest", text)
        with pytest.raises(client.exceptions.InvalidParameterException, match=message):
            create_version(client, arn, f"v{number}", manifest=name)
    with pytest.raises(client.exceptions.InvalidParameterException, match="cannot be read"):
        create_version(client, arn, "v-missing", manifest="no-such.manifest")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        create_version(client, arn.replace("bad-data", "no-project"), "v1")
    assert client.describe_project_versions(ProjectArn=arn)["ProjectVersionDescriptions"] == []


def test_an_adapter_trains_evaluates_and_labels_images(api):
    client, _ = clients(api)
    _, _jobs, data_dir = api
    project = new_project(client, "hate-symbols")
    version = create_version(client, project, "v1", VersionDescription="red tops",
                             FeatureConfig={"ContentModeration": {"ConfidenceThreshold": 60.0}})
    with pytest.raises(client.exceptions.ResourceInUseException, match="v1"):
        create_version(client, project, "v1")
    described = wait_trained(client, project, version)
    assert described["Status"] == "TRAINING_COMPLETED", described.get("StatusMessage")
    assert described["FeatureConfig"]["ContentModeration"]["ConfidenceThreshold"] == 60.0
    evaluation = described["EvaluationResult"]
    assert evaluation["F1Score"] == 1.0
    summary_ref = evaluation["Summary"]["S3Object"]
    summary = json.loads((data_dir / "objects" / summary_ref["Bucket"]
                          / summary_ref["Name"]).read_text())
    assert summary["labels"][0]["name"] == LABEL and summary["f1"] == 1.0
    testing = described["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]
    assert testing["S3Object"]["Name"] == "adapters/v1/testing.manifest"

    red = client.detect_moderation_labels(Image={"Bytes": picture("red", 999)},
                                          ProjectVersion=version, MinConfidence=60)
    assert red["ProjectVersion"] == version
    names = {(label["Name"], label["ParentName"]): label["Confidence"]
             for label in red["ModerationLabels"]}
    assert names[(LABEL, "")] >= 60
    # The base model's own label of a red top is still there, unchanged.
    assert names[("Blood & Gore", "Graphic Violence")] == 95.0
    blue = client.detect_moderation_labels(Image={"Bytes": picture("blue", 998)},
                                           ProjectVersion=version, MinConfidence=60)
    assert LABEL not in {label["Name"] for label in blue["ModerationLabels"]}
    plain = client.detect_moderation_labels(Image={"Bytes": picture("red", 999)})
    assert "ProjectVersion" not in plain
    assert LABEL not in {label["Name"] for label in plain["ModerationLabels"]}

    with pytest.raises(client.exceptions.ResourceInUseException, match="still has 1"):
        client.delete_project(ProjectArn=project)
    assert client.delete_project_version(ProjectVersionArn=version)["Status"] == "DELETING"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.detect_moderation_labels(Image={"Bytes": picture("red", 1)}, ProjectVersion=version)
    client.delete_project(ProjectArn=project)


def test_another_account_cannot_describe_use_or_delete_a_project(api):
    client, other = clients(api)
    project = new_project(client, "private")
    version = create_version(client, project, "v1")
    assert wait_trained(client, project, version)["Status"] == "TRAINING_COMPLETED"
    assert other.describe_projects(Features=["CONTENT_MODERATION"])["ProjectDescriptions"] == []
    for call in (lambda: other.describe_project_versions(ProjectArn=project),
                 lambda: other.detect_moderation_labels(Image={"Bytes": picture("red", 5)},
                                                        ProjectVersion=version),
                 lambda: other.delete_project_version(ProjectVersionArn=version),
                 lambda: other.delete_project(ProjectArn=project),
                 lambda: create_version(other, project, "v2")):
        with pytest.raises(other.exceptions.ResourceNotFoundException):
            call()
    # The other account may use the same names for its own project.
    assert new_project(other, "private") != project
    assert client.describe_project_versions(ProjectArn=project)["ProjectVersionDescriptions"]


def test_a_version_still_training_cannot_be_deleted_or_used(api):
    client, _ = clients(api)
    _, jobs, _ = api
    runner = jobs.executor.runner()
    project = new_project(client, "busy")
    runner.release_training.clear()
    try:
        version = create_version(client, project, "v1")
        with pytest.raises(client.exceptions.ResourceInUseException, match="still training"):
            client.delete_project_version(ProjectVersionArn=version)
        with pytest.raises(client.exceptions.ResourceNotReadyException, match="still training"):
            client.detect_moderation_labels(Image={"Bytes": picture("red", 1)},
                                            ProjectVersion=version)
    finally:
        runner.release_training.set()
    assert wait_trained(client, project, version)["Status"] == "TRAINING_COMPLETED"


def test_a_restart_resumes_a_version_left_training_and_gives_up_with_a_message(tmp_path):
    """A version the previous server left TRAINING_IN_PROGRESS trains again at start; one
    interrupted too often ends TRAINING_FAILED with a StatusMessage, never IN_PROGRESS."""
    from engine.jobs.adapters import MAX_TRAINING_ATTEMPTS

    images = tmp_path / "objects" / "data"
    images.mkdir(parents=True)
    lines = []
    for number in range(8):
        (images / f"p{number}.png").write_bytes(picture("red", number))
        (images / f"n{number}.png").write_bytes(picture("green", 50 + number))
        lines += [line("data", f"p{number}.png", [LABEL]), line("data", f"n{number}.png", [])]
    (images / "train.manifest").write_text("\n".join(lines) + "\n")
    with scripted_server(tmp_path) as (url, jobs, _):
        client = rekognition_client(url)
        project = new_project(client, "restart")
        jobs.executor.runner().release_training.clear()
        first = create_version(client, project, "first")
        second = create_version(client, project, "second")
        jobs.adapters.stop()  # the "killed" server's training threads never report back
        jobs.executor.runner().release_training.set()
        time.sleep(0.5)
    # Whatever the stopped threads managed, put both back as a killed server leaves them.
    connection = jobs.adapters.store._connection()
    connection.execute("UPDATE project_versions SET status = 'TRAINING_IN_PROGRESS',"
                       " attempts = ? WHERE version_arn = ?", (MAX_TRAINING_ATTEMPTS, second))
    connection.execute("UPDATE project_versions SET status = 'TRAINING_IN_PROGRESS',"
                       " attempts = 1 WHERE version_arn = ?", (first,))
    with scripted_server(tmp_path) as (url, jobs, _):
        client = rekognition_client(url)
        resumed = wait_trained(client, project, first)
        failed = wait_trained(client, project, second)
    assert resumed["Status"] == "TRAINING_COMPLETED" and resumed["EvaluationResult"]["F1Score"] > 0.9
    assert failed["Status"] == "TRAINING_FAILED"
    assert "interrupted" in failed["StatusMessage"]


def test_an_accounts_video_jobs_use_its_adapter_recorded_at_start(api):
    """Beyond Rekognition: `modengine adapters use ARN --account A` makes A's future jobs score
    their frames with the adapter; the job records it, `jobs show` shows it, SEGMENTS carry the
    adapted label, and the adapter cannot be deleted while it is the account's default."""
    from engine.api.keys import read_default_key
    from engine.cli import main
    from engine.jobs import inspection
    from tests.doubles.scripted_runner import write_script
    from tests.integration.api_fixtures import wait_for_job

    client, other = clients(api)
    _, _jobs, data_dir = api
    project = new_project(client, "video")
    version = create_version(client, project, "v1")
    assert wait_trained(client, project, version)["Status"] == "TRAINING_COMPLETED"
    account = read_default_key(data_dir / "credentials").account
    assert main(["adapters", "use", version, "--account", "210987654321",
                 "--data-dir", str(data_dir)]) == 2  # not the other account's adapter
    assert main(["adapters", "use", version, "--account", account,
                 "--data-dir", str(data_dir)]) == 0
    red = {t: {"Blood & Gore": 95.0} for t in range(3000, 6000, 1000)}
    write_script(data_dir / "objects" / "videos" / "thirds.json", 9000, red)
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "thirds.json"}})["JobId"]
    _, pages = wait_for_job(client, job_id, AggregateBy="SEGMENTS")
    assert pages[0]["JobStatus"] == "SUCCEEDED", pages[0].get("StatusMessage")
    flagged = [(d["StartTimestampMillis"], d["EndTimestampMillis"])
               for page in pages for d in page["ModerationLabels"]
               if d["ModerationLabel"]["Name"] == LABEL]
    assert flagged == [(3000, 6000)]
    details = inspection.job_details(inspection.open_store(data_dir), job_id)
    assert details["adapter"] == version
    assert f"Adapter:         {version}" in inspection.render_details(details)
    with pytest.raises(client.exceptions.ResourceInUseException, match="video jobs"):
        client.delete_project_version(ProjectVersionArn=version)
    # The other account's jobs (on its own copy of the video) are untouched by it.
    write_script(owned_bucket(data_dir, "other-videos", "210987654321") / "thirds.json", 9000,
                 red)
    other_job = other.start_content_moderation(
        Video={"S3Object": {"Bucket": "other-videos", "Name": "thirds.json"}})["JobId"]
    _, other_pages = wait_for_job(other, other_job, AggregateBy="SEGMENTS")
    assert LABEL not in {d["ModerationLabel"]["Name"]
                         for page in other_pages for d in page["ModerationLabels"]}
    assert main(["adapters", "use", "--clear", "--account", account,
                 "--data-dir", str(data_dir)]) == 0
    client.delete_project_version(ProjectVersionArn=version)


def test_an_adapter_trains_from_manifests_and_images_in_an_s3_server(tmp_path, moto_endpoint):
    """Training data in a real S3 server (moto on 127.0.0.1), not the embedded store: the
    manifest (a pinned version) and the images are read from there, the evaluation summary and
    the split manifests are written there, and the adapter labels an image read from there."""
    from tests.integration.api_fixtures import aws_client

    s3 = aws_client("s3", moto_endpoint)
    for bucket in ("training", "results"):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket="training", VersioningConfiguration={"Status": "Enabled"})
    lines = []
    for number in range(8):
        s3.put_object(Bucket="training", Key=f"img/p{number}.png", Body=picture("red", number))
        s3.put_object(Bucket="training", Key=f"img/n{number}.jpg",
                      Body=picture(("blue", "green")[number % 2], 60 + number, "JPEG"))
        lines += [line("training", f"img/p{number}.png", [LABEL]),
                  line("training", f"img/n{number}.jpg", [])]
    pinned = s3.put_object(Bucket="training", Key="train.manifest",
                           Body=("\n".join(lines) + "\n").encode())["VersionId"]
    s3.put_object(Bucket="training", Key="train.manifest", Body=b"{overwritten later\n")
    s3_settings = {"s3_endpoint": moto_endpoint, "s3_access_key": "x", "s3_secret_key": "y"}
    with scripted_server(tmp_path, **s3_settings) as (url, _, _):
        client = rekognition_client(url)
        project = new_project(client, "from-s3")
        version = client.create_project_version(
            ProjectArn=project, VersionName="v1",
            OutputConfig={"S3Bucket": "results", "S3KeyPrefix": "adapters"},
            TrainingData={"Assets": [{"GroundTruthManifest": {"S3Object": {
                "Bucket": "training", "Name": "train.manifest", "Version": pinned}}}]},
            TestingData={"AutoCreate": True})["ProjectVersionArn"]
        described = wait_trained(client, project, version)
        assert described["Status"] == "TRAINING_COMPLETED", described.get("StatusMessage")
        assert described["EvaluationResult"]["F1Score"] == 1.0
        summary = described["EvaluationResult"]["Summary"]["S3Object"]
        document = json.loads(s3.get_object(Bucket=summary["Bucket"], Key=summary["Name"])
                              ["Body"].read())
        assert document["f1"] == 1.0 and document["training_images"] > 0
        split = described["TestingDataResult"]["Output"]["Assets"][0]["GroundTruthManifest"]
        assert s3.get_object(Bucket="results", Key=split["S3Object"]["Name"])["Body"].read()
        s3.put_object(Bucket="training", Key="new/red.png", Body=picture("red", 777))
        labelled = client.detect_moderation_labels(
            Image={"S3Object": {"Bucket": "training", "Name": "new/red.png"}},
            ProjectVersion=version, MinConfidence=50)
        assert LABEL in {label["Name"] for label in labelled["ModerationLabels"]}
