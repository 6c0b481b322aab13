"""What to generate: the model, how many, the seed examples and the steering text."""

from __future__ import annotations

import enum
import hashlib
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .diversity import DEFAULT_NEAR_DUPLICATES, check_near_duplicates
from .errors import SynthConfigError, UnsupportedModelError, option, warn
from .storage.secrets import redact

if TYPE_CHECKING:
    from .coverage import SlotPlan
    from .samplers import Sampler

Example = Union[str, dict[str, Any]]  # noqa: UP007 (a runtime alias on Python 3.10)
"""A normalised seed example: free text, or a dict that validated against the model."""


@dataclass(frozen=True)
class SynthSpec:
    """A validated description of one dataset. Build it with :func:`make_spec`."""

    model: type[BaseModel]
    n: int
    examples: tuple[Example, ...] = ()
    subject: str = ""
    extra: str | None = None
    seed: int | None = None
    unique: tuple[str, ...] = ()
    sample: tuple[tuple[str, Sampler], ...] = ()
    """Fields whose values code draws (``sample=``), in the order given."""
    cover: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    """Coverage axes (``cover=``): name and values, in the order given."""
    edge_cases: float = 0.0
    near_duplicates: float | None = DEFAULT_NEAR_DUPLICATES
    """Similarity from which a record counts as a copy (``None``: off)."""

    @property
    def model_name(self) -> str:
        return self.model.__name__

    @property
    def slotted(self) -> bool:
        """Whether code chooses something per record (sampled values, axes, edge cases):
        then the requests state each record's slot."""
        return bool(self.sample or self.cover or self.edge_cases)

    @cached_property
    def slots(self) -> SlotPlan:
        """The record slots: what code chooses for record ``i`` (``slots.slot(i)``)."""
        from .coverage import SlotPlan

        return SlotPlan(
            self.model,
            seed=self.seed,
            sample=dict(self.sample),
            cover=dict(self.cover),
            edge_cases=self.edge_cases,
            unique=self.unique,
            examples=self.examples,
        )

    def key(self) -> str:
        """A stable hash of everything that shapes the requests (not the model's identity)."""
        payload = {
            "model": self.model_name,
            "schema": _plain_schema(self.model),
            "n": self.n,
            "examples": list(self.examples),
            "subject": self.subject,
            "extra": self.extra,
            "seed": self.seed,
            "unique": list(self.unique),
        }
        # only when given, so the keys of datasets that use none of them stay as they were
        if self.sample:
            payload["sample"] = [[name, s.describe()] for name, s in self.sample]
        if self.cover:
            payload["cover"] = [[name, list(values)] for name, values in self.cover]
        if self.edge_cases:
            payload["edge_cases"] = self.edge_cases
        if self.near_duplicates != DEFAULT_NEAR_DUPLICATES:
            payload["near_duplicates"] = self.near_duplicates
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def make_spec(
    model: object,
    n: object,
    *,
    examples: Iterable[object] | None = None,
    subject: str | None = None,
    extra: str | None = None,
    seed: int | None = None,
    unique: str | Sequence[str] | None = None,
    max_n: int | None = None,
    sample: Mapping[str, Sampler] | None = None,
    cover: Mapping[str, Sequence[Any]] | None = None,
    edge_cases: float | None = None,
    near_duplicates: float | None = DEFAULT_NEAR_DUPLICATES,
) -> SynthSpec:
    """Check every argument and normalise the examples; errors name the argument and the fix.

    ``sample``: field name -> sampler (:mod:`~pytest_synthdata.samplers`); ``cover``: axis
    name -> values; ``edge_cases``: the share of records that are edge cases;
    ``near_duplicates``: the similarity from which a record counts as a copy, ``None``: off.
    """
    model_cls = check_model(model)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SynthConfigError(f"n must be a positive integer (the number of records), got {n!r}")
    if max_n is not None and n > max_n:
        raise SynthConfigError(
            f"n={n} is above the limit of {max_n} records per dataset; split it, or raise the "
            "limit with "
            + option("max_n", n, otherwise=f"max_n={n} (or --synth-max-n / ini synth_max_n)")
        )
    if subject is not None and not isinstance(subject, str):
        raise SynthConfigError(f"subject must be a string, got {subject!r}")
    if extra is not None and not isinstance(extra, str):
        raise SynthConfigError(f"extra must be a string, got {extra!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SynthConfigError(f"seed must be an integer, got {seed!r}")
    if seed is not None and not -(2**63) <= seed < 2**63:
        raise SynthConfigError(
            f"seed must fit in 64 bits (the request's seed is a 64-bit integer), got {seed}"
        )
    from .schema import record_schema

    record_schema(model_cls)  # a model strict mode cannot express fails before any request
    _check_distinct(model_cls, n)
    uniques = _check_unique(model_cls, unique, n, sampled=sample)
    from .coverage import make_plan

    plan = make_plan(
        model_cls, n, seed=seed, sample=sample, cover=cover, edge_cases=edge_cases, unique=uniques
    )
    return SynthSpec(
        model=model_cls,
        n=n,
        examples=sample_examples(normalise_examples(model_cls, examples)),
        subject=subject.strip() if subject else default_subject(model_cls),
        extra=extra.strip() if extra else None,
        seed=seed,
        unique=uniques,
        sample=tuple(plan.sample.items()),
        cover=tuple(plan.axes.items()),
        edge_cases=plan.edge_cases,
        near_duplicates=check_near_duplicates(near_duplicates),
    )


def check_model(model: object) -> type[BaseModel]:
    if not (inspect.isclass(model) and issubclass(model, BaseModel)):
        raise UnsupportedModelError(
            f"the first argument must be a pydantic BaseModel subclass (the record type), "
            f"got {model!r}"
        )
    if model is BaseModel:
        raise UnsupportedModelError("pass your own BaseModel subclass, not BaseModel itself")
    return model


def _check_distinct(model: type[BaseModel], n: int) -> None:
    """Records are never repeated: ``n`` must not exceed the distinct records the model has."""
    most = distinct_records(model)
    if most is None or n <= most:
        return
    name = model.__name__
    counts = [
        f"{field}: {_values(info.annotation, info.metadata, frozenset({model}))}"
        for field, info in model.model_fields.items()
    ]
    shown = ", ".join(counts[:4]) + (", ..." if len(counts) > 4 else "")
    why = f"values per field: {shown}" if counts else "it has no fields"
    raise SynthConfigError(
        f"n={n} asks for {n} distinct {name} records, but {name} has only {most} possible "
        f"record(s) ({why}); records are never repeated, so lower n to at most {most}, or give "
        f"{name} a field that can take more values (a str, a wider int range)"
    )


_MANY = 10**9  # past this, a model's records are not worth counting


def distinct_records(model: type[BaseModel]) -> int | None:
    """The most distinct records ``model`` can have, when its fields only take few values
    (bools, Literals, enums, ints bounded on both sides, nested models of those); ``None``
    when some field can take many more (a str, a float, a list ...)."""
    return _model_values(model, frozenset())


def _model_values(model: type[BaseModel], seen: frozenset[type]) -> int | None:
    if model in seen:
        return None  # a recursive model
    total = 1
    for info in model.model_fields.values():
        count = _values(info.annotation, info.metadata, seen | {model})
        if count is None or total * count > _MANY:
            return None
        total *= count
    return total


def _values(annotation: object, metadata: Sequence[object], seen: frozenset[type]) -> int | None:
    """How many values a field of this type can take (``None``: many)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *extra = typing.get_args(annotation)
        more = [
            m for item in extra for m in (item.metadata if isinstance(item, FieldInfo) else [item])
        ]
        return _values(base, [*metadata, *more], seen)
    if annotation is None or annotation is type(None):
        return 1
    if annotation is bool:
        return 2
    if origin is Literal:
        return len({(type(arg), arg) for arg in typing.get_args(annotation)})
    if origin is Union or origin is types.UnionType:
        counts = [_values(arg, metadata, seen) for arg in typing.get_args(annotation)]
        return None if None in counts else sum(c for c in counts if c is not None)
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return len(annotation)
    if annotation is int:
        return _int_values(metadata)
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return _model_values(annotation, seen)
    return None


def _int_values(metadata: Sequence[object]) -> int | None:
    """How many ints the bounds (``ge``/``gt``/``le``/``lt``) allow; ``None``: unbounded."""
    low = high = None
    for item in metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(item, name, None)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if not math.isfinite(value):
                    continue
                if name in ("ge", "gt"):
                    edge = math.floor(value) + 1 if name == "gt" else math.ceil(value)
                    low = edge if low is None else max(low, edge)
                else:
                    edge = math.ceil(value) - 1 if name == "lt" else math.floor(value)
                    high = edge if high is None else min(high, edge)
    if low is None or high is None:
        return None
    return max(0, high - low + 1)


def default_subject(model: type[BaseModel]) -> str:
    """``MedicalBilling`` -> ``medical billing``, followed by the first docstring line."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|_", " ", model.__name__).lower().strip()
    doc = inspect.getdoc(model)
    if doc and model.__doc__ and doc != inspect.getdoc(BaseModel):
        first = doc.strip().splitlines()[0].strip()
        if first:
            return f"{words}: {first}"
    return words


