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


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md", "CHANGELOG.md"])
def test_the_links_of_the_top_level_files_resolve(name: str) -> None:
    """mkdocs checks the site's links; these files are read on their own, so check theirs."""
    import re

    from docs_tables import ROOT

    text = (ROOT / name).read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:", t)]
    missing = [t for t in local if t and not (ROOT / t).exists()]
    assert not missing, f"{name} links to files that do not exist: {missing}"
