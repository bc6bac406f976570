"""engine.client without a server or Ray: result merging, DataFrames, credentials, argument
errors, and start/wait/results against a scripted boto3 stand-in."""

from __future__ import annotations

import sys
import typing

import pytest

from engine import client as client_module
from engine.client import (
    Client,
    ModerationJobFailedError,
    ModerationJobInProgressError,
    ModerationJobTimeoutError,
    merge_pages,
    moderate,
    split_s3_uri,
    to_dataframe,
)
from engine.config import EngineSettings


def detection(ts, name, parent, level, confidence, segment=None):
    item = {"Timestamp": ts, "ModerationLabel": {"Confidence": confidence, "Name": name,
                                                 "ParentName": parent, "TaxonomyLevel": level}}
    if segment:
        item |= {"StartTimestampMillis": segment[0], "EndTimestampMillis": segment[1],
                 "DurationMillis": segment[1] - segment[0]}
    return item


PAGE_ONE = {
    "JobStatus": "SUCCEEDED",
    "VideoMetadata": {"DurationMillis": 3000},
    "ModerationModelVersion": "7.0",
    "JobId": "abc",
    "ModerationLabels": [detection(0, "Weapons", "Violence", 2, 65.0)],
    "NextToken": "t1",
    "GetRequestMetadata": {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"},
    "ResponseMetadata": {"HTTPStatusCode": 200},
}
PAGE_TWO = PAGE_ONE | {"ModerationLabels": [detection(1000, "Violence", "", 1, 65.0)]}
del PAGE_TWO["NextToken"]


def test_merge_pages_keeps_first_page_members_and_every_label():
    merged = merge_pages([PAGE_ONE, PAGE_TWO])
    assert "NextToken" not in merged and "ResponseMetadata" not in merged
    assert merged["JobStatus"] == "SUCCEEDED" and merged["VideoMetadata"] == {"DurationMillis": 3000}
    assert [item["Timestamp"] for item in merged["ModerationLabels"]] == [0, 1000]


def test_to_dataframe_flat_columns_and_attrs():
    frame = to_dataframe(merge_pages([PAGE_ONE, PAGE_TWO]))
    assert list(frame.columns) == ["Timestamp", "Name", "ParentName", "TaxonomyLevel", "Confidence"]
    assert frame["Name"].tolist() == ["Weapons", "Violence"]
    assert frame["TaxonomyLevel"].tolist() == [2, 1] and str(frame["Timestamp"].dtype) == "int64"
    assert frame.attrs["JobStatus"] == "SUCCEEDED" and "ModerationLabels" not in frame.attrs


def test_to_dataframe_segments_and_empty():
    result = {"GetRequestMetadata": {"AggregateBy": "SEGMENTS"},
              "ModerationLabels": [detection(0, "Gambling", "Gambling", 2, 80.0, (0, 2000))]}
    frame = to_dataframe(result)
    assert frame[["StartTimestampMillis", "EndTimestampMillis", "DurationMillis"]].values.tolist() == [
        [0, 2000, 2000]
    ]
    empty = to_dataframe({"ModerationLabels": [], "GetRequestMetadata": {"AggregateBy": "SEGMENTS"}})
    assert len(empty) == 0 and "DurationMillis" in empty.columns


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'modengine\[notebook\]'"):
        to_dataframe({"ModerationLabels": []})


def test_split_s3_uri():
    assert split_s3_uri("s3://videos/a/b.mp4") == ("videos", "a/b.mp4")
    for bad in ("s3://videos", "s3:///key", "videos/key"):
        with pytest.raises(ValueError, match="s3://bucket/key"):
            split_s3_uri(bad)


def test_read_credentials_file(tmp_path):
    from engine.api.keys import read_profile_key

    def read_credentials_file(path, profile="default"):
        key = read_profile_key(path, profile)
        return key.access_key_id, key.secret_access_key

    path = tmp_path / "credentials"
    path.write_text("[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n"
                    "modengine_account = 123\n[other]\naws_access_key_id = AKIA2\n"
                    "aws_secret_access_key = s2\n")
    assert read_credentials_file(path) == ("AKIA1", "s1")
    assert read_credentials_file(path, "other") == ("AKIA2", "s2")
    with pytest.raises(KeyError):
        read_credentials_file(path, "missing")
    with pytest.raises(FileNotFoundError):
        read_credentials_file(tmp_path / "nothing")


def test_moderate_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="sort_by"):
        moderate("x.mp4", sort_by="SIZE")
    with pytest.raises(FileNotFoundError, match="no such video file"):
        moderate(tmp_path / "missing.mp4", settings=EngineSettings(data_dir=tmp_path))
    with pytest.raises(TypeError, match="endpoint_url"):
        moderate(tmp_path / "missing.mp4", region_name="eu-west-1")