def normalise_examples(
    model: type[BaseModel], examples: Iterable[object] | None
) -> tuple[Example, ...]:
    from .examples import as_example

    if examples is None:
        return ()
    if isinstance(examples, (str, bytes, dict, BaseModel)) or not isinstance(examples, Iterable):
        raise SynthConfigError(
            "examples must be a list (of model instances, dicts or strings) or a path to a "
            f".json/.jsonl/.csv file, got {type(examples).__name__}: {examples!r:.80}"
        )
    out: list[Example] = []
    for i, item in enumerate(examples):
        if isinstance(item, str):
            text = " ".join(item.split())
            if not text:
                raise SynthConfigError(f"examples[{i}] is an empty string")
            out.append(text)
            continue
        if isinstance(item, BaseModel):
            if not isinstance(item, model):
                raise SynthConfigError(
                    f"examples[{i}] is a {type(item).__name__}, expected a {model.__name__} "
                    f"instance, a dict or a string"
                )
            data: object = item.model_dump(mode="json")
        elif isinstance(item, dict):
            data = item
        else:
            raise SynthConfigError(
                f"examples[{i}] must be a {model.__name__} instance, a dict or a string, "
                f"got {type(item).__name__}"
            )
        try:
            validated = model.model_validate(data)
        except ValidationError as exc:
            raise SynthConfigError(
                f"examples[{i}] does not validate against {model.__name__}; fix the example "
                f"or the model:\n{format_validation_error(exc)}"
            ) from None
        except RecursionError:
            raise SynthConfigError(
                f"examples[{i}] nests too deeply to read; give it the shape of a "
                f"{model.__name__} record"
            ) from None
        bad = _non_finite(validated.model_dump())
        if bad is not None:
            where, value = bad
            raise SynthConfigError(
                f"examples[{i}].{where} is {value}: JSON has no NaN or Infinity, so no model "
                "can answer with it; use a finite number in the example"
            )
        out.append(as_example(validated))  # the schema's fields, numbers as numbers
    return tuple(out)


