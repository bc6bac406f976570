"""Ray orchestration: segment tasks and the shared inference actor pool.

Knows about video, models and results; knows nothing about HTTP, job storage or S3.
"""
