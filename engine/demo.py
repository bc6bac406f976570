"""`make demo`: the whole product in one command, driven exactly as a Rekognition user would.

Starts the API server in this process (uvicorn on a free 127.0.0.1 port, data in a temporary or
given directory), stores a sample video (the given file, else one generated with PyAV), calls
`start_content_moderation` with boto3, waits for the completion message on a local webhook
receiver subscribed to the job's topic (which verifies its SNS-style signature), pages through `get_content_moderation` and prints the
result as Rekognition-shaped JSON, then saves the job's HTML report from the server's report
route (./demo-report.html). Everything it started is stopped before it returns.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DEMO_TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:AmazonRekognitionDemo"
DEMO_ROLE_ARN = "arn:aws:iam::000000000000:role/AmazonRekognitionDemoRole"
DEMO_BUCKET = "demo"
SAMPLE_MIN_CONFIDENCE = 5.0


class CompletionReceiver:
    """A local HTTP endpoint that takes SNS-style notifications: it records every POST (headers
    and body) and hands out the completion messages inside their envelopes.

    With `trusted_cert_prefix` it verifies each notification as an SNS receiver does: the
    SigningCertURL must start with that prefix (the server it trusts), the certificate fetched
    from there must verify the SignatureVersion 2 signature (engine/notify/signing.py); a
    notification that fails is answered 403 and kept in `rejected`, never in `received`."""

    def __init__(self, path: str = "/completion", trusted_cert_prefix: str | None = None) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.rejected: list[bytes] = []
        self.trusted_cert_prefix = trusted_cert_prefix
        self._certificates: dict[str, bytes] = {}
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                accepted = receiver.verifies(body)
                with receiver._arrived:
                    if accepted:
                        receiver.received.append(
                            ({k.lower(): v for k, v in self.headers.items()}, body)
                        )
                    else:
                        receiver.rejected.append(body)
                    receiver._arrived.notify_all()
                self.send_response(200 if accepted else 403)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{path}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def verifies(self, body: bytes) -> bool:
        """Whether a notification passes the signature check (always, with no trusted prefix)."""
        from engine.notify import verify_notification

        if self.trusted_cert_prefix is None:
            return True
        try:
            envelope = json.loads(body)
            url = envelope["SigningCertURL"]
        except (ValueError, KeyError, TypeError):
            return False
        if not isinstance(url, str) or not url.startswith(self.trusted_cert_prefix):
            return False
        if verify_notification(envelope, self._certificate(url)):
            return True
        # The server may have a new key (a fresh data dir) at the same URL: fetch once more.
        return verify_notification(envelope, self._certificate(url, refresh=True))

    def _certificate(self, url: str, refresh: bool = False) -> bytes:
        import httpx

        if refresh or url not in self._certificates:
            response = httpx.get(url, timeout=10)
            response.raise_for_status()
            self._certificates[url] = response.content
        return self._certificates[url]

    def messages(self) -> list[dict]:
        """The completion messages inside the SNS envelopes received so far."""
        return [json.loads(json.loads(body)["Message"]) for _, body in self.received]

    def wait_for(self, predicate, timeout_s: float) -> list[dict]:
        """The messages once `predicate(messages)` holds; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while not predicate(self.messages()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching completion message; got {self.messages()}")
                self._arrived.wait(remaining)
        return self.messages()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def generate_sample_video(path: Path, seconds_per_scene: int = 2, fps: int = 24) -> Path:
    """A small H.264 MP4 of four synthetic scenes (a skin-toned texture, a dark red texture,
    a cool gradient, noise) that change every 2 s. Nothing in it is truly objectionable, so the
    default model answers with low confidences; the demo shows them at a low MinConfidence."""
    import av
    import numpy as np

    height, width = 240, 320
    rng = np.random.default_rng(7)
    blobs = _smooth_noise(rng, height, width)
    scenes = [
        np.stack([220 - 40 * blobs, 170 - 50 * blobs, 140 - 50 * blobs], -1),
        np.stack([120 + 120 * blobs, 10 + 30 * blobs**2, 10 + 20 * blobs], -1),
        np.stack([np.broadcast_to(np.linspace(20, 90, width), (height, width))] * 2
                 + [np.full((height, width), 200.0)], -1),
        rng.integers(0, 256, (height, width, 3)).astype(np.float64),
    ]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(len(scenes) * seconds_per_scene * fps):
            scene = scenes[index // (seconds_per_scene * fps)]
            shifted = np.roll(scene, index * 2, axis=1).clip(0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(shifted, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _smooth_noise(rng, height: int, width: int):
    """Blobby values in [0, 1]: random noise upsampled from a coarse grid."""
    import numpy as np

    coarse = rng.random((height // 16 + 2, width // 16 + 2))
    rows = np.linspace(0, coarse.shape[0] - 1.001, height)
    columns = np.linspace(0, coarse.shape[1] - 1.001, width)
    r0, c0 = rows.astype(int)[:, None], columns.astype(int)[None, :]
    fr, fc = (rows % 1)[:, None], (columns % 1)[None, :]
    return (coarse[r0, c0] * (1 - fr) * (1 - fc) + coarse[r0 + 1, c0] * fr * (1 - fc)
            + coarse[r0, c0 + 1] * (1 - fr) * fc + coarse[r0 + 1, c0 + 1] * fr * fc)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server_thread(app, port: int, timeout_s: float = 30.0):
    """Serve an ASGI app with uvicorn in a daemon thread on 127.0.0.1:`port`; returns (server,
    thread) once it is listening (stop it with `server.should_exit = True`)."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    return server, thread


def _all_pages(client, job_id: str) -> dict:
    """Every page of the result, merged into one GetContentModeration-shaped document."""
    from engine.client import merge_pages

    pages, token = [], None
    while True:
        page = client.get_content_moderation(
            JobId=job_id, **({"NextToken": token} if token else {})
        )
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            return merge_pages(pages)


def _summary(result: dict) -> str:
    """One line per label: how often it was seen and its highest confidence."""
    from engine.api.wire import detection_row

    seen: dict[tuple[str, int], list[float]] = {}
    for item in result["ModerationLabels"]:
        _, name, _, level, confidence = detection_row(item)
        seen.setdefault((name, level), []).append(confidence)
    lines = [f"job {result['JobStatus']}: {len(result['ModerationLabels'])} detections"]
    for (name, level), values in sorted(seen.items(), key=lambda item: -max(item[1])):
        lines.append(f"  level {level} {name}: {len(values)} timestamps, max confidence {max(values):.1f}")
    return "\n".join(lines)


def _save_report(endpoint: str, job_id: str, api_key, path: Path) -> Path:
    """Fetch the job's HTML report from the server through a presigned link, as a browser
    would open it, and keep it (the demo's data directory may be temporary)."""
    import httpx

    from engine.api.sigv4 import presign_url

    link = presign_url(
        f"{endpoint}/jobs/{job_id}/report", api_key.access_key_id, api_key.secret_access_key
    )
    response = httpx.get(link, timeout=120)
    response.raise_for_status()
    path.write_text(response.text, encoding="utf-8")
    return path.resolve()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modengine-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "video", nargs="?", type=Path, help="video to moderate (else a generated sample)"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="engine data directory (else a temporary one)"
    )
    parser.add_argument(
        "--min-confidence", type=float, default=None,
        help="MinConfidence of the job (default 50; 5 for the generated sample clip)",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the job")
    parser.add_argument(
        "--report", type=Path, default=Path("demo-report.html"),
        help="where to write the job's HTML report (default ./demo-report.html)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    import boto3

    from engine.api.keys import read_default_key
    from engine.config import load_settings
    from engine.notify import SIGNING_CERT_PATH, NotifySettings
    from engine.server import build_server_app, put_object

    options = build_parser().parse_args(argv)
    temporary = None if options.data_dir else Path(tempfile.mkdtemp(prefix="modengine-demo-"))
    data_dir = options.data_dir or temporary
    settings = load_settings(data_dir=data_dir)
    port = _free_port()
    # The receiver trusts certificates from this server only, as SNS receivers trust AWS's.
    receiver = CompletionReceiver(trusted_cert_prefix=f"http://127.0.0.1:{port}/")
    server = thread = None
    try:
        video = options.video or generate_sample_video(data_dir / "sample.mp4")
        min_confidence = options.min_confidence
        if min_confidence is None:
            min_confidence = 50.0 if options.video else SAMPLE_MIN_CONFIDENCE
            if not options.video:
                print(f"no VIDEO given: moderating a generated sample clip at MinConfidence "
                      f"{min_confidence:g} (the default is 50) so the model's weak evidence shows",
                      file=sys.stderr)
        key = video.name
        put_object(settings, video, DEMO_BUCKET, key)
        print(f"stored {video} as s3://{DEMO_BUCKET}/{key} in {settings.data_dir}", file=sys.stderr)

        notify = NotifySettings(
            webhooks={DEMO_TOPIC_ARN: receiver.url}, max_attempts=3, initial_backoff_s=0.5,
            signing_cert_url=f"http://127.0.0.1:{port}{SIGNING_CERT_PATH}",
        )
        app, _ = build_server_app(settings, notify_settings=notify)
        server, thread = start_server_thread(app, port)
        api_key = read_default_key(app.state.credentials_file)
        client = boto3.client(
            "rekognition",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id=api_key.access_key_id,
            aws_secret_access_key=api_key.secret_access_key,
        )
        job_id = client.start_content_moderation(
            Video={"S3Object": {"Bucket": DEMO_BUCKET, "Name": key}},
            MinConfidence=min_confidence,
            NotificationChannel={"SNSTopicArn": DEMO_TOPIC_ARN, "RoleArn": DEMO_ROLE_ARN},
            JobTag="demo",
        )["JobId"]
        print(f"started job {job_id}; waiting for its completion message", file=sys.stderr)
        try:
            (message, *_) = receiver.wait_for(bool, options.timeout)
        except TimeoutError:
            print(f"no completion message within {options.timeout:g} s", file=sys.stderr)
            return 1
        result = _all_pages(client, job_id)
        print(json.dumps({"CompletionMessage": message, "GetContentModeration": result}, indent=2))
        print(_summary(result), file=sys.stderr)
        report = _save_report(f"http://127.0.0.1:{port}", job_id, api_key, options.report)
        print(f"the moderator's report (thumbnails blurred): {report}", file=sys.stderr)
        return 0 if result["JobStatus"] == "SUCCEEDED" else 1
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(timeout=60)
        receiver.close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