def _non_finite(data: object) -> tuple[str, object] | None:
    """The path and value of the first NaN or infinity in a dumped record, if any."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop(0)
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}".lstrip("."), v) for key, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        elif (isinstance(value, Decimal) and not value.is_finite()) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            return path, value
    return None


EXAMPLES_BUDGET = 16_000
"""Characters of examples one prompt carries at most; beyond it, a sample is sent."""


def sample_examples(examples: tuple[Example, ...]) -> tuple[Example, ...]:
    """The examples a prompt carries: all of them when they fit :data:`EXAMPLES_BUDGET`,
    else the same sample every time (by a hash of each example, in their own order), with a
    :class:`~pytest_synthdata.errors.SynthDataWarning`."""
    sizes = [len(_text(example)) for example in examples]
    total = sum(sizes)
    if total <= EXAMPLES_BUDGET:
        return examples
    ranked = sorted(
        range(len(examples)),
        key=lambda i: hashlib.sha256(_text(examples[i]).encode()).hexdigest(),
    )
    chosen: set[int] = set()
    used = 0
    for i in ranked:
        if used + sizes[i] <= EXAMPLES_BUDGET:
            chosen.add(i)
            used += sizes[i]
    if not chosen:
        raise SynthConfigError(
            f"examples: each of the {len(examples)} examples is longer than the "
            f"{EXAMPLES_BUDGET} characters a prompt carries (the shortest has {min(sizes)}); "
            "shorten them"
        )
    warn(
        f"examples: {len(examples)} examples ({total} characters) are more than a prompt "
        f"carries ({EXAMPLES_BUDGET} characters); every request uses the same sample of "
        f"{len(chosen)} of them ({used} characters). Pass fewer examples to choose them "
        "yourself."
    )
    return tuple(example for i, example in enumerate(examples) if i in chosen)


def _text(example: Example) -> str:
    return example if isinstance(example, str) else json.dumps(example, ensure_ascii=False)


def _check_unique(
    model: type[BaseModel], unique: str | Sequence[str] | None, n: int, *, sampled: object = None
) -> tuple[str, ...]:
    if unique is None:
        return ()
    if isinstance(unique, str):
        names: tuple[object, ...] = (unique,)
    elif isinstance(unique, Sequence) and unique:
        names = tuple(unique)
    else:
        raise SynthConfigError(
            f"unique must be a field name or a list of field names of {model.__name__}, got "
            f"{unique!r}; e.g. unique={next(iter(model.model_fields), 'id')!r}"
        )
    for name in names:
        if not isinstance(name, str) or name not in model.model_fields:
            raise SynthConfigError(
                f"unique={unique!r}: {name!r} is not a field of {model.__name__}; "
                f"fields: {', '.join(model.model_fields)}"
            )
        info = model.model_fields[name]
        choices = _values(info.annotation, info.metadata, frozenset({model}))
        if isinstance(sampled, Mapping) and name in sampled:
            continue  # the sampler's n values are checked for distinctness
        if choices is not None and n > choices:
            raise SynthConfigError(
                f"unique={name!r} asks for {n} different values, but {model.__name__}.{name} "
                f"has only {choices} possible value(s); lower n or drop it from unique"
            )
    return tuple(str(name) for name in names)


def format_validation_error(exc: ValidationError, indent: str = "  ") -> str:
    """One line per pydantic error: ``field.path: message (got value)``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(record)"
        if err["type"] == "missing":
            lines.append(f"{indent}{loc}: {err['msg']}")
            continue
        got = redact(json.dumps(err.get("input"), default=str))  # masked before it is cut
        if len(got) > 80:
            got = got[:77] + "..."
        lines.append(f"{indent}{loc}: {err['msg']} (got {got})")
    return "\n".join(lines)


def _plain_schema(model: type[BaseModel]) -> dict[str, Any]:
    from .schema import plain_schema

    return plain_schema(model)
