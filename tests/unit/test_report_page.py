"""The report page from a real job store (rows written by the jobs pipeline with the scripted
runner double, no Ray): chart series, thumbnails choice and blur, escaping, every job state,
large results, account scoping and the CLI command."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from engine.config import EngineSettings
from engine.errors import ResourceNotFoundException
from engine.jobs import DATABASE_FILE
from engine.jobs.pipeline import process_job
from engine.jobs.store import JobStore
from engine.jobs.types import StartRequest
from engine.report import JobReportBuilder, ReportOptions
from engine.report.chart import build_series, render_timeline_svg
from engine.report.data import read_all_results
from engine.report.thumbnails import choose_moments, encode_thumbnail, flagged_moments
from engine.results.types import Detection
from engine.storage import LocalObjectStore
from engine.storage.base import ObjectRef
from engine.video import VideoError, probe_video
from tests.doubles.scripted_runner import ScriptedRunnerDouble, write_script
from tests.media import make_colour_video

ACCOUNT = "111122223333"
HOSTILE_KEY = 'clips/<script>alert("x")</script>&.mp4'


class RealVideoScriptedRunner(ScriptedRunnerDouble):
    """The scripted runner double over a real video file: probed by the engine (so the job's
    metadata and the thumbnails' frames are real), labelled by the script."""

    def __init__(self, labels: dict[int, dict[str, float]], duration_ms: int) -> None:
        super().__init__()
        self._fixed = {"duration_ms": duration_ms, "labels": {str(k): v for k, v in labels.items()}}

    def probe(self, source: str):
        return probe_video(source)

    def _script(self, source: str) -> dict:
        return self._fixed


@pytest.fixture()
def world(tmp_path):
    settings = EngineSettings(data_dir=tmp_path, hwaccel="none")
    store = JobStore(tmp_path / DATABASE_FILE)
    objects = LocalObjectStore(tmp_path / "objects")
    yield settings, store, objects
    store.close()


def run_job(world, key: str, runner, job_id: str, min_confidence: float = 50.0) -> str:
    settings, store, objects = world
    request = StartRequest(video=ObjectRef("videos", key), min_confidence=min_confidence)
    store.create_job(job_id, ACCOUNT, request, "7.0", 20)
    process_job(store.get_job(job_id), store, objects, runner, settings)
    return job_id


@pytest.fixture()
def video_job(world, tmp_path):
    """A SUCCEEDED job over a real 9 s colour video with a hostile object key."""
    objects = world[2]
    video = tmp_path / "v.mp4"
    make_colour_video(
        video, [("red", 3.0), ("green", 3.0), ("blue", 3.0)], size=(96, 64), gop_s=1.0
    )
    objects.put_file(video, "videos", HOSTILE_KEY)
    labels = {
        0: {"Blood & Gore": 95.0}, 1000: {"Blood & Gore": 90.0},
        2000: {"Blood & Gore": 60.0, "Weapons": 70.0},
        4000: {"Gambling": 80.0}, 5000: {"Gambling": 85.0},
        7000: {"Alcoholic Beverages": 45.0},  # under MinConfidence: never stored
    }
    return run_job(world, HOSTILE_KEY, RealVideoScriptedRunner(labels, 9000), "job-video")


def builder(world, **options) -> JobReportBuilder:
    settings, store, objects = world
    return JobReportBuilder(settings, store, objects, ReportOptions(**options))


def test_page_shows_every_stored_segment_row_and_escapes_strings(world, video_job):
    page = builder(world).build(video_job)
    segments = read_all_results(world[1], video_job, "SEGMENTS")
    assert page.count('<tr class="level-') == len(segments) == 6
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "Alcoholic" not in page  # below MinConfidence: no row, no series, no thumbnail
    for text in ("QuickTime / MOV", "h264", "96 x 64", "accurate", "SUCCEEDED", "7.0"):
        assert text in page
    # Self-contained: nothing but data: URIs, no script, no external reference.
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:)', page)


def test_timeline_has_one_series_per_top_level_label_and_a_dashed_threshold(world, video_job):
    page = builder(world).build(video_job)
    assert re.findall(r'<polyline class="series" data-label="([^"]+)"', page) == [
        "Violence", "Gambling",  # most confident first
    ]
    assert page.count('<line class="threshold"') == 1
    assert "Values under MinConfidence are not stored" in page


