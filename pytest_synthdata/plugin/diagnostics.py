"""Clear messages for mistakes pytest itself reports badly (no pytest import here).

``@pytest.mark.synth(Model)``, the model alone, never reaches the plugin: pytest reads a
marker called with a single class as decorating that class, hands the class back, and
Python then calls ``Model(test_function)``, which pydantic rejects while the module is
imported. :func:`single_class_markers` finds such markers in a module's source, so the
collection error can say what to write instead of showing pydantic's ``TypeError``.
"""

from __future__ import annotations

import ast
from pathlib import Path

# What the failed import says when a model was applied as a decorator (pydantic), or when
# a module's ``pytestmark`` is the model itself (pytest).
SYMPTOMS = ("BaseModel.__init__() takes 1 positional argument", "instead of Mark")


def _is_synth_marker(node: ast.expr) -> bool:
    """``pytest.mark.synth``, ``mark.synth`` (``from pytest import mark``) and the like."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "synth"
        and (
            (isinstance(node.value, ast.Attribute) and node.value.attr == "mark")
            or (isinstance(node.value, ast.Name) and node.value.id == "mark")
        )
    )


def single_class_markers(path: Path) -> list[tuple[int, str]]:
    """``(line, model name)`` of every ``synth`` marker in ``path`` called with one
    positional argument and nothing else."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and _is_synth_marker(node.func)
            and len(node.args) == 1
            and not node.keywords
        ):
            found.append((node.lineno, ast.unparse(node.args[0])))
    return sorted(found)


def single_class_message(where: str, found: list[tuple[int, str]]) -> str:
    """The collection error for the markers ``found`` in the module ``where``."""
    lines = [
        f"pytest-synthdata: {where}:{line}: @pytest.mark.synth({model}) gives the model alone. "
        "pytest reads a marker called with a single class as decorating that class, so "
        "pytest cannot collect this module. Give the number of records too: "
        f"@pytest.mark.synth({model}, n=10) (n may also be positional: "
        f"@pytest.mark.synth({model}, 10))"
        for line, model in found
    ]
    return "\n".join(lines)
