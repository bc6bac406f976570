"""The configuration reference is generated from EngineSettings and must be current."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.config import EngineSettings
from engine.config_reference import field_docs, reference_markdown

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "CONFIGURATION.md"


def test_every_setting_is_described():
    docs = field_docs()
    undocumented = [f.name for f in dataclasses.fields(EngineSettings) if not docs.get(f.name)]
    assert undocumented == []


def test_reference_lists_each_setting_with_its_environment_variable():
    page = reference_markdown()
    for field in dataclasses.fields(EngineSettings):
        assert f"| `{field.name}` | `MODENGINE_{field.name.upper()}` |" in page


def test_committed_reference_is_current():
    assert REFERENCE.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/CONFIGURATION.md is stale: run `python -m engine.config_reference > "
        "docs/CONFIGURATION.md`"
    )
