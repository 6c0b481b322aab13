"""The chat completion answering a request, built from what the request asks for.

:func:`output_for` reads the output a request wants (refusing what the server is set not to
support); :func:`fake_records`, :func:`batch_items` and :func:`plain_text` fill it with
records, with a text for each quoted JSON object or array, or with a record read out of each
quoted text; :func:`completion` wraps the answer in OpenAI's ``chat.completion`` object,
changed by the fault kinds that break content (``malformed``, ``truncated``, ``refusal`` ...)
and cut at the request's output limit, with :func:`tokens` estimating one token per four
characters. These are plain functions of their arguments: the switches and counters they
depend on stay on :class:`~fakellm.server.FakeLLM`, which passes them in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from . import reading
from .faults import Fault, record_faults
from .reading import text_of
from .schema_faker import SchemaFaker
from .texts import fill_record, read_phrases, write_text
from .wire import HTTPError, RecordedRequest

__all__ = [
    "batch_items",
    "checked_body",
    "completion",
    "fake_records",
    "output_for",
    "output_limit",
    "plain_text",
    "prompt_chars",
    "requested_count",
    "tokens",
]

JSONDict = dict[str, Any]
# What a text being written leaves out (see ``FakeLLM.text_omit_values``), taken when needed.
Omission = Callable[[], set[str] | int]

_CREATED = 1_700_000_000
_REFUSAL_TEXT = "I can't help with that."
_FINISH = {"tools": "tool_calls"}


def _is_fields(value: Any) -> bool:
    """Fields to write a text from are a JSON object or array."""
    return isinstance(value, (dict, list))


# --------------------------------------------------------------------------------------------
# What a request asks for
# --------------------------------------------------------------------------------------------


def checked_body(body: Any, reject_seed: bool) -> JSONDict:
    """``body`` if it is a chat request this server answers, else the :class:`HTTPError` a
    hosted API sends for it (``reject_seed``: a ``seed`` is refused, as some servers do)."""
    if not isinstance(body, dict):
        raise HTTPError(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise HTTPError(400, "'messages' is a required property and must be non-empty")
    if reject_seed and "seed" in body:
        raise HTTPError(400, "Unrecognized request argument supplied: seed")
    if body.get("stream"):
        raise HTTPError(400, "stream=true is not supported by this server")
    return body


def output_for(
    body: JSONDict, supported: Collection[str], unsupported_status: int
) -> reading.Output:
    """What ``body`` asks for, if the server supports it (``supported`` modes, legacy
    ``functions`` counting as ``tools``; others are refused with ``unsupported_status``)."""
    output = reading.output_of(body)
    wanted = "tools" if output.mode == "functions" else output.mode
    if wanted != "text" and wanted not in supported:
        what = (
            f"{output.mode} are"
            if wanted == "tools"
            else f"response_format type '{output.mode}' is"
        )
        raise HTTPError(unsupported_status, f"{what} not supported by this server")
    if output.schema is None and output.mode == "json_object":
        raise HTTPError(400, "response_format json_object needs a 'schema' object on this server")
    return output


def requested_count(body: JSONDict, schema: JSONDict | None = None) -> int:
    """How many records ``body`` asks for: the count its last user message states (1 if
    none), within the ``minItems``/``maxItems`` of ``schema`` when it is an array."""
    root = SchemaFaker(schema, "").resolve(schema) if schema is not None else {}
    nouns = [key for key in root.get("properties") or {} if isinstance(key, str)]
    array = root if root.get("type") == "array" else {}
    return reading.item_count(array, reading.stated_count(body, nouns))


def output_limit(body: Any) -> int | None:
    """The output-token limit a request sets (``max_completion_tokens`` or ``max_tokens``)."""
    if not isinstance(body, dict):
        return None
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def tokens(chars: int, round_up: bool) -> int:
    """The token estimate for everything: one token per four characters (rounded down, or up
    with ``round_up``), at least one."""
    return max(1, -(-chars // 4) if round_up else chars // 4)


def prompt_chars(body: JSONDict, definition: Any) -> int:
    """The characters a model reads as prompt: the messages' texts, and the output's schema
    (or the function definitions) when ``definition`` is not None."""
    chars = sum(len(text_of(m.get("content"))) for m in body["messages"] if isinstance(m, dict))
    if definition is not None:
        chars += len(json.dumps(definition))
    return chars


# --------------------------------------------------------------------------------------------
# The answer itself
# --------------------------------------------------------------------------------------------


def fake_records(faker: SchemaFaker, schema: JSONDict, body: JSONDict, fault: Fault | None) -> Any:
    """The object answering ``body`` for ``schema`` (not a text or extraction batch): as many
    records as the prompt states in each array, with the record faults of ``fault``."""
    kind = fault.kind if fault is not None else None

    def count(array: JSONDict) -> int:
        asked = reading.item_count(array, stated)
        return {"fewer": asked // 2, "more": asked + 2}.get(kind or "", asked)

    root = faker.resolve(schema)
    props = root.get("properties")
    stated = reading.stated_count(body, [k for k in props or {} if isinstance(k, str)])
    if root.get("type") == "array" or (not isinstance(props, dict) and "items" in root):
        items = root.get("items", {})
        records = [faker.value(items, f"[{i}]", "item") for i in range(count(root))]
        return record_faults(records, fault)

    result: JSONDict = {}
    arrays: list[str] = []
    for key, sub in (props or {}).items():
        node = faker.resolve(sub)
        if node.get("type") == "array" and "prefixItems" not in node:
            items = node.get("items", {})
            result[key] = [faker.value(items, f"{key}[{i}]", key, 1) for i in range(count(node))]
            arrays.append(key)
        else:
            result[key] = faker.value(sub, key, key, 1)
    if arrays and kind in ("mutate", "duplicate"):
        target = "records" if "records" in arrays else arrays[0]
        for key in arrays if kind == "duplicate" else [target]:
            result[key] = record_faults(result[key], fault)
    return result


def batch_items(
    faker: SchemaFaker,
    batch: reading.Batch,
    body: JSONDict,
    omission: Omission,
    override: JSONDict,
) -> list[JSONDict] | None:
    """The items answering a text batch (``{index, text}``, one per JSON object or array
    quoted in the prompt, leaving out what ``omission()`` says) or an extraction (``{index,
    record}``, one per quoted string, each record taking the values of ``override``);
    ``None`` when the prompt quotes no input."""
    if batch.kind == "texts":
        entries = reading.inputs(body, _is_fields)
        if not entries:
            return None
        prefs, omit = reading.preferences(body), omission()
        return [{"index": i, "text": write_text(fields, prefs, omit)} for i, fields in entries]
    texts = reading.inputs(body, lambda value: isinstance(value, str))
    if not texts or batch.record is None:
        return None
    records = []
    for i, text in texts:
        record = fill_record(faker, batch.record, "", read_phrases(text))
        if isinstance(record, dict):
            record.update(json.loads(json.dumps(override)))
        records.append({"index": i, "record": record})
    return records


def plain_text(body: JSONDict, omission: Omission) -> str:
    """The answer to a request asking for neither JSON nor a tool call: a text written from
    the last JSON object or array quoted at the end of a line of the last user message that
    has one (preferences aside, leaving out what ``omission()`` says), else ``"ok"``."""
    found = reading.inputs(body, _is_fields)
    if not found:
        return "ok"
    return write_text(found[-1][1], reading.preferences(body), omission())


# --------------------------------------------------------------------------------------------
# The chat.completion object
# --------------------------------------------------------------------------------------------


def completion(
    rec: RecordedRequest,
    body: JSONDict,
    output: reading.Output,
    payload: str,
    kind: str | None,
    *,
    deployment: str | None,
    round_up: bool,
    deep_levels: int,
    usage: bool,
) -> tuple[JSONDict, int, int]:
    """The ``chat.completion`` answering ``rec`` (whose checked ``body`` asks for ``output``)
    with ``payload``, as fault ``kind`` breaks it, and its prompt and completion tokens."""
    finish = _FINISH.get(output.mode, "stop")
    payload, cut = _broken(payload, kind, rec.headers, output.schema is not None, deep_levels)
    allowed = output_limit(body)
    if allowed is not None and tokens(len(payload), round_up) > allowed:
        # A model stops at the output limit, wherever it is in its answer.
        payload, cut = payload[: allowed * 4], True
    if cut:
        finish = "length"

    digest = hashlib.sha256(rec.raw_body).hexdigest()
    message, produced = _message(output, payload, kind, digest)
    if kind == "refusal":
        finish = "stop"
    choices: list[JSONDict] = [
        {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    ]
    if kind == "empty_choices":
        choices = []

    # A model reads the output's schema (or the function definitions) as prompt too.
    prompt_tokens = tokens(prompt_chars(body, output.definition), round_up)
    completion_tokens = tokens(len(produced), round_up)
    response: JSONDict = {
        "id": f"chatcmpl-{digest[:29]}",
        "object": "chat.completion",
        "created": _CREATED,
        "model": body.get("model") or deployment or "fake-llm",
        "choices": choices,
    }
    if usage:
        response["usage"] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    return response, prompt_tokens, completion_tokens


def _broken(
    payload: str, kind: str | None, headers: Mapping[str, str], structured: bool, levels: int
) -> tuple[str, bool]:
    """``payload`` as fault ``kind`` leaves it, and whether it was cut short."""
    if kind == "echo_key" and structured:
        payload = _echoed(payload, _key_of(headers))
    elif kind == "deep_content":
        payload = '{"records": ' + "[" * levels + "]" * levels + "}"
    if kind == "malformed":
        return payload[:-7] + "}{oops", False
    if kind == "truncated":
        return payload[: int(len(payload) * 0.6)], True
    if kind == "chatty":
        return f"Here is the JSON you asked for:\n```json\n{payload}\n```\nEnjoy!", False
    return payload, False


def _message(
    output: reading.Output, payload: str, kind: str | None, digest: str
) -> tuple[JSONDict, str]:
    """The assistant message carrying ``payload`` the way ``output`` asks (a refusal instead
    for that fault), and the text the model produced."""
    message: JSONDict = {"role": "assistant", "content": None, "refusal": None}
    if kind == "refusal":
        message["refusal"] = _REFUSAL_TEXT
        return message, _REFUSAL_TEXT
    if output.mode == "tools":
        message["tool_calls"] = [
            {
                "id": f"call_{digest[:24]}",
                "type": "function",
                "function": {"name": output.name, "arguments": payload},
            }
        ]
    elif output.mode == "functions":
        message["function_call"] = {"name": output.name, "arguments": payload}
    else:
        message["content"] = payload
    return message, payload


def _key_of(headers: Mapping[str, str]) -> str:
    """The API key a request carried (``Authorization: Bearer ...`` or ``api-key``)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    bearer = lowered.get("authorization", "")
    return bearer.split(" ", 1)[1] if " " in bearer else lowered.get("api-key", bearer)


def _echoed(payload: str, key: str) -> str:
    """``payload`` (a JSON object holding an array of records) with the first string field
    of every record set to ``key``, and every ``/`` escaped as JSON's ``\\/``."""
    data = json.loads(payload)
    arrays = [value for value in data.values() if isinstance(value, list)]
    for record in arrays[0] if arrays else []:
        if isinstance(record, dict):
            first = next((k for k, v in record.items() if isinstance(v, str)), None)
            if first is not None:
                record[first] = key
    return json.dumps(data).replace("/", "\\/")
