"""What to generate: the model, how many, the seed examples and the steering text."""

from __future__ import annotations

import enum
import hashlib
import inspect
import json
import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from .errors import SynthConfigError, UnsupportedModelError

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

    @property
    def model_name(self) -> str:
        return self.model.__name__

    def key(self) -> str:
        """A stable hash of everything that shapes the requests (not the model's identity)."""
        payload = {
            "model": self.model_name,
            "schema": self.model.model_json_schema(),
            "n": self.n,
            "examples": list(self.examples),
            "subject": self.subject,
            "extra": self.extra,
            "seed": self.seed,
            "unique": list(self.unique),
        }
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
) -> SynthSpec:
    """Check every argument and normalise the examples; errors name the argument and the fix."""
    model_cls = check_model(model)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SynthConfigError(f"n must be a positive integer (the number of records), got {n!r}")
    if max_n is not None and n > max_n:
        raise SynthConfigError(
            f"n={n} is above the limit of {max_n} records per dataset; split it, or raise the "
            f"limit with max_n={n} (or --synth-max-n / ini synth_max_n)"
        )
    if subject is not None and not isinstance(subject, str):
        raise SynthConfigError(f"subject must be a string, got {subject!r}")
    if extra is not None and not isinstance(extra, str):
        raise SynthConfigError(f"extra must be a string, got {extra!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SynthConfigError(f"seed must be an integer, got {seed!r}")
    return SynthSpec(
        model=model_cls,
        n=n,
        examples=normalise_examples(model_cls, examples),
        subject=subject.strip() if subject else default_subject(model_cls),
        extra=extra.strip() if extra else None,
        seed=seed,
        unique=_check_unique(model_cls, unique, n),
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
        out.append(validated.model_dump(mode="json"))
    return tuple(out)


def _check_unique(
    model: type[BaseModel], unique: str | Sequence[str] | None, n: int
) -> tuple[str, ...]:
    if unique is None:
        return ()
    names = (unique,) if isinstance(unique, str) else tuple(unique)
    for name in names:
        if not isinstance(name, str) or name not in model.model_fields:
            raise SynthConfigError(
                f"unique={unique!r}: {name!r} is not a field of {model.__name__}; "
                f"fields: {', '.join(model.model_fields)}"
            )
        choices = _choice_count(model.model_fields[name].annotation)
        if choices is not None and n > choices:
            raise SynthConfigError(
                f"unique={name!r} asks for {n} different values, but {model.__name__}.{name} "
                f"has only {choices} possible value(s); lower n or drop it from unique"
            )
    return names


def _choice_count(annotation: object) -> int | None:
    """How many values a bool, Literal or Enum field can take (None: unbounded)."""
    if annotation is bool:
        return 2
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return len(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return len(typing.get_args(annotation))
    return None


def format_validation_error(exc: ValidationError, indent: str = "  ") -> str:
    """One line per pydantic error: ``field.path: message (got value)``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(record)"
        if err["type"] == "missing":
            lines.append(f"{indent}{loc}: {err['msg']}")
            continue
        got = json.dumps(err.get("input"), default=str)
        if len(got) > 80:
            got = got[:77] + "..."
        lines.append(f"{indent}{loc}: {err['msg']} (got {got})")
    return "\n".join(lines)
