"""Batch moderation as a Ray job: every video under a prefix (or a folder) through Ray Data,
one GetContentModeration-shaped JSON per video plus summary.json, resumable.

    python -m engine.batch --input s3://bucket/videos/ --output s3://bucket/results/

Modules: locations (where files are), stages (the Ray Data stages), collect (regrouping rows
per video in the driver), run (skip logic, results, summary), cli (arguments, Ray connection).
Knows nothing about the HTTP API or the job store.
"""

from engine.batch.run import BatchRequest, run_batch

__all__ = ["BatchRequest", "run_batch"]