def test_local_path_with_an_endpoint_says_to_upload_first(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    with pytest.raises(ValueError, match="modengine put"):
        moderate(video, endpoint_url="http://127.0.0.1:9", aws_access_key_id="a",
                 aws_secret_access_key="b")


class ScriptedRekognition:
    """Test double for boto3's rekognition client: answers from a list of scripted pages."""

    def __init__(self, statuses, pages=None, status_message="bad video"):
        self.statuses = list(statuses)
        self.pages = pages or {}
        self.status_message = status_message
        self.calls = []

    def start_content_moderation(self, **request):
        self.calls.append(("start", request))
        return {"JobId": "job-1"}

    def get_content_moderation(self, **request):
        self.calls.append(("get", request))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status != "SUCCEEDED":
            return {"JobStatus": status, "StatusMessage": self.status_message, "ModerationLabels": []}
        return self.pages[request.get("NextToken")]


def scripted_client(rekognition) -> Client:
    client = Client("http://127.0.0.1:9", aws_access_key_id="a", aws_secret_access_key="b")
    client.rekognition = rekognition
    return client


def test_start_builds_the_request():
    rekognition = ScriptedRekognition(["SUCCEEDED"])
    client = scripted_client(rekognition)
    assert client.start("s3://videos/clip.mp4", min_confidence=60, version="v1", job_tag="t") == "job-1"
    assert rekognition.calls[0][1] == {
        "Video": {"S3Object": {"Bucket": "videos", "Name": "clip.mp4", "Version": "v1"}},
        "MinConfidence": 60, "JobTag": "t",
    }


def test_wait_polls_until_done_and_failed_raises_with_status_message(monkeypatch):
    monkeypatch.setattr(client_module.time, "sleep", lambda s: None)
    assert scripted_client(ScriptedRekognition(["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"],
                                               {None: PAGE_TWO})).wait("job-1") == "SUCCEEDED"
    with pytest.raises(ModerationJobFailedError) as failed:
        scripted_client(ScriptedRekognition(["IN_PROGRESS", "FAILED"])).wait("job-1")
    assert failed.value.status_message == "bad video" and "job-1 FAILED: bad video" in str(failed.value)
    with pytest.raises(ModerationJobTimeoutError):
        scripted_client(ScriptedRekognition(["IN_PROGRESS"])).wait("job-1", timeout_s=0)


def test_results_pages_through_next_tokens():
    rekognition = ScriptedRekognition(["SUCCEEDED"], {None: PAGE_ONE, "t1": PAGE_TWO})
    merged = scripted_client(rekognition).results("job-1", aggregate_by="TIMESTAMPS", page_size=1)
    assert len(merged["ModerationLabels"]) == 2
    assert [call[1].get("NextToken") for call in rekognition.calls] == [None, "t1"]
    assert rekognition.calls[0][1]["MaxResults"] == 1
    frame = scripted_client(ScriptedRekognition(["SUCCEEDED"], {None: PAGE_TWO})).results(
        "job-1", as_dataframe=True)
    assert frame["Name"].tolist() == ["Violence"]


def test_results_of_unfinished_or_failed_jobs_raise():
    with pytest.raises(ModerationJobInProgressError, match="wait"):
        scripted_client(ScriptedRekognition(["IN_PROGRESS"])).results("job-1")
    with pytest.raises(ModerationJobFailedError):
        scripted_client(ScriptedRekognition(["FAILED"])).results("job-1")


class RunnerDouble:
    """Stands in for LocalRunner: counts how often it is built and shut down."""

    built: typing.ClassVar[list] = []

    def __init__(self, settings):
        self.settings = settings
        self.shut_down = False
        RunnerDouble.built.append(self)

    def shutdown(self):
        self.shut_down = True


def test_runners_stay_warm_per_settings_until_close(monkeypatch, tmp_path):
    import engine.local_runner as runner_module
    from engine.config import EngineSettings

    monkeypatch.setattr(runner_module, "LocalRunner", RunnerDouble)
    RunnerDouble.built = []
    first = EngineSettings(data_dir=tmp_path)
    other = first.replace(max_batch_size=8)
    assert client_module._warm_runner(first) is client_module._warm_runner(first)
    assert client_module._warm_runner(other) is not client_module._warm_runner(first)
    assert len(RunnerDouble.built) == 2
    client_module.close()
    assert all(runner.shut_down for runner in RunnerDouble.built)
    assert client_module._warm_runner(first) is RunnerDouble.built[-1] and len(RunnerDouble.built) == 3
    client_module.close()


def test_moderate_many_runs_videos_together_and_keeps_each_failure_to_its_video(monkeypatch):
    import threading

    both_running = threading.Barrier(2, timeout=10)  # passes only if two calls overlap

    def moderate_double(uri, settings=None, **options):
        both_running.wait()
        if "missing" in uri:
            raise FileNotFoundError(uri)
        return {"uri": uri, **options}

    monkeypatch.setattr(client_module, "moderate", moderate_double)
    results = client_module.moderate_many(
        ["a.mp4", "missing.mp4"], max_concurrent=2, settings=object(), min_confidence=60
    )
    assert results["a.mp4"] == {"uri": "a.mp4", "min_confidence": 60}
    assert isinstance(results["missing.mp4"], FileNotFoundError)
    with pytest.raises(ValueError):
        client_module.moderate_many(["a.mp4"], max_concurrent=0)
