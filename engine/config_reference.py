"""The configuration reference (docs/CONFIGURATION.md), generated from EngineSettings itself.

The field docstrings in engine/config.py are the one place a setting is described; this module
reads them from the source (attribute docstrings are not kept at run time) so the reference can
never drift from the code. `python -m engine.config_reference > docs/CONFIGURATION.md`
rewrites it, and a unit test fails when the committed file is stale.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from pathlib import Path

from engine import config
from engine.config import ENV_PREFIX, EngineSettings

HEADER = """\
# Configuration reference

Generated from `engine/config.py` by `python -m engine.config_reference`; do not edit by hand.

Every setting can be given, lowest precedence first, as its default, in a TOML file (top level
or under `[modengine]`; the file is `--config FILE` or `$MODENGINE_CONFIG`), as an environment
variable `MODENGINE_<NAME>`, or as a command-line flag where one exists. Booleans accept
`true/false`, `1/0`, `yes/no`, `on/off`. Unset optional values are written `None`.

```toml
# /etc/modengine.toml
[modengine]
decode_mode = "accurate"
max_batch_size = 16
s3_endpoint = "http://127.0.0.1:9000"
```
"""


def field_docs() -> dict[str, str]:
    """Each field's docstring: the string literal that follows its annotated assignment."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(config)))
    settings_class = next(
        node for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == EngineSettings.__name__
    )
    docs: dict[str, str] = {}
    body = settings_class.body
    for statement, following in zip(body, body[1:] + [None]):
        if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
            continue
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _type_name(field: dataclasses.Field) -> str:
    return str(field.type).replace("typing.", "").replace("pathlib.", "")


def _default_text(field: dataclasses.Field) -> str:
    default = field.default
    if isinstance(default, Path) and default.is_relative_to(Path.home()):
        return f"~/{default.relative_to(Path.home())}"
    return repr(default) if isinstance(default, str) else str(default)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def reference_markdown() -> str:
    """The whole reference page: one table row per setting, in declaration order."""
    docs = field_docs()
    rows = [
        "| setting | environment variable | type | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for field in dataclasses.fields(EngineSettings):
        rows.append(
            f"| `{field.name}` | `{ENV_PREFIX}{field.name.upper()}` | {_cell(_type_name(field))} "
            f"| `{_cell(_default_text(field))}` | {_cell(docs.get(field.name, ''))} |"
        )
    return HEADER + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    print(reference_markdown(), end="")


if __name__ == "__main__":
    main()
