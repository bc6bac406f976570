"""The moderator's report of a real job, end to end: a generated video run through Ray with the
colour test-double model on an in-process server, the page fetched over GET /jobs/{id}/report
(SigV4-presigned, account-scoped) and rendered by headless Chromium (Debian's package).

The screenshot is kept at test-artifacts/report.png (pass or fail) for people to look at.
"""

from __future__ import annotations

import base64
import io
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from engine.api.keys import read_default_key
from engine.api.settings import ApiSettings
from engine.api.sigv4 import presign_url
from engine.config import EngineSettings
from engine.server import build_server_app
from tests.integration.api_fixtures import (
    REPO_ROOT,
    TEST_DOUBLE_MODEL,
    in_process_server,
    rekognition_client,
    wait_for_job,
)

pytestmark = [pytest.mark.integration, pytest.mark.ray]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACT = REPO_ROOT / "test-artifacts" / "report.png"
OTHER_ACCOUNT = ("AKIAREPORTOTHER00001", "report-other-account-secret-0123456789")

# (top colour, seconds): red -> Blood & Gore 95, green -> Gambling 80, blue -> Weapons 65,
# yellow -> Alcoholic Beverages 45 (under MinConfidence 50: never stored), white -> nothing.
SCHEDULE = [("red", 2.4), ("white", 1.3), ("green", 2.1), ("yellow", 1.2), ("blue", 1.5)]
PALETTE = {
    "red": (255, 0, 0), "white": (255, 255, 255), "green": (0, 255, 0),
    "yellow": (255, 255, 0), "blue": (0, 0, 255),
}
EXPECTED_SERIES = {"Violence", "Gambling"}


def make_textured_video(path: Path, size=(320, 180), fps: int = 30) -> Path:
    """H.264 whose top third is one colour per SCHEDULE stretch (what the test double reads)
    and whose rest is a fine checkerboard: detail that a real blur must wipe out."""
    width, height = size
    top = height // 3
    rows, cols = np.indices((height - top, width))
    board = np.where(((rows // 6) + (cols // 6)) % 2 == 0, 20, 235).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(fps), "keyint_min": str(fps), "sc_threshold": "0"}
        for colour, seconds in SCHEDULE:
            for _ in range(round(seconds * fps)):
                frame = np.empty((height, width, 3), np.uint8)
                frame[:top] = PALETTE[colour]
                frame[top:] = board[..., None]
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def finished_job(ray_session, tmp_path_factory):
    """(server url, job id, SEGMENTS rows from GetContentModeration, default key, data dir)."""
    data_dir = tmp_path_factory.mktemp("report-server")
    more_keys = data_dir / "more-keys"
    more_keys.write_text(
        f"[other]\naws_access_key_id = {OTHER_ACCOUNT[0]}\n"
        f"aws_secret_access_key = {OTHER_ACCOUNT[1]}\nmodengine_account = 210987654321\n"
    )
    settings = EngineSettings(
        data_dir=data_dir, model=TEST_DOUBLE_MODEL, segment_length_s=3.0, inference_actor_cpus=0,
        max_batch_wait_ms=2, hwaccel="none",
    )
    video = make_textured_video(data_dir / "upload.mp4")
    app, jobs = build_server_app(
        settings, api_settings=ApiSettings(extra_credentials_file=more_keys), worker_count=1
    )
    jobs.service.objects.put_file(video, "videos", "shift-42/<clip> & co.mp4")
    with in_process_server(app) as url:
        client = rekognition_client(url)
        job_id = client.start_content_moderation(
            Video={"S3Object": {"Bucket": "videos", "Name": "shift-42/<clip> & co.mp4"}},
            MinConfidence=50,
            JobTag="night-shift",
        )["JobId"]
        _, pages = wait_for_job(client, job_id, timeout_s=180, AggregateBy="SEGMENTS")
        assert pages[0]["JobStatus"] == "SUCCEEDED", pages[0].get("StatusMessage")
        segments = [row for page in pages for row in page["ModerationLabels"]]
        key = read_default_key(data_dir / "credentials")
        yield url, job_id, segments, (key.access_key_id, key.secret_access_key), data_dir


def report_url(url: str, job_id: str, keys, unblurred: bool = False) -> str:
    plain = f"{url}/jobs/{job_id}/report" + ("?unblurred=true" if unblurred else "")
    return presign_url(plain, *keys)


def embedded_images(page) -> list[np.ndarray]:
    uris = page.eval_on_selector_all(".thumb img", "els => els.map(e => e.getAttribute('src'))")
    prefix = "data:image/jpeg;base64,"
    assert uris and all(uri.startswith(prefix) for uri in uris)
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))).convert("L"))
        for uri in uris
    ]


