"""`modengine`: the command line.

    modengine moderate PATH [--min-confidence N] [--sort-by NAME|TIMESTAMP]
                            [--aggregate-by TIMESTAMPS|SEGMENTS] [--adapter ARN] [--json]
    modengine serve [--host H] [--port P] [--data-dir D]
    modengine put LOCAL_FILE BUCKET/KEY [--account A | --profile P] [--data-dir D]
    modengine jobs list [--state S] [--limit N] [--json] [--data-dir D]
    modengine jobs show JOB_ID [--json] [--data-dir D]
    modengine report JOB_ID [--data-dir D] [--output FILE] [--unblurred] [--url]
    modengine adapters use ARN|--clear --account ACCOUNT [--data-dir D]
    modengine adapters show --account ACCOUNT [--data-dir D]
    modengine keys create --account ACCOUNT [--profile NAME] [--data-dir D]
    modengine keys list [--json] [--data-dir D]
    modengine keys rotate KEY_ID [--grace SECONDS] [--data-dir D]
    modengine keys revoke KEY_ID [--data-dir D]

Settings come from MODENGINE_* env vars and an optional TOML file (--config); flags win.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from engine.cluster.model_loader import ModelCannotRunError
from engine.config import SettingsError, load_settings
from engine.logs import configure_logging
from models.adapter import AdapterError
from models.base import NoModelInstalledError

EXIT_BAD_SETTINGS = 2
EXIT_NO_MODEL = 3
EXIT_BAD_VIDEO = 4
EXIT_NO_SUCH_JOB = 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modengine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="TOML settings file (else $MODENGINE_CONFIG)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    moderate = commands.add_parser("moderate", help="moderate a local video file and print the result")
    moderate.add_argument("path", help="video file (MP4, MOV, ...)")
    moderate.add_argument("--min-confidence", type=float, default=None, metavar="N",
                          help="lowest confidence (0-100) to report; default 50")
    moderate.add_argument("--sort-by", choices=("NAME", "TIMESTAMP"), default="TIMESTAMP")
    moderate.add_argument("--aggregate-by", choices=("TIMESTAMPS", "SEGMENTS"), default="TIMESTAMPS")
    moderate.add_argument("--json", action="store_true", help="print GetContentModeration-shaped JSON")
    moderate.add_argument("--adapter", metavar="ARN",
                          help="a Custom Moderation adapter (project version ARN) trained by a "
                               "server on this data dir: its labels are merged in")
    moderate.add_argument("--model", help="'default' or 'module:callable' (else settings)")
    moderate.add_argument("--segment-length", type=float, metavar="SECONDS", help="decode segment length")
    moderate.add_argument("--ray-address", help="existing Ray cluster address (else a local Ray)")
    moderate.add_argument("--data-dir", type=Path, help="where weights are cached (else settings)")

    serve = commands.add_parser("serve", help="run the Rekognition-compatible API server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--data-dir", type=Path, default=None)

    put = commands.add_parser("put", help="store a local file in the configured object store")
    put.add_argument("local_file", type=Path)
    put.add_argument("destination", metavar="BUCKET/KEY")
    put.add_argument("--data-dir", type=Path, default=None)
    owner = put.add_mutually_exclusive_group()
    owner.add_argument("--account", help="the account the object is for (a new bucket becomes "
                       "its own); default: the [default] profile's")
    owner.add_argument("--profile", help="the account of this profile of <data-dir>/credentials")

    add_jobs_parser(commands)
    add_adapters_parser(commands)
    add_keys_parser(commands)

    report = commands.add_parser(
        "report", help="write a job's HTML report (timeline, segments, blurred thumbnails)"
    )
    report.add_argument("job_id", metavar="JOB_ID")
    report.add_argument("--data-dir", type=Path, default=None, help="the server's data directory")
    report.add_argument("--output", "-o", type=Path, default=None,
                        help="where to write the page (default ./JOB_ID.html)")
    report.add_argument("--unblurred", action="store_true",
                        help="show flagged frames unblurred (blurred by default)")
    report.add_argument("--url", action="store_true",
                        help="print a presigned link to the server's report instead")
    report.add_argument("--endpoint", default=None,
                        help="server URL for --url (default http://HOST:PORT from settings)")
    report.add_argument("--expires", type=int, default=3600, metavar="SECONDS",
                        help="lifetime of the --url link (1..604800)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # `serve` switches to INFO itself (engine/server.py); the format is the settings'.
        configure_logging(load_settings(args.config).log_format,
                          logging.INFO if args.verbose else logging.WARNING)
        handlers = {"moderate": run_moderate, "serve": run_serve, "put": run_put,
                    "report": run_report, "jobs": run_jobs, "adapters": run_adapters,
                    "keys": run_keys}
        return handlers[args.command](args)
    except SettingsError as error:  # a bad MODENGINE_* value or TOML file: one line, no trace
        print(f"modengine: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    except ModelCannotRunError as error:  # e.g. bf16 asked of a CPU that cannot run it
        print(f"modengine: {error}", file=sys.stderr)
        return EXIT_NO_MODEL


def check_local_hardware(settings) -> None:
    """Refuse, before Ray starts, settings this machine's hardware cannot run (a local Ray runs
    the model here; a remote cluster's pool checks its own nodes when it starts)."""
    if settings.ray_address or settings.model != "default":
        return
    import torch

    from engine.cluster.model_loader import check_precision_runs

    on_gpu = settings.use_gpus == "auto" and torch.cuda.is_available()
    check_precision_runs(settings, "cuda" if on_gpu else "cpu")


