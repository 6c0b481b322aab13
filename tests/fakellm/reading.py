"""What the fake reads in a request: the same things a real model reads.

Nothing here knows the wording of a particular client's prompts. The fake looks at

* the output asked for (:func:`output_of`): ``response_format`` ``json_schema`` or
  ``json_object`` with a ``schema``, a forced function tool, or legacy ``functions``;
* the response schema: a wrapper object whose array holds ``{index, text}`` items asks for
  a batch of texts, one whose array holds ``{index, record}`` items asks for records read
  out of texts (:func:`batch_of`); anything else asks for records;
* counts stated in plain words in the last user message, such as "exactly 5 records",
  "Return 3 texts" or "five more items" (:func:`stated_count`), within the ``minItems`` /
  ``maxItems`` of the array when the schema has them (:func:`item_count`);
* JSON values quoted at the end of lines of the last user message, numbered by a ``#<i>``
  on the line when there is one (:func:`inputs`);
* a JSON object on a line whose label mentions preferences (:func:`preferences`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .schema_faker import SchemaFaker, parse_description_constraints
from .wire import HTTPError

__all__ = [
    "Batch",
    "JsonLine",
    "Output",
    "batch_of",
    "inputs",
    "item_count",
    "json_lines",
    "output_of",
    "preferences",
    "stated_count",
    "text_of",
    "trailing_json",
    "user_texts",
]

JSONDict = dict[str, Any]

_DECODER = json.JSONDecoder()
_NUMBER_RE = re.compile(r"#\s*(\d+)")
_PREFERENCES_RE = re.compile(r"preferen", re.IGNORECASE)
_NUMBER_WORDS = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen", "twenty"),
)
_BATCH_ITEMS = ({"index", "text"}, {"index", "record"})
_NOUNS = ("records", "texts", "items", "entries", "objects", "rows", "results")


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def text_of(content: Any) -> str:
    """The text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "".join(parts)
    return ""


def _texts(body: JSONDict, role: str | None) -> list[str]:
    messages = body.get("messages") or []
    return [
        text_of(m.get("content"))
        for m in reversed(messages)
        if isinstance(m, dict) and (role is None or m.get("role") == role)
    ]


def user_texts(body: JSONDict) -> list[str]:
    """The texts of the user messages, the last one first."""
    return _texts(body, "user")


# --------------------------------------------------------------------------------------------
# JSON at the end of a line
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JsonLine:
    """A line ending in a JSON value: what comes before it, its ``#<i>`` number, the value."""

    label: str
    number: int | None
    value: Any


def trailing_json(line: str) -> tuple[str, Any] | None:
    """``(label, value)`` when ``line`` ends in a JSON object, array or string.

    The value is the longest one that runs to the end of the line and does not start inside
    a quoted string of the label or right after a comma (the last item of a list written in
    prose, such as ``contain: "Tom Hanks", "Forrest Gump"``, is not a value of its own).
    """
    line = line.rstrip()
    if not line or line[-1] not in '}]"':
        return None
    quotes = 0  # quotes before ``pos``: an odd count means ``pos`` is inside a string
    for pos, char in enumerate(line):
        if char in '{["' and not quotes % 2 and not line[:pos].rstrip().endswith(","):
            try:
                value, end = _DECODER.raw_decode(line, pos)
            except ValueError:
                value, end = None, -1
            if end == len(line):
                return line[:pos], value
        quotes += char == '"'
    return None


def json_lines(text: str) -> list[JsonLine]:
    """Every line of ``text`` that ends in a JSON value, in order."""
    found: list[JsonLine] = []
    for line in text.splitlines():
        parsed = trailing_json(line)
        if parsed is None:
            continue
        label, value = parsed
        number = _NUMBER_RE.search(label)
        found.append(JsonLine(label, int(number.group(1)) if number else None, value))
    return found


def _mentions_preferences(line: JsonLine) -> bool:
    return bool(_PREFERENCES_RE.search(line.label))


def inputs(body: JSONDict, accept: Callable[[Any], bool]) -> list[tuple[int, Any]]:
    """``(number, value)`` for the JSON values ``accept`` takes from the last user message
    that has any (preferences aside). Lines numbered ``#<i>`` win over unnumbered ones, which
    are otherwise numbered by position from 1."""
    for text in user_texts(body):
        found = [
            line
            for line in json_lines(text)
            if accept(line.value) and not _mentions_preferences(line)
        ]
        if not found:
            continue
        numbered = [(line.number, line.value) for line in found if line.number is not None]
        if numbered:
            return numbered
        return [(i, line.value) for i, line in enumerate(found, 1)]
    return []


def _key(name: object) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def preferences(body: JSONDict) -> JSONDict:
    """The last JSON object of the conversation on a line that mentions preferences, its keys
    normalised (``"Minimum Length"`` is ``minimum_length``); ``{}`` if there is none."""
    for text in _texts(body, None):
        found = [
            line.value
            for line in json_lines(text)
            if isinstance(line.value, dict) and _mentions_preferences(line)
        ]
        if found:
            return {
                re.sub(r"[\s\-]+", "_", str(k).strip().lower()): v for k, v in found[-1].items()
            }
    return {}


# --------------------------------------------------------------------------------------------
# Counts
# --------------------------------------------------------------------------------------------


def _forms(noun: str) -> set[str]:
    noun = noun.lower()
    if noun.endswith("ies"):
        return {noun, noun[:-3] + "y"}
    if noun.endswith("s"):
        return {noun, noun[:-1]}
    return {noun, noun + "s", noun + "es"}


