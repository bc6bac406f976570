"""A self-contained HTML report of one job for moderators: metadata, a confidence timeline,
the SEGMENTS rows and (blurred by default) thumbnails of the flagged frames.

Sits above jobs and video: it reads a job from the store and decodes frames with the engine's
own decoder. The CLI (`modengine report`) and the server (`GET /jobs/{id}/report`, through a
callable injected into engine.api.build_app) are its callers; it knows nothing about HTTP.
"""

from engine.report.builder import JobReportBuilder, ReportOptions
from engine.report.page import CONTENT_SECURITY_POLICY

__all__ = ["CONTENT_SECURITY_POLICY", "JobReportBuilder", "ReportOptions"]
