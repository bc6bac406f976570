"""A server on a machine whose GPU cannot decode (no `video` driver capability in a container)
says so at start, loudly; elsewhere it only notes which decoder it uses."""

from __future__ import annotations

import logging

import pytest

from engine.config import EngineSettings
from engine.server import decode_report
from engine.video import hwdecode

needs_no_nvdec = pytest.mark.skipif(
    hwdecode.cuda_unavailable_reason() is None, reason="NVDEC works on this machine"
)


@needs_no_nvdec
def test_a_visible_gpu_without_nvdec_is_a_warning_at_start(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(hwdecode, "_gpu_visible", lambda: True)
    settings = EngineSettings(data_dir=tmp_path, hwaccel="auto")
    with caplog.at_level(logging.INFO, logger="engine.server"):
        report = decode_report(settings)
    assert report["nvdec_fallback"] is True and report["decoder"] == "software"
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "NVDEC WANTED BUT UNAVAILABLE" in warning.getMessage()
    assert "NVIDIA_DRIVER_CAPABILITIES" in warning.getMessage()


@needs_no_nvdec
def test_software_by_choice_is_no_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(hwdecode, "_gpu_visible", lambda: True)
    with caplog.at_level(logging.INFO, logger="engine.server"):
        report = decode_report(EngineSettings(data_dir=tmp_path, hwaccel="none"))
    assert report["nvdec_fallback"] is False
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
