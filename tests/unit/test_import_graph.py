"""The layering of DESIGN.md section 2, checked on the source: every import between the
engine's parts follows an allowed arrow (api -> jobs -> cluster -> video / models / kernels;
results and storage are leaves), so no module ever imports "upwards".

The graph is read with `ast` from the files themselves (nothing is imported), at the level of
parts: `engine.<package>` or a top-level `engine/<module>.py`, `models`, `kernels`. An arrow
may also name one module of a part (`engine.api.wire`) when only that module may be used.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("engine", "models", "kernels")

LEAVES = ("engine.config", "engine.errors", "engine.logs")
"""Settings, the contract's error classes and log setup: anyone may import them."""

ALLOWED: dict[str, tuple[str, ...]] = {
    # bottom: the model, the kernels, video access
    "models": (),
    "kernels": (),
    "engine.video": ("kernels", "models"),
    # leaves used by several
    "engine.results": ("engine.video.types", "models"),
    "engine.storage": (),
    "engine.metrics": (),
    "engine.notify": (),
    # the cluster runs segments: it never sees results, jobs or the wire
    "engine.cluster": ("engine.video", "models", "kernels"),
    # above the cluster
    "engine.local_runner": ("engine.cluster", "engine.results", "engine.video"),
    "engine.jobs": (
        "engine.cluster", "engine.results", "engine.storage", "engine.video", "engine.notify",
        "engine.metrics",
    ),
    "engine.report": ("engine.jobs", "engine.results", "engine.storage", "engine.video"),
    "engine.api": (
        "engine.jobs", "engine.results", "engine.storage", "engine.video.types",
        "engine.metrics",
    ),
    "engine.batch": (
        "engine.api.wire", "engine.cluster", "engine.local_runner", "engine.results",
        "engine.storage", "engine.video", "models",
    ),
    "engine.client": (
        "engine.api.keys", "engine.api.wire", "engine.local_runner", "engine.results",
        "engine.storage",
    ),
    # entry points: they wire the layers together
    "engine.cli": ("engine", "models"),
    "engine.server": ("engine",),
    "engine.demo": ("engine",),
    "engine.config_reference": ("engine",),
}


def part_of(module: str) -> str | None:
    """The part a dotted module belongs to, or None for the standard library and packages."""
    parts = module.split(".")
    if parts[0] in ("models", "kernels", "benchmarks", "tests"):
        return parts[0]
    if parts[0] != "engine":
        return None
    return ".".join(parts[:2]) if len(parts) > 1 else "engine"


def module_name(path: Path) -> str:
    dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return dotted.removesuffix(".__init__")


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports (`from engine import logs` counts as engine.logs)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if node.module in ("engine", "models", "kernels"))
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative imports hide the layer they reach into")
    return {name for name in found if name != "engine"}


def allows(source: str, target: str) -> bool:
    if target in LEAVES or part_of(target) in LEAVES:
        return True
    return any(target == arrow or target.startswith(arrow + ".") for arrow in ALLOWED[source])


def import_edges() -> list[tuple[str, str, str]]:
    """(file, its part, imported module) for every import that crosses from one part to another."""
    edges = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            source = part_of(module_name(path))
            for target in sorted(imported_modules(path)):
                target_part = part_of(target)
                if target_part is not None and target_part != source:
                    edges.append((str(path.relative_to(ROOT)), source, target))
    return edges


def test_every_part_has_a_rule():
    parts = {source for _, source, _ in import_edges()}
    parts |= {part_of(module_name(path)) for top in SCANNED for path in (ROOT / top).rglob("*.py")}
    assert parts - set(ALLOWED) - set(LEAVES) - {"engine"} == set()


def test_imports_follow_the_allowed_arrows():
    wrong = [
        f"{path}: {source} imports {target}"
        for path, source, target in import_edges()
        if not allows(source, target)
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("engine.cluster", "engine.results"),
        ("engine.cluster", "engine.jobs"),
        ("engine.cluster", "engine.api"),
        ("engine.video", "engine.api"),
        ("engine.video", "engine.errors"),
        ("engine.results", "engine.cluster"),
        ("models", "engine"),
        ("kernels", "engine"),
        ("engine.jobs", "engine.api"),
    ],
)
def test_named_arrows_are_absent(source, forbidden):
    assert [
        (path, target)
        for path, part, target in import_edges()
        if part == source and (target == forbidden or target.startswith(forbidden + "."))
    ] == []


def test_the_rules_catch_an_upward_import():
    assert not allows("engine.cluster", "engine.results.types")
    assert not allows("engine.video", "engine.jobs.store")
    assert not allows("models", "engine.video")
    assert allows("engine.jobs", "engine.cluster")
    assert allows("engine.api", "engine.errors")
