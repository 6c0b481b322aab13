"""Texts written from field values, text datasets, and the extraction round trip.

The tested successor of LangChain's ``create_data_generation_chain`` and
``DatasetGenerator`` (write a text that uses given values) and of ``PydanticOutputParser``
/ ``create_extraction_chain_pydantic`` (read a record back out of a text)::

    text = generate_text({"actor": "Tom Hanks", "movies": ["Forrest Gump", "Green Mile"]},
                         {"style": "gossip", "minimum_length": 200})
    texts = generate_dataset([{"actor": "Tom Hanks"}, {"actor": "Tom Hardy"}])
    actor = extract(texts[0].text, Actor)
    report = round_trip(actors)  # a text per record, read back, compared field by field
    assert report.accuracy >= 0.95, report

**Fields** are a list (``["blue", "yellow"]``), a dict (``{"actor": "Tom Hanks", "movies":
[...]}``), a list of dicts, or a pydantic model instance (its ``model_dump(mode="json")``),
holding JSON values: strings, numbers, booleans, null, lists and dicts.

**Fidelity.** Every text must mention every leaf value of its fields, however deeply
nested: each string must occur in the text as whole words (``Tom`` is not found in
``Tomato``) and each number as a number, ignoring case, whitespace and number format
(``1,000`` = ``1000`` = ``1000.0``; ``$500`` contains ``500``; ``3.50`` = ``3.5``).
Booleans and nulls are not checked (prose states them in words) and dict keys are names,
not values. A text that misses values is re-asked, naming them, within the retry budget
(``max_retries``); :func:`missing_values` is the check itself.

**Preferences** are one dict for every text. Keys are matched ignoring case, spaces and
hyphens (``"Minimum Length"`` is ``minimum_length``):

=================================================  ====================  ===============
key                                                meaning               how
=================================================  ====================  ===============
``minimum_length``, ``min_length``,               at least N            **enforced**
``minimal_length``                                 characters
``maximum_length``, ``max_length``,               at most N             **enforced**
``maximal_length``                                 characters
``min_words``, ``minimum_words``                   at least N words      **enforced**
``max_words``, ``maximum_words``                   at most N words       **enforced**
anything else: ``style``, ``tone``, ``language``,  passed to the prompt  advisory
``audience``, ...
=================================================  ====================  ===============

An enforced preference is checked like fidelity (a text outside the bounds is re-asked,
saying by how much) and its value must be an integer (>= 0 for a minimum, >= 1 for a
maximum, the minimum not above the maximum), otherwise :class:`SynthConfigError` names the
key. Characters are counted on the stripped text; words are whitespace-separated.

**Requests.** :func:`generate_text` sends plain-text requests: at most ``1 +
max_retries``. :func:`generate_dataset` splits the ``N`` entries into ``ceil(N /
batch_size)`` batches (default batch size: up to 10 texts, fewer when long texts would not
fit in 60% of ``max_tokens``) and sends them concurrently, at most ``concurrency`` in
flight. Each batch is one structured request plus at most ``max_retries`` re-asks for the
texts still owed, so a dataset costs exactly ``ceil(N / batch_size)`` requests when every
text passes. A batch that still fails is given one more round, one text per request (small
local models manage a single text where a batch defeats them), so a dataset never costs more
than ``(ceil(N / batch_size) + N) * (1 + max_retries)`` requests.
:func:`extract_many` batches the same way (default: up to 10 records per request, fewer for
large schemas) but has no one-per-request round: at most ``ceil(N / batch_size) * (1 +
max_retries)`` requests. :func:`extract` is one batch of one. :func:`round_trip` costs one
:func:`generate_dataset` plus one :func:`extract_many` per record class. Under
``structured="auto"`` an endpoint that rejects a structured-output mode costs one rejected
request per mode, once per endpoint and process; the SDK's own HTTP retries are not counted.

**Usage.** :func:`generate_dataset` and :func:`extract_many` return a :class:`Dataset` (with
``.usage``); the report of :func:`round_trip` has ``.usage``; every function also accepts
``usage=Usage()`` and adds what the call cost to it, even when the call fails (a
:class:`SynthGenerationError` carries ``.usage`` as well).

**Prompt format.** Requests carry their inputs as one-line JSON after fixed markers, at the
start of a line of the last user message, so any OpenAI-compatible endpoint (and the test
suite's loopback server) can read them:

* ``Fields (JSON): {...}``: the fields of the single text of :func:`generate_text`;
* ``Fields (JSON) #<i>: {...}``: entry ``i`` (1-based position in the whole collection) of
  a text batch, answered as ``{"texts": [{"index": i, "text": "..."}]}``;
* ``Text (JSON) #<i>: "..."``: text ``i`` of an extraction batch (a JSON string), answered
  as ``{"records": [{"index": i, "record": {...}}]}``;
* ``Preferences (JSON): {...}``: the preferences, when given (first request only).

A follow-up request repeats, in its own last user message, the lines of just the entries
or texts still owed.

**Replay.** Like record datasets, every call's result is kept in the dataset store (the
cassette's ``datasets:`` section, or the cache without a cassette): the texts and records
as the model answered them. A replay checks them again (fidelity, preferences, the
record model) and returns them without a request; anything that no longer fits replays
the recorded exchanges instead.

The package: :mod:`.calls` (the functions above, each run through the dataset store),
:mod:`.fidelity` (the checks), :mod:`.prompts`, :mod:`.jobs` (texts and extraction on the
one batch loop of :mod:`pytest_synthdata.batching`), :mod:`.report`.
"""

from __future__ import annotations

from .calls import (
    CallKeywords,
    TextRecord,
    aextract,
    aextract_many,
    agenerate_dataset,
    agenerate_text,
    around_trip,
    extract,
    extract_many,
    generate_dataset,
    generate_text,
    round_trip,
)
from .fidelity import FLOAT_TOLERANCE, Fields, missing_values, normalise, same
from .report import Mismatch, RoundTripReport

__all__ = [
    "FLOAT_TOLERANCE",
    "CallKeywords",
    "Fields",
    "Mismatch",
    "RoundTripReport",
    "TextRecord",
    "aextract",
    "aextract_many",
    "agenerate_dataset",
    "agenerate_text",
    "around_trip",
    "extract",
    "extract_many",
    "generate_dataset",
    "generate_text",
    "missing_values",
    "normalise",
    "round_trip",
    "same",
]