def test_series_are_at_the_baseline_where_nothing_was_stored():
    rows = [Detection(1000, "Violence", "", 1, 90.0, 0), Detection(3000, "Violence", "", 1, 70.0, 0)]
    (series,) = build_series(rows, [0, 1000, 2000, 3000, 4000])
    assert series.confidences == (0.0, 90.0, 0.0, 70.0, 0.0)
    svg = render_timeline_svg([series], 5000, 50.0)
    assert 'stroke-dasharray' not in svg  # the dash comes from the page's CSS class
    assert 'class="threshold"' in svg


def test_long_videos_keep_their_peaks_when_points_are_merged():
    samples = list(range(0, 6 * 3600 * 1000, 1000))  # a 6-hour video, 1 sample per second
    rows = [Detection(4_321_000, "Violence", "", 1, 99.0, 0)]
    (series,) = build_series(rows, samples)
    assert len(series.times_ms) <= 1200
    assert max(series.confidences) == 99.0


def test_blurred_thumbnails_lose_their_detail():
    rows, cols = np.indices((90, 160))
    board = np.where((rows // 4 + cols // 4) % 2 == 0, 0, 255).astype(np.uint8)
    frame = np.repeat(board[..., None], 3, axis=2)

    def variance(uri: str) -> float:
        import base64
        import io

        from PIL import Image

        data = base64.b64decode(uri.split(",", 1)[1])
        return float(np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float64).var())

    sharp, blurred = encode_thumbnail(frame, blurred=False), encode_thumbnail(frame, blurred=True)
    assert sharp.startswith("data:image/jpeg;base64,")
    assert variance(sharp) > 10_000
    assert variance(blurred) < 0.01 * variance(sharp)


def test_thumbnails_are_decoded_at_detection_times_and_blurred_by_default(world, video_job):
    blurred_page = builder(world).build(video_job)
    assert blurred_page.count('<img class="blurred"') == 5
    assert 'class="unblurred"' not in blurred_page
    sharp_page = builder(world).build(video_job, unblurred=True)
    assert sharp_page.count('<img class="unblurred"') == 5
    assert "Pictures are not blurred" in sharp_page
    # The frame at 4 s of the colour video is green: its thumbnail must be green.
    uri = re.search(r'<img class="unblurred" src="([^"]+)"[^>]*data-timestamp="4000"', sharp_page)
    import base64
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.group(1).split(",", 1)[1]))))
    red, green, blue = pixels.reshape(-1, 3).mean(axis=0)
    assert green > 200 and red < 60 and blue < 60


def test_thumbnail_count_is_capped_and_the_page_says_so(world, video_job):
    page = builder(world, max_thumbnails=2).build(video_job)
    assert page.count('<img class="blurred"') == 2
    assert "Showing 2 of 5 flagged moments (capped at 2" in page


def test_moments_take_each_segment_peak_first_and_name_the_most_specific_labels():
    rows = [
        Detection(0, "Violence", "", 1, 60.0, 0), Detection(1000, "Violence", "", 1, 61.0, 0),
        Detection(2000, "Violence", "", 1, 62.0, 0), Detection(9000, "Gambling", "", 1, 55.0, 9),
        Detection(9000, "Gambling", "Gambling", 2, 55.0, 10),
    ]
    segments = [
        Detection(0, "Violence", "", 1, 62.0, 0, start_ms=0, end_ms=3000),
        Detection(9000, "Gambling", "", 1, 55.0, 9, start_ms=9000, end_ms=10000),
    ]
    chosen, total = choose_moments(rows, segments, max_count=2)
    assert total == 4
    assert [m.timestamp_ms for m in chosen] == [2000, 9000]  # peaks of both stretches
    assert flagged_moments(rows)[-1].labels == (("Gambling", 55.0),)  # level 2, not level 1


def test_no_detections_gives_a_clean_page(world, tmp_path):
    write_script(tmp_path / "objects" / "videos" / "quiet.json", 5000, {})
    run_job(world, "quiet.json", ScriptedRunnerDouble(), "job-quiet")
    page = builder(world).build("job-quiet")
    assert "Nothing was detected at or above MinConfidence" in page
    assert 'class="series"' not in page and 'class="threshold"' in page
    assert "No frame was flagged" in page


