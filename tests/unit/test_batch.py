"""engine.batch without Ray: locations, the stage functions called directly, regrouping rows per
video, and the skip rule (a batch whose videos are all done never starts Ray)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from engine.batch.collect import VideoCollector
from engine.batch.locations import DirectoryLocation, PrefixLocation, is_video_name, open_location
from engine.batch.run import BatchRequest, batch_stamp, result_name, run_batch
from engine.batch.stages import BatchClassifier, decode_rows, metadata_from_json, plan_video
from engine.config import EngineSettings
from engine.errors import InvalidS3ObjectException
from engine.storage import LocalObjectStore
from tests.doubles.colour_classifier import INPUT_SIZE
from tests.media import make_colour_video

TEST_DOUBLE_MODEL = "tests.doubles.colour_classifier:ColourTestDoubleClassifier"


def test_video_names():
    assert is_video_name("a/b/Clip.MP4") and is_video_name("x.mov") and is_video_name("y.mkv")
    assert not is_video_name("summary.json") and not is_video_name("notes.txt")


def test_directory_location_lists_recursively_and_writes_atomically(tmp_path):
    location = DirectoryLocation(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        location.list_files()
    location.write("sub/a.mp4.json", b"{}")
    location.write("b.json", b"[1]")
    assert [item.name for item in location.list_files()] == ["b.json", "sub/a.mp4.json"]
    assert location.read("sub/a.mp4.json") == b"{}"
    assert not list((tmp_path / "out" / "sub").glob(".*"))  # no temporary file left behind


def test_prefix_location_over_the_embedded_store(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes("videos", "in/a.mp4", b"aa", "video/mp4")
    store.put_bytes("videos", "in/deep/b.mp4", b"bbb", "video/mp4")
    store.put_bytes("videos", "in2/c.mp4", b"c", "video/mp4")
    location = PrefixLocation(store, "videos", "in")  # a folder: never matches in2/
    assert [(item.name, item.size_bytes) for item in location.list_files()] == [
        ("a.mp4", 2), ("deep/b.mp4", 3)]
    assert location.uri == "s3://videos/in/" and location.uri_of("a.mp4") == "s3://videos/in/a.mp4"
    location.write("r.json", b"{}")
    assert location.read("r.json") == b"{}"
    assert open_location("s3://videos/in/", EngineSettings(data_dir=tmp_path)).list_files()[0].name == "a.mp4"
    with pytest.raises(InvalidS3ObjectException, match="nobucket"):
        PrefixLocation(store, "nobucket", "").list_files()


def test_local_store_etag_changes_with_the_content(tmp_path):
    store = LocalObjectStore(tmp_path / "objects")
    store.put_bytes("b", "k", b"one")
    before = store.list_objects("b")[0]
    path = tmp_path / "objects" / "b" / "k"
    path.write_bytes(b"other")
    os.utime(path, ns=(before.size_bytes, 10**18))
    assert store.list_objects("b")[0].etag != before.etag


def segment_rows(video, truth_path, settings):
    return plan_video({"video": video, "location": str(truth_path.parent)}, settings)


def test_stages_turn_a_video_into_scored_frames_and_regroup_them(tmp_path):
    settings = EngineSettings(data_dir=tmp_path, model=TEST_DOUBLE_MODEL, segment_length_s=2)
    make_colour_video(tmp_path / "a.mp4", [("red", 2), ("blue", 2)])
    planned = segment_rows("a.mp4", tmp_path / "a.mp4", settings)
    assert len(planned) == 2 and {row["segment_count"] for row in planned} == {2}
    assert metadata_from_json(planned[0]["metadata"]).duration_ms == 4000
    frames = [out for row in planned for out in decode_rows(row, settings, INPUT_SIZE)]
    assert [row["timestamp_ms"] for row in frames] == [0, 1000, 2000, 3000]
    assert frames[0]["frame"].shape == (*INPUT_SIZE, 3)
    batch = {key: np.array([row[key] for row in frames]) for key in frames[0]}
    scored = BatchClassifier(settings)(batch)
    assert "frame" not in scored and scored["confidences"].shape[0] == 4
    collector = VideoCollector()
    rows = [{key: scored[key][i] for key in scored} for i in range(4)]
    finished = [collector.add(row) for row in reversed(rows)]  # any arrival order
    assert finished[:3] == [None, None, None] and not finished[3].failed
    assert sorted(score.timestamp_ms for score in finished[3].scores) == [0, 1000, 2000, 3000]
    assert collector.unfinished() == []


def test_a_broken_video_becomes_one_error_row_that_flows_through(tmp_path):
    settings = EngineSettings(data_dir=tmp_path, model=TEST_DOUBLE_MODEL)
    (tmp_path / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    [row] = segment_rows("broken.mp4", tmp_path / "broken.mp4", settings)
    assert row["kind"] == "error" and "broken.mp4" in row["error"]
    [decoded] = decode_rows(row, settings, INPUT_SIZE)
    scored = BatchClassifier(settings)({key: np.array([value]) for key, value in decoded.items()})
    assert not scored["confidences"].any()
    finished = VideoCollector().add({key: scored[key][0] for key in scored})
    assert finished.failed and "broken.mp4" in finished.error


def test_collector_waits_for_every_segment_and_keeps_the_first_error():
    collector = VideoCollector()
    base = {"video": "v", "segment_count": 2, "metadata": "{}", "timestamp_ms": 0,
            "confidences": np.zeros(3, np.float32), "error": ""}
    assert collector.add(base | {"segment_index": 1, "rows_in_segment": 1, "kind": "error",
                                 "error": "segment 1 broke"}) is None
    assert collector.add(base | {"segment_index": 0, "rows_in_segment": 2, "kind": "frame"}) is None
    assert collector.unfinished() == ["v"]
    finished = collector.add(base | {"segment_index": 0, "rows_in_segment": 2, "kind": "frame",
                                     "timestamp_ms": 1000})
    assert finished.error == "segment 1 broke" and len(finished.scores) == 2


def test_videos_with_a_current_result_are_skipped_without_ray(tmp_path, monkeypatch):
    settings = EngineSettings(data_dir=tmp_path, model=TEST_DOUBLE_MODEL)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"pretend video")
    request = BatchRequest(str(tmp_path / "in"), str(tmp_path / "out"))
    inputs, outputs = DirectoryLocation(tmp_path / "in"), DirectoryLocation(tmp_path / "out")
    [video] = inputs.list_files()
    stamp = batch_stamp(inputs, video, request, settings)
    outputs.write(result_name("a.mp4"), json.dumps({"ModerationLabels": [], "Batch": stamp}).encode())
    monkeypatch.setattr("engine.batch.run._moderate", pytest.fail)  # must not be reached
    lines = []
    summary = run_batch(settings, request, report=lines.append)
    assert summary["Counts"] == {"Videos": 1, "Succeeded": 0, "Skipped": 1, "Failed": 0, "NotVideos": 0}
    assert json.loads(outputs.read("summary.json")) == summary
    assert "1 already done, 0 to moderate" in lines[0]
    # Another request (or a changed video) no longer matches the stored stamp.
    other = batch_stamp(inputs, video, BatchRequest(request.input_uri, request.output_uri, 70), settings)
    assert other != stamp
    (tmp_path / "in" / "a.mp4").write_bytes(b"a different pretend video")
    [changed] = inputs.list_files()
    assert batch_stamp(inputs, changed, request, settings)["Source"] != stamp["Source"]


def test_cli_missing_input_is_exit_4_with_one_line(tmp_path, capsys):
    from engine.batch.cli import EXIT_BAD_LOCATION, main

    status = main(["--input", str(tmp_path / "nothing"), "--output", str(tmp_path / "out"),
                   "--model", TEST_DOUBLE_MODEL])
    assert status == EXIT_BAD_LOCATION
    assert "no such folder" in capsys.readouterr().err


def test_cli_with_nothing_to_do_never_starts_ray(tmp_path, capsys, monkeypatch):
    import ray

    from engine.batch.cli import main

    def refuse_to_start_ray(*args, **kwargs):
        raise AssertionError("engine.batch started Ray with nothing to moderate")

    # Another test in the same process may have connected Ray already, so "never starts"
    # is checked at ray.init itself rather than with ray.is_initialized().
    monkeypatch.setattr(ray, "init", refuse_to_start_ray)
    monkeypatch.setenv("MODENGINE_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no videos here")
    assert main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["Counts"]["NotVideos"] == 1
    assert "0 video(s)" in capsys.readouterr().out
