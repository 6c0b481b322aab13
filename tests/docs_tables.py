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


# The declarations' "see ..." links point into one page; on the site they live on several.
LINKS = {
    "(#how-generation-works)": "(../explanation/generation.md)",
    "(#record-modes)": "(cassettes.md#record-modes)",
    "(#the-update-workflow)": "(../how-to/update-workflow.md)",
    "(#a-look-at-the-data)": "(../how-to/update-workflow.md#a-look-at-the-data)",
    "(#a-dry-run)": "(../how-to/update-workflow.md#a-dry-run)",
}


def _see(text: str) -> str:
    for anchor, page in LINKS.items():
        text = text.replace(anchor, page)
    return text


def options() -> str:
    """Two tables from the declarations: what each option does, and where to set it (one
    table of seven columns is too wide to read on a page)."""
    from pytest_synthdata.settings import SESSION_SETTINGS, SETTINGS

    declared = (*SETTINGS, *SESSION_SETTINGS)
    what = ["| option | default | meaning |", "|---|---|---|"]
    where = [
        "| option | pytest flag | ini key | environment variable | command flag |",
        "|---|---|---|---|---|",
    ]
    for s in declared:
        meaning = s.meaning + (f" (see {_see(s.see)})" if s.see else "")
        what.append(f"| `{s.name}` | {s.shown_default} | {meaning} |")
        env = f"`{s.env}`" if s.ini else ""
        if s.fallback_env:
            env += f", then `{s.fallback_env}`"
        ini = f"`{s.ini_key}`" if s.ini else ""
        command = f"`{s.command_flag}`" if s.command else ""
        where.append(f"| `{s.name}` | `{s.flag}` | {ini} | {env} | {command} |")
    return "\n".join([*what, "", "Where to set each of them:", "", *where])


def _cell(text: str) -> str:
    """One line of Markdown that shows ``text`` as it is (no emphasis, no HTML tags)."""
    text = " ".join(text.split())
    for special in ("\\", "|", "*", "_", "`"):
        text = text.replace(special, "\\" + special)
    return text.replace("<", "&lt;")


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
        if not action.option_strings:
            value = ""
        elif action.choices is not None:
            value = "`{" + ",".join(str(choice) for choice in action.choices) + "}`"
        elif action.nargs == 0:
            value = ""
        else:
            value = f"`{action.metavar or action.dest.upper()}`"
        meaning = _cell(str(action.help or "").replace("%%", "%"))
        if action.required and action.option_strings:
            meaning += " (required)"
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
                title = _cell(str(group.title))
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
