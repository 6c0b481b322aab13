"""The generated parts of the documentation match their one source: the options table the
declarations in pytest_synthdata/settings.py, the command's flags its parser
(tests/docs_tables.py generates both; ``python tests/docs_tables.py`` rewrites them)."""

from __future__ import annotations

import pytest
from docs_tables import GENERATED, current


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_the_generated_part_is_up_to_date(name: str) -> None:
    page, generate = GENERATED[name]
    assert current(page, name) == generate(), (
        f"{page}'s {name} differ from their source; rewrite them with: python tests/docs_tables.py"
    )


def test_the_readme_points_to_the_generated_options() -> None:
    from docs_tables import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/reference/options.md" in readme