def run_moderate(args: argparse.Namespace) -> int:
    from engine.api.wire import moderation_result_to_wire
    from engine.local_runner import LocalRunner
    from engine.video.types import VideoError

    settings = load_settings(
        args.config,
        model=args.model,
        segment_length_s=args.segment_length,
        ray_address=args.ray_address,
        data_dir=args.data_dir,
        ray_log_level="INFO" if args.verbose else None,
    )
    if not Path(args.path).is_file():
        print(f"modengine: no such file: {args.path}", file=sys.stderr)
        return EXIT_BAD_VIDEO
    check_local_hardware(settings)
    runner = LocalRunner(settings)
    try:
        result = runner.moderate(
            str(Path(args.path).resolve()),
            min_confidence=args.min_confidence,
            sort_by=args.sort_by,
            aggregate_by=args.aggregate_by,
            on_progress=ProgressBar.for_stream(sys.stderr),
            adapter=args.adapter,
        )
    except AdapterError as error:
        print(f"modengine: {error}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    except NoModelInstalledError as error:
        print(f"modengine: {error}", file=sys.stderr)
        return EXIT_NO_MODEL
    except VideoError as error:
        print(f"modengine: cannot moderate {args.path}: {error}", file=sys.stderr)
        return EXIT_BAD_VIDEO
    finally:
        runner.shutdown()
    if args.json:
        print(json.dumps(moderation_result_to_wire(result), indent=2))
    else:
        print(render_table(result))
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from engine.server import serve

    settings = load_settings(args.config, data_dir=args.data_dir, host=args.host, port=args.port)
    check_local_hardware(settings)
    serve(settings, settings.host, settings.port)
    return 0


def run_put(args: argparse.Namespace) -> int:
    from engine.errors import ServiceError
    from engine.server import put_object

    settings = load_settings(args.config, data_dir=args.data_dir)
    bucket, _, key = args.destination.partition("/")
    if not bucket or not key:
        print("modengine: destination must be BUCKET/KEY", file=sys.stderr)
        return 2
    try:
        version = put_object(settings, args.local_file, bucket, key, args.account, args.profile)
    except ServiceError as error:
        print(f"modengine: {error.message}", file=sys.stderr)
        return 2
    except (FileNotFoundError, KeyError) as error:
        print(f"modengine: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    print(f"stored s3://{bucket}/{key}" + (f" (version {version})" if version else ""))
    return 0


def run_report(args: argparse.Namespace) -> int:
    from engine.api.report_route import ReportLinkError, report_link
    from engine.report.command import ReportCommandError, write_report

    settings = load_settings(args.config, data_dir=args.data_dir)
    try:
        if args.url:
            print(report_link(settings, args.job_id, args.endpoint, args.unblurred, args.expires))
        else:
            print(write_report(settings, args.job_id, args.output, args.unblurred))
    except (ReportCommandError, ReportLinkError) as error:
        print(f"modengine: {error}", file=sys.stderr)
        return 2
    return 0


def add_jobs_parser(commands) -> None:
    jobs = commands.add_parser("jobs", help="list and inspect the jobs in the job store")
    actions = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = actions.add_parser("list", help="the newest jobs, newest first")
    listing.add_argument("--state", choices=("SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED"))
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="at most N jobs (50)")
    show = actions.add_parser("show", help="everything the store holds about one job")
    show.add_argument("job_id", metavar="JOB_ID")
    for action in (listing, show):
        action.add_argument("--json", action="store_true", help="print JSON")
        action.add_argument("--data-dir", type=Path, default=None, help="the server's data directory")


def add_adapters_parser(commands) -> None:
    adapters = commands.add_parser(
        "adapters", help="Custom Moderation adapters for an account's video jobs")
    actions = adapters.add_subparsers(dest="adapters_command", required=True)
    use = actions.add_parser(
        "use", help="score the account's future video jobs with this adapter (project version)")
    use.add_argument("version_arn", nargs="?", metavar="ARN")
    use.add_argument("--clear", action="store_true", help="use no adapter from now on")
    show = actions.add_parser("show", help="the adapter the account's video jobs use")
    for action in (use, show):
        action.add_argument("--account", required=True, help="the account (as in the credentials)")
        action.add_argument("--data-dir", type=Path, default=None, help="the server's data directory")


def run_adapters(args: argparse.Namespace) -> int:
    from engine.errors import ServiceError
    from engine.jobs import inspection
    from engine.jobs.adapter_store import AdapterStore
    from engine.jobs.adapters import use_for_video

    settings = load_settings(args.config, data_dir=args.data_dir)
    try:
        inspection.open_store(settings.data_dir)
    except inspection.NoJobStoreError as error:
        print(f"modengine: {error}", file=sys.stderr)
        return 2
    store = AdapterStore(settings.data_dir / inspection.DATABASE_FILE)
    if args.adapters_command == "use":
        if args.clear == bool(args.version_arn):
            print("modengine: give an adapter ARN or --clear", file=sys.stderr)
            return 2
        try:
            use_for_video(store, args.account, None if args.clear else args.version_arn)
        except ServiceError as error:
            print(f"modengine: {error.message}", file=sys.stderr)
            return 2
    print(store.video_adapter(args.account) or "-")
    return 0


def add_keys_parser(commands) -> None:
    keys = commands.add_parser(
        "keys", help="API access keys in <data-dir>/credentials (the running server re-reads it)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="a new key for an account (its secret is written "
                                "to the file only, under its profile)")
    create.add_argument("--account", required=True, help="the account the key acts for")
    create.add_argument("--profile", help="the profile to write it under (default: the key id)")
    listing = actions.add_parser("list", help="key ids, accounts and profiles (never secrets)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    rotate = actions.add_parser("rotate", help="a fresh key for the profile; the old one stays "
                                "valid for the grace period")
    rotate.add_argument("key_id", metavar="KEY_ID")
    rotate.add_argument("--grace", type=float, default=None, metavar="SECONDS",
                        help="how long the old key stays valid (default: settings' "
                        "api_key_rotation_grace_s)")
    revoke = actions.add_parser("revoke", help="remove a key; the server refuses it at once")
    revoke.add_argument("key_id", metavar="KEY_ID")
    for action in (create, listing, rotate, revoke):
        action.add_argument("--data-dir", type=Path, default=None, help="the server's data directory")


def run_keys(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from engine.api import key_admin
    from engine.api.keys import CredentialsFileError
    from engine.api.settings import CREDENTIALS_FILE

    settings = load_settings(args.config, data_dir=args.data_dir)
    path = settings.data_dir / CREDENTIALS_FILE
    try:
        if args.keys_command == "list":
            listed = key_admin.list_keys(path)
            print(json.dumps([asdict(key) for key in listed], indent=2) if args.json
                  else key_admin.render_keys(listed))
            return 0
        if args.keys_command == "create":
            key = key_admin.create_key(path, args.account, args.profile)
            done = "created"
        elif args.keys_command == "rotate":
            grace_s = settings.api_key_rotation_grace_s if args.grace is None else args.grace
            key = key_admin.rotate_key(path, args.key_id, grace_s)
            done = f"rotated {args.key_id} (valid {grace_s:g} s more) into"
        else:
            key = key_admin.revoke_key(path, args.key_id)
            done = "revoked"
    except (key_admin.KeyAdminError, CredentialsFileError) as error:
        print(f"modengine: {error}", file=sys.stderr)
        return 2
    print(f"{done} key {key.access_key_id} of account {key.account}, profile [{key.profile}] "
          f"in {path}")
    return 0


def run_jobs(args: argparse.Namespace) -> int:
    from engine.jobs import inspection

    settings = load_settings(args.config, data_dir=args.data_dir)
    try:
        store = inspection.open_store(settings.data_dir)
    except inspection.NoJobStoreError as error:
        print(f"modengine: {error}", file=sys.stderr)
        return 2
    if args.jobs_command == "list":
        summaries = inspection.list_jobs(store, args.state, max(1, args.limit))
        print(json.dumps(summaries, indent=2) if args.json else inspection.render_list(summaries))
        return 0
    details = inspection.job_details(store, args.job_id)
    if details is None:
        print(f"modengine: no job {args.job_id} in {settings.data_dir}", file=sys.stderr)
        return EXIT_NO_SUCH_JOB
    print(json.dumps(details, indent=2) if args.json else inspection.render_details(details))
    return 0


def render_table(result) -> str:
    """A readable summary of a ModerationResult: video facts, then one line per detection
    (confidences as the JSON shows them)."""
    from engine.api.wire import confidence_to_wire

    meta, info = result.metadata, result.model_info
    lines = [
        (f"video: {meta.format}, {meta.codec}, {meta.frame_width}x{meta.frame_height}, "
         f"{meta.frame_rate:.3f} fps, {meta.duration_ms / 1000:.1f} s, {meta.color_range} range"),
        f"model: {info.name} {info.version} (ModerationModelVersion {result.model_version})",
        *([f"adapter: {result.adapter}"] if result.adapter else []),
        "",
    ]
    if not result.detections:
        lines.append("no moderation labels at this confidence")
        return "\n".join(lines)
    segments = result.detections[0].start_ms is not None
    header = f"{'time':>10}  {'until':>10}  " if segments else f"{'time':>10}  "
    lines.append(header + f"{'conf':>6}  {'lvl':>3}  label (parent)")
    for detection in result.detections:
        when = _clock(detection.timestamp_ms)
        if segments:
            when = f"{_clock(detection.start_ms)}  {_clock(detection.end_ms)}"
        parent = f" ({detection.parent_name})" if detection.parent_name else ""
        indent = "  " * (detection.level - 1)
        lines.append(f"{when:>10}  {confidence_to_wire(detection.confidence):6.2f}  "
                     f"{detection.level:>3}  {indent}{detection.name}{parent}")
    lines.append(f"\n{len(result.detections)} detections")
    return "\n".join(lines)


def _clock(ms: int) -> str:
    seconds, millis = divmod(int(ms), 1000)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes:d}:{seconds:02d}.{millis:03d}"


class ProgressBar:
    """A one-line progress bar on a terminal; silent when output is not a terminal."""

    def __init__(self, stream, width: int = 30) -> None:
        self._stream = stream
        self._width = width

    @classmethod
    def for_stream(cls, stream):
        return cls(stream) if stream.isatty() and not os.environ.get("CI") else None

    def __call__(self, done: int, total: int) -> None:
        filled = int(self._width * done / total) if total else self._width
        bar = "#" * filled + "-" * (self._width - filled)
        self._stream.write(f"\rsegments [{bar}] {done}/{total}")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


if __name__ == "__main__":
    sys.exit(main())