def _count_pattern(nouns: Iterable[str]) -> re.Pattern[str]:
    forms = sorted({form for noun in (*_NOUNS, *nouns) for form in _forms(noun)}, key=len)
    alternatives = "|".join(re.escape(form) for form in reversed(forms) if form)
    return re.compile(
        r"(?<![\w#.])(?P<exactly>exactly\s+)?(?P<n>\d+|" + "|".join(_NUMBER_WORDS) + r")"
        r"\s+(?:(?!of\b)[a-z][\w-]*\s+){0,3}?(?:" + alternatives + r")\b",
        re.IGNORECASE,
    )


def stated_count(body: JSONDict, nouns: Iterable[str] = ()) -> int | None:
    """The number of records (texts, items, entries, or ``nouns``) the last user message
    asks for, in digits or words; one stated with "exactly" wins over the others, and the
    last one over earlier ones. ``None`` when the message states none."""
    texts = user_texts(body)
    if not texts:
        return None
    found = list(_count_pattern(nouns).finditer(texts[0]))
    if not found:
        return None
    exact = [m for m in found if m.group("exactly")]
    raw = (exact or found)[-1].group("n").lower()
    return int(raw) if raw.isdigit() else _NUMBER_WORDS.index(raw)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def item_count(array: JSONDict, stated: int | None) -> int:
    """Items for an array schema: the stated count (1 when none is stated), kept within the
    array's ``minItems``/``maxItems`` (keywords of the schema, or written into its
    description)."""
    bounds = {**parse_description_constraints(array.get("description")), **array}
    low, high = _int(bounds.get("minItems")), _int(bounds.get("maxItems"))
    count = stated if stated is not None else (low if low is not None else 1)
    if low is not None:
        count = max(count, low)
    if high is not None and (low is None or high >= low):
        count = min(count, high)
    return max(count, 0)


# --------------------------------------------------------------------------------------------
# The kind of request, from the schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """A wrapper whose array answers numbered inputs: ``kind`` is ``"texts"`` (items
    ``{index, text}``) or ``"extraction"`` (items ``{index, record}``)."""

    kind: str
    key: str
    record: JSONDict | None = None


def batch_of(faker: SchemaFaker, schema: JSONDict) -> Batch | None:
    """The text or extraction batch ``schema`` asks for, or ``None`` for plain records."""
    props = faker.resolve(schema).get("properties")
    if not isinstance(props, dict):
        return None
    for key, sub in props.items():
        node = faker.resolve(sub)
        if node.get("type") != "array" or not isinstance(node.get("items"), dict):
            continue
        inner = faker.resolve(node["items"]).get("properties")
        if not isinstance(inner, dict) or set(inner) not in (
            {"index", "text"},
            {"index", "record"},
        ):
            continue
        if faker.resolve(inner["index"]).get("type") != "integer":
            continue
        if "text" in inner and faker.resolve(inner["text"]).get("type") == "string":
            return Batch("texts", key)
        if "record" in inner:
            return Batch("extraction", key, inner["record"])
    return None


# --------------------------------------------------------------------------------------------
# The output a request asks for
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """The output a request asks for.

    ``mode`` is ``json_schema``, ``json_object`` (with a ``schema``, as llama.cpp takes it),
    ``tools`` (a forced function tool), ``functions`` (legacy ``functions`` with
    ``function_call``) or ``text``; ``schema`` is the JSON schema of the answer, ``name`` the
    function to call and ``definition`` what the request sent to describe the output (a model
    reads it as part of its prompt).
    """

    mode: str
    schema: JSONDict | None = None
    name: str | None = None
    definition: Any = None


def _forced_function(functions: list[Any], wanted: Any, what: str) -> tuple[JSONDict, str]:
    """The function the request forces (the first one when it names none), and its name."""
    if not functions:
        raise HTTPError(400, f"'{what}' has no function")
    chosen = functions[0]
    if isinstance(wanted, str):
        matches = [f for f in functions if f.get("name") == wanted]
        if not matches:
            raise HTTPError(400, f"{what} names an unknown function {wanted!r}")
        chosen = matches[0]
    params = chosen.get("parameters")
    if not isinstance(params, dict):
        raise HTTPError(400, f"function {chosen.get('name')!r} has no parameters schema")
    return params, str(chosen.get("name", "function"))


def output_of(body: JSONDict) -> Output:
    """What ``body`` asks for; :class:`~fakellm.wire.HTTPError` (400) when it is malformed."""
    tools = body.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise HTTPError(400, "'tools' must be an array")
        functions = [
            t["function"]
            for t in tools
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        if not functions:
            raise HTTPError(400, "'tools' has no function tool")
        choice = body.get("tool_choice")
        wanted = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
        schema, name = _forced_function(functions, wanted, "tool_choice")
        return Output("tools", schema, name, tools)
    legacy = body.get("functions")
    if legacy:
        if not isinstance(legacy, list):
            raise HTTPError(400, "'functions' must be an array")
        call = body.get("function_call")
        wanted = call.get("name") if isinstance(call, dict) else None
        schema, name = _forced_function(
            [f for f in legacy if isinstance(f, dict)], wanted, "function_call"
        )
        return Output("functions", schema, name, legacy)

    rf = body.get("response_format")
    if rf is None:
        return Output("text")
    if not isinstance(rf, dict):
        raise HTTPError(400, "'response_format' must be an object")
    kind = rf.get("type")
    if kind == "text":
        return Output("text")
    if kind == "json_schema":
        spec = rf.get("json_schema")
        given = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(given, dict):
            raise HTTPError(400, "response_format.json_schema.schema is missing")
        return Output("json_schema", given, None, given)
    if kind == "json_object":
        given = rf.get("schema")
        return Output("json_object", given if isinstance(given, dict) else None, None, given)
    raise HTTPError(400, f"Invalid value for 'response_format.type': {kind!r}")
