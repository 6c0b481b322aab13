"""Fidelity and input checks for texts: which field values a text mentions, preferences
and their enforced bounds, the shapes fields may take, and how round-trip values compare."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Union, cast

from pydantic import BaseModel

from ..errors import SynthConfigError
from ..jsonform import json_form

Fields = Union[list[Any], dict[str, Any]]  # noqa: UP007 (a runtime alias on Python 3.10)
"""A list of values, a dict of named values, or a list of dicts (JSON values inside)."""

FLOAT_TOLERANCE = 1e-6
"""Relative tolerance of :func:`round_trip` when comparing floats."""


def missing_values(text: str, fields: Fields | BaseModel) -> list[Any]:
    """The leaf values of ``fields`` that ``text`` does not mention (the fidelity check).

    Strings must occur in the text as whole words and numbers as numbers, both ignoring case,
    whitespace and number format; booleans and nulls are not checked. Each value is listed
    once, in the order of the fields.
    """
    checked = check_fields(fields, "fields")
    norm = normalise(text)
    numbers = {_canon_number(*m.groups()) for m in _NUMBER.finditer(norm)}
    missing: list[Any] = []
    seen: set[str] = set()
    for leaf in leaves(checked):
        if leaf is None or isinstance(leaf, bool):
            continue
        if isinstance(leaf, (int, float)):
            wanted = number_text(leaf)
            found = wanted in numbers
        else:
            wanted = normalise(str(leaf))
            found = not wanted or _mentions(norm, wanted)
        key = dumps(leaf)
        if not found and key not in seen:
            seen.add(key)
            missing.append(leaf)
    return missing


def text_problems(text: str, fields: Fields, rules: Rules, subject: str) -> list[str]:
    """What is wrong with ``text`` as a text of ``fields`` under ``rules`` (empty: nothing)."""
    problems = []
    missing = missing_values(text, fields)
    if missing:
        problems.append(
            f"{subject} does not mention {', '.join(dumps(value) for value in missing)}."
        )
    return problems + rules.problems(text, subject)


def normalise(text: str) -> str:
    """``text`` casefolded, with single spaces, plain quotes and canonical numbers
    (``1,000.50`` -> ``1000.5``, ``007`` -> ``7``)."""
    text = unicodedata.normalize("NFKC", text).translate(_PLAIN).casefold()
    text = _NUMBER.sub(lambda m: _canon_number(*m.groups()), text)
    return " ".join(text.split())


_ENFORCED: dict[str, str] = {
    "minimum_length": "min_chars",
    "min_length": "min_chars",
    "minimal_length": "min_chars",
    "maximum_length": "max_chars",
    "max_length": "max_chars",
    "maximal_length": "max_chars",
    "min_words": "min_words",
    "minimum_words": "min_words",
    "max_words": "max_words",
    "maximum_words": "max_words",
}


@dataclass(frozen=True)
class Rules:
    """The preferences, and the bounds enforced from them."""

    preferences: dict[str, Any] | None = None
    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None

    def lines(self, subject: str) -> list[str]:
        out = []
        if self.min_chars is not None:
            out.append(f"{subject} must be at least {self.min_chars} characters long.")
        if self.max_chars is not None:
            out.append(f"{subject} must be at most {self.max_chars} characters long.")
        if self.min_words is not None:
            out.append(f"{subject} must have at least {self.min_words} words.")
        if self.max_words is not None:
            out.append(f"{subject} must have at most {self.max_words} words.")
        return out

    def problems(self, text: str, subject: str) -> list[str]:
        chars, words = len(text), len(text.split())
        out = []
        if self.min_chars is not None and chars < self.min_chars:
            out.append(
                f"{subject} is {chars} characters long; it must have at least {self.min_chars}."
            )
        if self.max_chars is not None and chars > self.max_chars:
            out.append(
                f"{subject} is {chars} characters long; it must have at most {self.max_chars}."
            )
        if self.min_words is not None and words < self.min_words:
            out.append(f"{subject} has {words} words; it must have at least {self.min_words}.")
        if self.max_words is not None and words > self.max_words:
            out.append(f"{subject} has {words} words; it must have at most {self.max_words}.")
        return out

    def expected_chars(self) -> int:
        if self.max_chars is not None:
            return self.max_chars
        if self.max_words is not None:
            return self.max_words * 7
        return max(600, self.min_chars or 0, (self.min_words or 0) * 7)


def check_preferences(preferences: Mapping[str, Any] | None) -> Rules:
    if preferences is None:
        return Rules()
    if not isinstance(preferences, Mapping):
        raise SynthConfigError(
            "preferences must be None or a dict such as {'style': 'gossip', "
            f"'minimum_length': 200}}, got {type(preferences).__name__}: "
            f"{short(repr(preferences))}"
        )
    bounds: dict[str, tuple[str, int]] = {}
    for key, value in preferences.items():
        if not isinstance(key, str) or not key.strip():
            raise SynthConfigError(f"preference keys must be non-empty strings, got {key!r}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise SynthConfigError(
                f"preferences[{key!r}] must be a JSON value (a string, number, boolean, list "
                f"or dict), got {type(value).__name__}"
            ) from None
        rule = _ENFORCED.get(re.sub(r"[\s\-]+", "_", key.strip().casefold()))
        if rule is None:
            continue
        least = 0 if rule.startswith("min") else 1
        unit = "characters" if rule.endswith("chars") else "words"
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise SynthConfigError(
                f"preferences[{key!r}] must be an integer number of {unit} >= {least}, "
                f"got {value!r}"
            )
        if rule in bounds and bounds[rule][1] != value:
            raise SynthConfigError(
                f"preferences[{key!r}] and preferences[{bounds[rule][0]!r}] set the same "
                "bound to different values; give only one"
            )
        bounds[rule] = (key, value)
    for low, high in (("min_chars", "max_chars"), ("min_words", "max_words")):
        if low in bounds and high in bounds and bounds[low][1] > bounds[high][1]:
            raise SynthConfigError(
                f"preferences[{bounds[low][0]!r}]={bounds[low][1]} is above "
                f"preferences[{bounds[high][0]!r}]={bounds[high][1]}"
            )
    return Rules(dict(preferences), **{rule: value for rule, (_, value) in bounds.items()})


def check_fields(fields: object, where: str) -> Fields:
    if isinstance(fields, BaseModel):
        fields = json_form(fields)  # its sets in a stable order: the same prompt every run
    if isinstance(fields, (str, bytes)) or not isinstance(fields, (Mapping, list, tuple)):
        raise SynthConfigError(
            f"{where} must be a list (['blue', 'yellow']), a dict ({{'actor': 'Tom Hanks'}}), "
            f"a list of dicts or a pydantic model instance, got {type(fields).__name__}: "
            f"{short(repr(fields))}"
        )
    checked = _json_value(fields, where)
    if not any(True for _ in leaves(checked)):
        raise SynthConfigError(f"{where} holds no values to write about: {short(repr(fields))}")
    return cast(Fields, checked)


def _json_value(value: object, where: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SynthConfigError(f"{where} is {value!r}; use a finite number")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SynthConfigError(f"{where} has a non-string key {key!r}; use string keys")
            out[key] = _json_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise SynthConfigError(
        f"{where} is a {type(value).__name__} ({short(repr(value))}); fields hold JSON values "
        "(str, int, float, bool, None, lists and dicts): convert it first, e.g. with "
        "model_dump(mode='json')"
    )


def check_collection(collection: object) -> list[Fields]:
    if (
        isinstance(collection, (str, bytes, Mapping, BaseModel))
        or not isinstance(collection, Sequence)
        or not collection
    ):
        raise SynthConfigError(
            "fields_collection must be a non-empty list of fields (each a list, a dict, a list "
            f"of dicts or a model instance), got {short(repr(collection))}"
        )
    return [check_fields(item, f"fields_collection[{i}]") for i, item in enumerate(collection)]


def check_texts(texts: object) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence) or not texts:
        raise SynthConfigError(
            f"texts must be a non-empty list of strings, got {short(repr(texts))}"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise SynthConfigError(
                f"texts[{i}] must be a non-empty string, got {short(repr(text))}"
            )
    return list(texts)


def same(expected: object, got: object) -> bool:
    """Whether two JSON values agree as :func:`round_trip` compares them."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if expected is None or got is None:
        return expected is got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(expected, got, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-9)
    if isinstance(expected, (str, int, float)) and isinstance(got, (str, int, float)):
        return _scalar_text(expected) == _scalar_text(got)
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(same(v, got[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return False
        if all(same(a, b) for a, b in zip(expected, got, strict=True)):
            return True
        unused = list(got)
        for item in expected:
            match = next((i for i, other in enumerate(unused) if same(item, other)), None)
            if match is None:
                return False
            unused.pop(match)
        return True
    return False


_PLAIN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_NUMBER = re.compile(r"(?<![\w.])(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?!\d|\.\d)")


def _canon_number(sign: str, whole: str, fraction: str | None) -> str:
    whole = whole.replace(",", "").lstrip("0") or "0"
    fraction = (fraction or "").rstrip("0")
    text = whole + (f".{fraction}" if fraction else "")
    return f"-{text}" if sign and text != "0" else text


def _mentions(text: str, value: str) -> bool:
    """Whether ``value`` occurs in ``text`` not as part of a longer word (both normalised)."""
    start = r"(?<!\w)" if value[0].isalnum() or value[0] == "_" else ""
    end = r"(?!\w)" if value[-1].isalnum() or value[-1] == "_" else ""
    return re.search(start + re.escape(value) + end, text) is not None


def number_text(value: int | float) -> str:
    text = format(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), "f")
    whole, _, fraction = text.lstrip("-").partition(".")
    return _canon_number("-" if text.startswith("-") else "", whole, fraction)


def _scalar_text(value: str | int | float) -> str:
    return number_text(value) if not isinstance(value, str) else normalise(value)


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
