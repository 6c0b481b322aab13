"""Parsing ``@pytest.mark.synth(...)`` arguments and examples files (no pytest import)."""

from __future__ import annotations

import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SynthConfigError, did_you_mean
from ..settings import SETTING_NAMES, SPEC_WORDS

INJECTION_KEYWORDS = ("name", "each")
DEFAULT_N = 10


def allowed_keywords() -> tuple[str, ...]:
    return (*SPEC_WORDS, *INJECTION_KEYWORDS, *SETTING_NAMES)


@dataclass(frozen=True)
class DatasetRequest:
    """One ``synth`` marker (or factory call), checked but not yet generated."""

    model: type[Any]
    spec_kwargs: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    name: str = "synth_data"
    each: bool = False

    @property
    def n(self) -> int:
        n = self.spec_kwargs.get("n", DEFAULT_N)
        assert isinstance(n, int)
        return n


def parse_request(
    args: Sequence[object],
    kwargs: Mapping[str, object],
    *,
    base_dir: Path | None,
    what: str = "@pytest.mark.synth",
    default_name: str = "synth_data",
) -> DatasetRequest:
    """Check the arguments of a marker or factory call; the error names the fix.

    Messages do not start with ``what``: the caller says where the arguments came from.
    """
    if not args:
        raise SynthConfigError(
            f"the pydantic model must be the first argument, e.g. {what}(MedicalBilling, n=10)"
        )
    if len(args) > 2:
        raise SynthConfigError(
            "only the model and n may be positional arguments; pass the rest as keywords "
            f"({', '.join(allowed_keywords())})"
        )
    from ..spec import check_model  # pydantic loads only when a marker is used

    model = check_model(args[0])
    kwargs = dict(kwargs)
    if len(args) == 2:
        if "n" in kwargs:
            raise SynthConfigError("n is given both positionally and as n=; pass it once")
        kwargs["n"] = args[1]
    unknown = [key for key in kwargs if key not in allowed_keywords()]
    if unknown:
        hints = [f"{key!r}{did_you_mean(key, allowed_keywords())}" for key in unknown]
        raise SynthConfigError(
            f"unknown keyword {', '.join(hints)}; allowed: {', '.join(allowed_keywords())}"
        )
    n = kwargs.get("n", DEFAULT_N)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SynthConfigError(f"n must be a positive integer (the number of records), got {n!r}")
    each = kwargs.pop("each", False)
    if not isinstance(each, bool):
        raise SynthConfigError(f"each must be True or False, got {each!r}")
    name = kwargs.pop("name", "synth_record" if each else default_name)
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise SynthConfigError(
            "name must be a valid Python identifier (the fixture name the test asks for), "
            f"got {name!r}"
        )
    examples = kwargs.get("examples")
    if isinstance(examples, (str, Path)):
        kwargs["examples"] = load_examples_file(examples, base_dir)
    spec_kwargs = {key: kwargs[key] for key in SPEC_WORDS if key in kwargs}
    overrides = {key: kwargs[key] for key in SETTING_NAMES if key in kwargs}
    return DatasetRequest(model, spec_kwargs, overrides, name, each)


def load_examples_file(path: str | Path, base_dir: Path | None) -> list[object]:
    """Examples from a ``.json`` (a list), ``.jsonl`` (one per line) or ``.csv`` file, read
    as the ``synthdata`` command reads them (:func:`pytest_synthdata.examples.read_items`).

    A relative path is resolved against ``base_dir`` (the test file's folder).
    """
    from ..examples import read_items

    return read_items(
        path,
        "examples file",
        base_dir=base_dir,
        relative_to="the test file's folder",
        instead=", or drop examples=",
    )


TEXT_KEYWORDS = ("preferences", "seed")


def parse_text_request(
    args: Sequence[object], kwargs: Mapping[str, object]
) -> tuple[list[Any], Any, dict[str, Any]]:
    """``synth_text(fields_collection, preferences=None, **options)``, checked."""
    if len(args) != 1:
        raise SynthConfigError(
            "synth_text takes one positional argument, the list of field sets, e.g. "
            "synth_text([['blue', 'yellow'], {'actor': 'Tom Hanks'}], preferences={...})"
        )
    collection = args[0]
    if isinstance(collection, (str, bytes, dict)) or not isinstance(collection, Sequence):
        raise SynthConfigError(
            "the first argument must be a list of field sets (lists or dicts), one per text, "
            f"got {type(collection).__name__}"
        )
    known = (*TEXT_KEYWORDS, *SETTING_NAMES)
    unknown = [key for key in kwargs if key not in known]
    if unknown:
        hints = [f"{key!r}{did_you_mean(key, known)}" for key in unknown]
        raise SynthConfigError(f"unknown keyword {', '.join(hints)}; allowed: {', '.join(known)}")
    options = {key: value for key, value in kwargs.items() if key != "preferences"}
    return list(collection), kwargs.get("preferences"), options
