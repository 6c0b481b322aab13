"""The command's ``--cover AXIS=V1,V2`` and ``--sample FIELD=SPEC`` flags, read into the
``cover=`` and ``sample=`` of the spec (checked by :func:`~pytest_synthdata.spec.make_spec`
before any request)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..errors import SynthConfigError

SAMPLE_HELP = (
    "a field whose value code draws for each record from the seed and the record's index "
    "(the model writes the other fields to fit it; repeat for several). SPEC is one of: "
    "sequence:START[,STEP] (100000, 100001, ...), choice:A,B,C (one at random), "
    "uniform:LOW,HIGH (ints on an int field, 2 decimals on a float field), "
    "faker:PROVIDER[@LOCALE] (e.g. faker:name@ja_JP; needs the faker extra), "
    "values:A,B,C (in order, one per record). Numbers are read as numbers (007 stays text)"
)
COVER_HELP = (
    "a coverage axis: each record gets one combination of the axes' values, stated in its "
    "request, every combination as evenly as n allows (repeat for several axes), e.g. "
    "--cover specialty=cardiology,oncology --cover payer=medicare,private"
)

_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """``--sample`` and ``--cover`` on ``synthdata generate``."""
    parser.add_argument("--sample", action="append", metavar="FIELD=SPEC", help=SAMPLE_HELP)
    parser.add_argument("--cover", action="append", metavar="AXIS=V1,V2", help=COVER_HELP)
    parser.add_argument(
        "--near-duplicates",
        metavar="SIMILARITY",
        help="the similarity (above 0, at most 1; default 0.9) from which a record counts as "
        "a copy of an earlier record or an example and is asked for again; 'off' keeps "
        "near-copies",
    )


def spec_options(args: argparse.Namespace) -> dict[str, Any]:
    """``sample=`` and ``cover=`` from the flags (only those given)."""
    out: dict[str, Any] = {}
    if getattr(args, "sample", None):
        out["sample"] = parse_samples(args.sample)
    if getattr(args, "cover", None):
        out["cover"] = parse_cover(args.cover)
    given = getattr(args, "near_duplicates", None)
    if given is not None:
        out["near_duplicates"] = _similarity(given)
    return out


def _similarity(given: str) -> float | None:
    if given.strip().lower() in ("off", "none"):
        return None
    try:
        return float(given)
    except ValueError:
        raise SynthConfigError(
            f"--near-duplicates {given!r}: give a similarity such as 0.9, or off"
        ) from None


def _split(flag: str, given: str, what: str) -> tuple[str, str]:
    name, sep, rest = given.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise SynthConfigError(f"{flag} {given!r}: write it as {what}")
    return name.strip(), rest.strip()


def _items(text: str) -> list[Any]:
    """Comma-separated values; numbers as numbers."""
    items = [item.strip() for item in text.split(",")]
    return [
        (float(item) if "." in item else int(item)) if _NUMBER.fullmatch(item) else item
        for item in items
        if item
    ]


def parse_cover(given: list[str]) -> dict[str, list[Any]]:
    """``["payer=medicare,private"]`` -> ``{"payer": ["medicare", "private"]}``."""
    cover: dict[str, list[Any]] = {}
    for entry in given:
        name, values = _split("--cover", entry, "AXIS=V1,V2 (e.g. payer=medicare,private)")
        if name in cover:
            raise SynthConfigError(f"--cover {name!r} is given twice; give each axis once")
        cover[name] = _items(values)
    return cover


def parse_samples(given: list[str]) -> dict[str, Any]:
    """``["patient_id=sequence:100000"]`` -> ``{"patient_id": samplers.sequence(100000)}``."""
    out: dict[str, Any] = {}
    for entry in given:
        name, spec = _split("--sample", entry, "FIELD=SPEC (e.g. patient_id=sequence:100000)")
        if name in out:
            raise SynthConfigError(f"--sample {name!r} is given twice; give each field once")
        out[name] = parse_sampler(name, spec)
    return out


def parse_sampler(name: str, spec: str) -> Any:
    """One sampler from its SPEC (see :data:`SAMPLE_HELP`)."""
    from .. import samplers

    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    items = _items(rest)
    where = f"--sample {name}={spec}"
    try:
        if kind == "sequence":
            if len(items) > 2 or not all(isinstance(i, int) for i in items):
                raise ValueError("sequence takes START[,STEP], whole numbers")
            return samplers.sequence(*items)
        if kind == "choice" and items:
            return samplers.choice(items)
        if kind == "values" and items:
            return samplers.values(items)
        if kind == "uniform":
            if len(items) != 2 or not all(isinstance(i, (int, float)) for i in items):
                raise ValueError("uniform takes LOW,HIGH, two numbers")
            return samplers.uniform(items[0], items[1])
        if kind == "faker" and rest.strip():
            provider, _, locale = rest.strip().partition("@")
            return samplers.faker(provider.strip(), locale=locale.strip() or None)
    except (ValueError, TypeError) as exc:
        raise SynthConfigError(f"{where}: {exc}") from None
    raise SynthConfigError(
        f"{where}: unknown sampler; use sequence:START[,STEP], choice:A,B,C, uniform:LOW,HIGH, "
        "faker:PROVIDER[@LOCALE] or values:A,B,C"
    )