def detail(image: np.ndarray) -> float:
    """Variance of the checkerboard part (below the colour band): high when sharp."""
    return float(image[image.shape[0] // 2 :].astype(np.float64).var())


def test_report_route_is_authenticated_and_scoped_to_the_account(finished_job):
    url, job_id, _, keys, _ = finished_job
    unsigned = httpx.get(f"{url}/jobs/{job_id}/report")
    assert unsigned.status_code == 403
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"

    other = httpx.get(report_url(url, job_id, OTHER_ACCOUNT))
    assert other.status_code == 404
    assert other.json()["__type"] == "ResourceNotFoundException"

    tampered = httpx.get(report_url(url, job_id, keys).replace("/report?", "/report?unblurred=true&"))
    assert tampered.status_code == 403
    assert tampered.json()["__type"] == "InvalidSignatureException"

    signed = httpx.get(report_url(url, job_id, keys))
    assert signed.status_code == 200
    assert signed.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in signed.headers["content-security-policy"]
    assert job_id in signed.text


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is absent")
def test_report_renders_in_headless_chromium(finished_job):
    from playwright.sync_api import sync_playwright

    url, job_id, segments, keys, _ = finished_job
    problems: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("request", lambda request: requests.append(request.url))
            response = page.goto(report_url(url, job_id, keys))
            ARTIFACT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACT), full_page=True)
            assert response.status == 200

            labels = page.eval_on_selector_all(
                "svg.timeline polyline.series", "els => els.map(e => e.dataset.label)"
            )
            assert sorted(labels) == sorted(EXPECTED_SERIES)
            assert page.locator("svg.timeline line.threshold").count() == 1
            dash = page.eval_on_selector(
                "svg.timeline line.threshold", "e => getComputedStyle(e).strokeDasharray"
            )
            assert dash not in ("", "none")

            rows = page.eval_on_selector_all(
                "table.segments tbody tr",
                "trs => trs.map(tr => [...tr.cells].map(td => td.textContent.trim()))",
            )
            assert rows == [_table_row(item) for item in segments]

            blurred = embedded_images(page)
            assert page.locator(".thumb img.blurred").count() == len(blurred)
            page.goto(report_url(url, job_id, keys, unblurred=True))
            sharp = embedded_images(page)
            assert page.locator(".thumb img.unblurred").count() == len(sharp) == len(blurred)
        finally:
            browser.close()
    assert problems == []
    assert all(request.startswith((url, "data:")) for request in requests)
    # The fine checkerboard survives JPEG unblurred and is wiped out by the blur.
    assert min(detail(image) for image in sharp) > 3000
    assert max(detail(image) for image in blurred) < 0.02 * min(detail(image) for image in sharp)


def test_cli_writes_the_same_page_from_the_data_dir(finished_job, tmp_path):
    from engine.cli import main

    _, job_id, segments, _, data_dir = finished_job
    output = tmp_path / "report.html"
    assert main(["report", job_id, "--data-dir", str(data_dir), "--output", str(output)]) == 0
    page = output.read_text(encoding="utf-8")
    assert page.count('<polyline class="series"') == len(EXPECTED_SERIES)
    assert page.count("<tr class=\"level-") == len(segments)
    assert "shift-42/&lt;clip&gt; &amp; co.mp4" in page and "<clip>" not in page
    assert main(["report", "f" * 64, "--data-dir", str(data_dir), "-o", str(output)]) == 2


def _table_row(item: dict) -> list[str]:
    """What the page's SEGMENTS table shows for one GetContentModeration SEGMENTS row."""
    label = item["ModerationLabel"]
    return [
        label["Name"], label["ParentName"], str(label["TaxonomyLevel"]),
        _clock(item["StartTimestampMillis"]), _clock(item["EndTimestampMillis"]),
        _clock(item["DurationMillis"]), f"{label['Confidence']:.1f}%",
        ", ".join(f"{content_type['Name']} {content_type['Confidence']:.0f}%"
                  for content_type in item["ContentTypes"]) or "-",
    ]


def _clock(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}:{seconds:02d}.{millis:03d}"

