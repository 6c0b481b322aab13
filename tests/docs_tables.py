"""The generated parts of the documentation: the options table (from the declarations in
:mod:`pytest_synthdata.settings`) and the ``synthdata`` command's flags (from its parser).

``tests/test_docs_generated.py`` fails when a page differs from what this module generates;
``python tests/docs_tables.py`` rewrites the pages (run it from the repository's root)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
END = "<!-- end of generated part -->"


def start_marker(name: str) -> str:
    return f"<!-- generated part: {name} (python tests/docs_tables.py rewrites it) -->"


def options() -> str:
    from pytest_synthdata.settings import options_table

    return options_table()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise LookupError("the synthdata parser has no subcommands")


def _rows(group: argparse._ArgumentGroup) -> list[str]:
    rows = []
    for action in group._group_actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.metavar}`"
        if action.choices is not None:
            value = "`{" + ",".join(str(choice) for choice in action.choices) + "}`"
        elif action.nargs == 0:
            value = ""
        else:
            value = f"`{action.metavar or action.dest.upper()}`"
        meaning = _cell(str(action.help or "").replace("%%", "%"))
        if action.required and action.option_strings:
            meaning += " (required)"
        if isinstance(action, argparse._AppendAction):
            meaning += " (repeatable)"
        rows.append(f"| {names} | {value} | {meaning} |")
    return rows


def command_flags() -> str:
    """One section per subcommand, one table per group of its arguments, in parser order."""
    from pytest_synthdata.cli import build_parser

    parts: list[str] = []
    for name, sub in _subcommands(build_parser()).items():
        parts.append(f"### `synthdata {name}`\n\n{_cell(sub.description or '')}")
        for group in sub._action_groups:
            rows = _rows(group)
            if not rows:
                continue
            if group is sub._positionals:
                title = "arguments"
            elif group is sub._optionals:
                title = "options"
            else:
                title = str(group.title)
            header = "| flag | value | meaning |\n|---|---|---|"
            parts.append(f"**{title}**\n\n{header}\n" + "\n".join(rows))
    return "\n\n".join(parts)


GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "options": ("docs/reference/options.md", options),
    "command flags": ("docs/reference/command.md", command_flags),
}


def current(page: str, name: str) -> str:
    """The generated part ``name`` as the page holds it."""
    text = (ROOT / page).read_text(encoding="utf-8")
    marker = start_marker(name)
    if marker not in text or END not in text.split(marker, 1)[1]:
        raise LookupError(f"{page} lost the markers of its generated part {name!r}")
    return text.split(marker, 1)[1].split(END, 1)[0].strip()


def rewrite() -> None:
    for name, (page, generate) in GENERATED.items():
        path = ROOT / page
        text = path.read_text(encoding="utf-8")
        old = current(page, name)
        head, tail = text.split(start_marker(name), 1)
        tail = tail.split(END, 1)[1]
        path.write_text(f"{head}{start_marker(name)}\n{generate()}\n{END}{tail}", encoding="utf-8")
        print(f"{page}: {name} {'unchanged' if old == generate() else 'rewritten'}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    rewrite()
