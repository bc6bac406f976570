"""`python -m engine.batch`: moderate every video under a prefix or folder with Ray Data.

    python -m engine.batch --input s3://bucket/videos/ --output s3://bucket/results/
    python -m engine.batch --input ./videos --output ./results [--redo] [--adapter ARN]
    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python -m engine.batch --input s3://bucket/videos/ --output s3://bucket/results/

Settings (model, S3 endpoint and keys, batch size, ...) come from MODENGINE_* env vars and an
optional TOML file, as for the server. Ray: the cluster this driver runs in (RAY_ADDRESS, which
`ray job submit` sets), else settings.ray_address, else a local Ray started for the run.
Exit status: 0 all videos done (or skipped), 1 some videos failed (see summary.json),
3 no model installed, 4 the input, the output or the adapter cannot be used.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from engine.config import load_settings

EXIT_SOME_FAILED = 1
EXIT_NO_MODEL = 3
EXIT_BAD_LOCATION = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine.batch",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="s3://bucket/prefix/ or a local folder")
    parser.add_argument("--output", required=True, help="s3://bucket/prefix/ or a local folder")
    parser.add_argument("--min-confidence", type=float, default=None, metavar="N",
                        help="lowest confidence (0-100) to report; default 50")
    parser.add_argument("--sort-by", choices=("NAME", "TIMESTAMP"), default="TIMESTAMP")
    parser.add_argument("--aggregate-by", choices=("TIMESTAMPS", "SEGMENTS"), default="TIMESTAMPS")
    parser.add_argument("--redo", action="store_true",
                        help="moderate every video again, even those with a current result")
    parser.add_argument("--adapter", metavar="ARN",
                        help="a Custom Moderation adapter (project version ARN) trained by a "
                             "server on the data dir: its labels are merged in")
    parser.add_argument("--data-dir", type=Path,
                        help="the data dir holding --adapter (else settings)")
    parser.add_argument("--config", help="TOML settings file (else $MODENGINE_CONFIG)")
    parser.add_argument("--model", help="'default' or 'module:callable' (else settings)")
    parser.add_argument("--ray-address", help="Ray cluster to join (else RAY_ADDRESS / local)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log details, worker output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.config, model=args.model, ray_address=args.ray_address,
                             data_dir=args.data_dir)
    if args.min_confidence is not None and not 0 <= args.min_confidence <= 100:
        print(f"engine.batch: --min-confidence must be within 0..100, got {args.min_confidence}",
              file=sys.stderr)
        return 2
    from engine.batch.run import BatchRequest, run_batch

    request = BatchRequest(
        input_uri=args.input,
        output_uri=args.output,
        min_confidence=settings.default_min_confidence if args.min_confidence is None
        else args.min_confidence,
        sort_by=args.sort_by,
        aggregate_by=args.aggregate_by,
        redo=args.redo,
        adapter=args.adapter,
    )
    started_ray = []

    def connect() -> None:
        started_ray.append(connect_ray(settings, verbose=args.verbose))

    try:
        summary = run_batch(settings, request, report=_print_line, connect=connect)
    except Exception as error:  # noqa: BLE001 - turned into an exit status and one line
        return _report_failure(error)
    finally:
        if any(started_ray):
            import ray

            ray.shutdown()
    return EXIT_SOME_FAILED if summary["Counts"]["Failed"] else 0


def connect_ray(settings, verbose: bool = False) -> bool:
    """Join the Ray this driver belongs to; True when this call started a Ray of its own.

    RAY_ADDRESS is Ray's own variable (not a setting): `ray job submit` sets it for the job's
    driver, so a plain `ray.init()` joins that cluster. Without it we start a local Ray rather
    than let ray.init() join whatever cluster was last started on this machine.
    """
    import ray

    if ray.is_initialized():
        return False
    options = {"log_to_driver": verbose}
    if settings.ray_address:
        ray.init(address=settings.ray_address, **options)
    elif os.environ.get("RAY_ADDRESS"):
        ray.init(**options)
    else:
        ray.init(address="local", num_cpus=settings.ray_num_cpus, include_dashboard=False,
                 _node_ip_address="127.0.0.1", **options)
    return True


def _report_failure(error: Exception) -> int:
    from engine.cluster import describe_exception, root_cause
    from engine.errors import ServiceError
    from models.base import NoModelInstalledError

    cause = root_cause(error)
    if isinstance(cause, NoModelInstalledError) or "NoModelInstalledError" in str(error):
        print(f"engine.batch: {describe_exception(cause)}", file=sys.stderr)
        return EXIT_NO_MODEL
    if isinstance(cause, (ServiceError, OSError, ValueError)):
        message = cause.message if isinstance(cause, ServiceError) else describe_exception(cause)
        print(f"engine.batch: {message}", file=sys.stderr)
        return EXIT_BAD_LOCATION
    print(f"engine.batch: the batch stopped: {describe_exception(cause)}", file=sys.stderr)
    return EXIT_SOME_FAILED


def _print_line(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
