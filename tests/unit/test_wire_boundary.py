"""The AWS wire's member names are written in engine/api only (engine/api/wire.py writes the
shapes; the api's validation reads botocore's model): everything below it deals in dataclasses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIRE_MEMBERS = re.compile(r'"(ModerationLabel|VideoMetadata)"')


def test_wire_members_appear_only_under_engine_api():
    files = [*(ROOT / "engine").rglob("*.py"), *(ROOT / "models").rglob("*.py")]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(files)
        if (ROOT / "engine" / "api") not in path.parents
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WIRE_MEMBERS.search(line)
    ]
    assert found == []