def test_thousands_of_detections_render_quickly_with_capped_thumbnails(world, tmp_path):
    labels = {t: {"Weapons": 60.0 + (t // 1000) % 40} for t in range(0, 3_600_000, 1000)}
    write_script(tmp_path / "objects" / "videos" / "long.json", 3_600_000, labels)
    run_job(world, "long.json", ScriptedRunnerDouble(segment_ms=60_000), "job-long")
    started = time.perf_counter()
    page = builder(world).build("job-long")
    elapsed = time.perf_counter() - started
    assert elapsed < 10
    # Not a real video: the thumbnails cannot be decoded, and the page says why.
    assert "Thumbnails are unavailable" in page
    assert page.count('<tr class="level-') == 2  # one continuous stretch per level


def test_failed_and_running_jobs_get_a_page_saying_so(world, tmp_path):
    store = world[1]
    write_script(tmp_path / "objects" / "videos" / "bad.json", 3000, {}, fail="Decoding <x> failed")
    with pytest.raises(VideoError):
        run_job(world, "bad.json", ScriptedRunnerDouble(), "job-bad")
    store.fail_job("job-bad", "Decoding <x> failed at 0-3000 ms", retention_s=3600)
    page = builder(world).build("job-bad")
    assert "The job failed" in page and "Decoding &lt;x&gt; failed" in page
    assert "FAILED" in page and 'class="timeline"' not in page

    request = StartRequest(video=ObjectRef("videos", "later.mp4"), min_confidence=50)
    store.create_job("job-running", ACCOUNT, request, "7.0", 20)
    page = builder(world).build("job-running")
    assert "still in progress" in page and "IN_PROGRESS" in page


def test_unknown_and_other_accounts_jobs_are_not_found(world, video_job):
    with pytest.raises(ResourceNotFoundException):
        builder(world).build("no-such-job")
    with pytest.raises(ResourceNotFoundException):
        builder(world).for_account("999999999999", video_job, False)
    assert "<html" in builder(world).for_account(ACCOUNT, video_job, False)


def test_cli_writes_the_page_and_refuses_unknown_jobs(world, video_job, tmp_path, capsys):
    from engine.cli import main

    output = tmp_path / "out" / "page.html"
    data_dir = str(world[0].data_dir)
    assert main(["report", video_job, "--data-dir", data_dir, "--output", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    assert 'class="timeline"' in output.read_text(encoding="utf-8")

    assert main(["report", "nope", "--data-dir", data_dir]) == 2
    assert "no job 'nope'" in capsys.readouterr().err
    assert main(["report", "x", "--data-dir", str(tmp_path / "empty")]) == 2
    assert "no job store" in capsys.readouterr().err
    assert not (tmp_path / "empty" / DATABASE_FILE).exists()


def test_cli_prints_a_presigned_link(tmp_path, capsys):
    from engine.api.keys import create_default_credentials
    from engine.cli import main

    create_default_credentials(tmp_path / "credentials")
    code = main(["report", "abc", "--data-dir", str(tmp_path), "--url", "--unblurred",
                 "--endpoint", "http://127.0.0.1:9000"])
    assert code == 0
    link = capsys.readouterr().out.strip()
    assert link.startswith("http://127.0.0.1:9000/jobs/abc/report?unblurred=true&")
    assert "X-Amz-Signature=" in link and "X-Amz-Expires=3600" in link


def test_server_builds_beyond_the_limit_are_throttled_not_queued(world, video_job):
    import threading

    from engine.errors import ThrottlingException

    reports = builder(world, max_concurrent_builds=1)
    inside, release = threading.Event(), threading.Event()
    original = reports.build

    def slow_build(*args, **kwargs):
        inside.set()
        release.wait(10)
        return original(*args, **kwargs)

    reports.build = slow_build
    first = threading.Thread(target=reports.for_account, args=(ACCOUNT, video_job, False))
    first.start()
    try:
        assert inside.wait(10)
        with pytest.raises(ThrottlingException):
            reports.for_account(ACCOUNT, video_job, False)
    finally:
        release.set()
        first.join(30)
    assert "<html" in reports.for_account(ACCOUNT, video_job, False)  # the slot is free again


def test_the_page_names_the_adapter_a_job_was_scored_with(world, video_job):
    _, store, _ = world
    arn = "arn:aws:rekognition:us-east-1:111122223333:project/p/version/v1/1700000000000"
    request = StartRequest(video=ObjectRef("videos", HOSTILE_KEY), min_confidence=50.0,
                           adapter_arn=arn)
    store.create_job("job-adapted", ACCOUNT, request, "7.0", 20)
    page = builder(world).build("job-adapted")
    assert "<dt>Adapter</dt>" in page and arn in page
    assert "<dt>Adapter</dt>" not in builder(world).build(video_job)
