"""Field values chosen by code: the samplers of ``sample=``.

A sampled field's value for record ``i`` is drawn from the dataset's seed, the field's name and
``i`` alone (each draw has its own :class:`random.Random`, never the global one), so a dataset
is a stable prefix when ``n`` grows and a replay draws the very same values. The model is
given each record's sampled values and writes the other fields to fit them.

::

    from pytest_synthdata import samplers

    sample = {
        "patient_id": samplers.sequence(start=100000),
        "diagnosis_code": samplers.choice(["J20.9", "M54.5", "E11.9"], weights=[2, 1, 1]),
        "total_charge": samplers.uniform(50, 5000),
        "patient_name": samplers.faker("name", locale="ja_JP"),  # pytest-synthdata[faker]
        "plan": samplers.values(["basic", "plus", "premium"]),
    }

Every sampler has a JSON description (:meth:`Sampler.describe`) that goes into the dataset's
key: changing a sampler starts the dataset afresh. :func:`check_samplers` checks them against
the model before any request.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticSerializationError

from .errors import SynthConfigError, did_you_mean, surface
from .jsonform import json_form

__all__ = [
    "Sampler",
    "check_samplers",
    "choice",
    "draw",
    "faker",
    "field_adapter",
    "rng_for",
    "sequence",
    "uniform",
    "values",
]

FAKER_EXTRA = "pip install 'pytest-synthdata[faker]'"
_CHECKED_DRAWS = 50  # records whose values check_samplers validates (all of them for unique)


def rng_for(seed: int | None, *parts: object) -> random.Random:
    """A generator of its own for one draw: the same ``seed`` and ``parts`` give the same
    numbers on every machine and Python version (a SHA-256 of them seeds it)."""
    text = json.dumps([seed, *parts], default=str, separators=(",", ":"))
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def _jsonable(value: object, what: str) -> Any:
    try:
        out = json_form(value)  # a set in a stable order: the same key and prompt every run
        json.dumps(out, allow_nan=False)
    except (PydanticSerializationError, TypeError, ValueError):
        raise SynthConfigError(
            f"{what}: {value!r} cannot be written as JSON (the form a record is sent and "
            "stored in); use str, int, float, bool, None, or lists and dicts of them"
        ) from None
    return out


class Sampler:
    """Draws one field's value for a record from (seed, field, index). Equal when their
    descriptions are (so a spec holding samplers can be compared and hashed)."""

    kind = "sampler"

    def describe(self) -> dict[str, Any]:
        """A stable, JSON-able description (part of the dataset's key)."""
        return {"sampler": self.kind, **self._params()}

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def draw(self, seed: int | None, field: str, index: int) -> Any:
        """The value (in its JSON form) of ``field`` for record ``index``."""
        raise NotImplementedError

    def check(self, model: type[BaseModel], field: str, n: int) -> None:
        """Raise :class:`SynthConfigError` when no valid value can come out (beyond the
        values :func:`check_samplers` validates)."""

    def bind(self, model: type[BaseModel], field: str) -> Sampler:
        """This sampler as used for ``field`` (the same one unless the field's type says
        more, e.g. a float field makes ``uniform(50, 5000)`` give floats)."""
        return self

    def limit(self) -> int | None:
        """How many records it can give distinct values to (``None``: unbounded)."""
        return None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items() if v is not None)
        return f"samplers.{self.kind}({params})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sampler) and self.describe() == other.describe()

    def __hash__(self) -> int:
        return hash(json.dumps(self.describe(), sort_keys=True, default=str))


class _Sequence(Sampler):
    kind = "sequence"

    def __init__(self, start: int, step: int) -> None:
        for name, value in (("start", start), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SynthConfigError(f"samplers.sequence: {name} must be an int, got {value!r}")
        if step == 0:
            raise SynthConfigError("samplers.sequence: step must not be 0 (values would repeat)")
        self.start, self.step = start, step

    def _params(self) -> dict[str, Any]:
        return {"start": self.start, "step": self.step}

    def draw(self, seed: int | None, field: str, index: int) -> Any:
        return self.start + self.step * index

    def check(self, model: type[BaseModel], field: str, n: int) -> None:
        what = f"sample[{field!r}]: {self!r}"
        _validate(model, field, self.start, f"{what} starts at {self.start}, which")
        last = self.draw(None, field, n - 1)
        _validate(model, field, last, f"{what} reaches {last} at record {n - 1}, which")


def sequence(start: int = 1, step: int = 1) -> Sampler:
    """``start``, ``start + step``, ... by record index: distinct, so ``unique=`` holds."""
    return _Sequence(start, step)


class _Choice(Sampler):
    kind = "choice"

    def __init__(self, options: Sequence[object], weights: Sequence[float] | None) -> None:
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence) or not options:
            raise SynthConfigError(
                f"samplers.choice needs a non-empty list of options, got {options!r}"
            )
        self.options = [_jsonable(o, f"samplers.choice option {i}") for i, o in enumerate(options)]
        self.weights: list[float] | None = None
        if weights is not None:
            self.weights = _weights(weights, len(self.options))

    def _params(self) -> dict[str, Any]:
        return {"options": self.options, "weights": self.weights}

    def draw(self, seed: int | None, field: str, index: int) -> Any:
        rng = rng_for(seed, "sample", field, index)
        return rng.choices(self.options, weights=self.weights)[0]

    def check(self, model: type[BaseModel], field: str, n: int) -> None:
        for i, option in enumerate(self.options):
            if self.weights is None or self.weights[i] > 0:
                _validate(model, field, option, f"{self!r}: option {option!r}")

    def limit(self) -> int | None:
        live = [w for w in self.weights or [1.0] * len(self.options) if w > 0]
        return len(live)


def choice(options: Sequence[object], *, weights: Sequence[float] | None = None) -> Sampler:
    """One of ``options`` per record, drawn with ``weights`` (equal by default)."""
    return _Choice(options, weights)


def _weights(weights: Sequence[float], count: int) -> list[float]:
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise SynthConfigError(f"samplers.choice: weights must be a list, got {weights!r}")
    if len(weights) != count:
        raise SynthConfigError(
            f"samplers.choice: {len(weights)} weights for {count} options; give one per option"
        )
    out: list[float] = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise SynthConfigError(
                f"samplers.choice: weights must be finite numbers >= 0, got {w!r}"
            )
        out.append(w)
    if not any(out):
        raise SynthConfigError("samplers.choice: at least one weight must be above 0")
    return out


class _Uniform(Sampler):
    kind = "uniform"

    def __init__(self, low: float, high: float, decimals: int | None) -> None:
        for name, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SynthConfigError(f"samplers.uniform: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise SynthConfigError(f"samplers.uniform: {name} must be finite, got {value!r}")
        if low > high:
            raise SynthConfigError(f"samplers.uniform: low={low} is above high={high}")
        if decimals is not None and (
            isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0
        ):
            raise SynthConfigError(
                f"samplers.uniform: decimals must be an int >= 0, got {decimals!r}"
            )
        self.low, self.high, self.decimals = low, high, decimals

    @property
    def integers(self) -> bool:
        """Whole numbers when both bounds are ints and no ``decimals`` is asked for."""
        return self.decimals is None and isinstance(self.low, int) and isinstance(self.high, int)

    def _params(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "decimals": self.decimals}

    def draw(self, seed: int | None, field: str, index: int) -> Any:
        rng = rng_for(seed, "sample", field, index)
        if self.integers:
            return rng.randint(int(self.low), int(self.high))
        value = round(
            rng.uniform(self.low, self.high), 2 if self.decimals is None else self.decimals
        )
        return min(max(value, self.low), self.high)  # rounding never leaves [low, high]

    def bind(self, model: type[BaseModel], field: str) -> Sampler:
        annotation = model.model_fields[field].annotation
        if self.integers and (annotation is float or annotation == float | None):
            return _Uniform(self.low, self.high, 2)
        return self

    def check(self, model: type[BaseModel], field: str, n: int) -> None:
        for end in (self.low, self.high):
            _validate(model, field, end, f"{self!r}: the range end {end!r}")

    def limit(self) -> int | None:
        return int(self.high) - int(self.low) + 1 if self.integers else None


def uniform(low: float, high: float, *, decimals: int | None = None) -> Sampler:
    """A number in ``[low, high]``: an int when both are ints, else a float rounded to
    ``decimals`` (2 by default). Both ends must be valid values of the field."""
    return _Uniform(low, high, decimals)


class _Faker(Sampler):
    kind = "faker"

    def __init__(self, provider: str, locale: str | None, kwargs: dict[str, Any]) -> None:
        if not isinstance(provider, str) or not provider.isidentifier():
            raise SynthConfigError(
                f"samplers.faker: provider must be the name of a Faker method such as 'name', "
                f"got {provider!r}"
            )
        if locale is not None and not isinstance(locale, str):
            raise SynthConfigError(f"samplers.faker: locale must be a string, got {locale!r}")
        self.provider, self.locale = provider, locale
        self.kwargs = _jsonable(kwargs, f"samplers.faker({provider!r}) arguments")
        self._fake = _make_faker(locale)
        if not callable(getattr(self._fake, provider, None)):
            known = [name for name in dir(self._fake) if not name.startswith("_")]
            raise SynthConfigError(
                f"samplers.faker: Faker has no provider {provider!r}"
                f"{did_you_mean(provider, known)}; see https://faker.readthedocs.io/"
            )

    def _params(self) -> dict[str, Any]:
        return {"provider": self.provider, "locale": self.locale, "kwargs": self.kwargs}

    def draw(self, seed: int | None, field: str, index: int) -> Any:
        rng = rng_for(seed, "sample", field, index)
        self._fake.seed_instance(rng.getrandbits(64))
        try:
            value = getattr(self._fake, self.provider)(**self.kwargs)
        except (TypeError, AttributeError, ValueError) as exc:
            raise SynthConfigError(f"{self!r} failed: {exc}") from None
        return _jsonable(value, repr(self))


def _make_faker(locale: str | None) -> Any:
    try:
        from faker import Faker
    except ImportError:
        raise SynthConfigError(
            f"samplers.faker needs the Faker package, an optional extra: {FAKER_EXTRA}"
        ) from None
    try:
        return Faker(locale) if locale else Faker()
    except AttributeError:
        raise SynthConfigError(
            f"samplers.faker: Faker has no locale {locale!r}; e.g. 'en_US', 'ja_JP', 'fr_FR'"
        ) from None


def faker(provider: str, *, locale: str | None = None, **kwargs: Any) -> Sampler:
    """A value of any Faker provider (``"name"``, ``"city"``, ``"date_of_birth"``, ...) with
    its keyword arguments, in ``locale``. Needs ``pytest-synthdata[faker]``."""
    return _Faker(provider, locale, kwargs)


class _Values(Sampler):
    kind = "values"

    def __init__(self, items: Sequence[object], cycle: bool) -> None:
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
            raise SynthConfigError(f"samplers.values needs a non-empty list, got {items!r}")
        self.items = [_jsonable(v, f"samplers.values item {i}") for i, v in enumerate(items)]
        self.cycle = bool(cycle)

    def _params(self) -> dict[str, Any]:
        return {"items": self.items, "cycle": self.cycle}

    def draw(self, seed: int | None, field: str, index: int) -> Any:
        return self.items[index % len(self.items)]

    def check(self, model: type[BaseModel], field: str, n: int) -> None:
        if n > len(self.items) and not self.cycle:
            raise SynthConfigError(
                f"sample[{field!r}]: samplers.values has {len(self.items)} value(s) for n={n} "
                "records; give at least n values"
                + (
                    ""
                    if surface() == "command"
                    else ", or pass cycle=True to start again at the first"
                )
            )
        for item in self.items[:n]:
            _validate(model, field, item, f"sample[{field!r}]: samplers.values item {item!r}")

    def limit(self) -> int | None:
        return len({json.dumps(v, sort_keys=True) for v in self.items})


def values(items: Sequence[object], *, cycle: bool = False) -> Sampler:
    """``items`` in order, one per record (``cycle=True``: start again after the last)."""
    return _Values(items, cycle)


# --------------------------------------------------------------------------- checks


def field_adapter(model: type[BaseModel], field: str) -> TypeAdapter[Any]:
    """Validates one value of ``field`` alone: its type and constraints (the model's own
    validators run when the whole record is validated)."""
    info: FieldInfo = model.model_fields[field]
    annotated: Any = Annotated
    args = (info.annotation, *info.metadata)
    form: Any = annotated[args] if info.metadata else info.annotation
    return TypeAdapter(form)


def _validate(model: type[BaseModel], field: str, value: object, what: str) -> None:
    try:
        field_adapter(model, field).validate_json(json.dumps(value))
    except ValidationError as exc:
        why = "; ".join(err["msg"] for err in exc.errors(include_url=False))
        raise SynthConfigError(
            f"{what} is not a valid value of {model.__name__}.{field} ({why}); "
            "change the sampler to give only valid values"
        ) from None


def draw(samplers: Mapping[str, Sampler], seed: int | None, index: int) -> dict[str, Any]:
    """Every sampled field's value for record ``index`` (JSON forms), by field name."""
    return {field: sampler.draw(seed, field, index) for field, sampler in samplers.items()}


def check_samplers(
    model: type[BaseModel],
    sample: object,
    *,
    n: int = 1,
    seed: int | None = None,
    unique: Sequence[str] = (),
) -> dict[str, Sampler]:
    """``sample=`` checked before any request: a dict of the model's fields to samplers that
    can only give valid values (each sampler's own check, and the values of the first records
    validated by the field); on a ``unique`` field, ``n`` distinct values."""
    if sample is None:
        return {}
    if not isinstance(sample, Mapping):
        raise SynthConfigError(
            f"sample must be a dict of field names to samplers, e.g. "
            f"{{'id': samplers.sequence()}}, got {type(sample).__name__}"
        )
    fields = model.model_fields
    out: dict[str, Sampler] = {}
    for field, sampler in sample.items():
        if not isinstance(field, str) or field not in fields:
            raise SynthConfigError(
                f"sample: {field!r} is not a field of {model.__name__}"
                f"{did_you_mean(str(field), fields)}; fields: {', '.join(fields)}"
            )
        if not isinstance(sampler, Sampler):
            raise SynthConfigError(
                f"sample[{field!r}] must be a sampler from pytest_synthdata.samplers "
                f"(sequence, choice, uniform, faker, values), got {sampler!r}"
            )
        sampler = sampler.bind(model, field)
        sampler.check(model, field, n)
        count = n if field in unique else min(n, _CHECKED_DRAWS)
        drawn = [sampler.draw(seed, field, i) for i in range(count)]
        for i, value in enumerate(drawn):
            _validate(
                model,
                field,
                value,
                f"sample[{field!r}]: {sampler!r} for record {i} gave {value!r}, which",
            )
        if field in unique:
            _check_distinct(field, sampler, drawn, n)
        out[field] = sampler
    return out


def _check_distinct(field: str, sampler: Sampler, drawn: list[Any], n: int) -> None:
    first: dict[str, int] = {}
    for i, value in enumerate(drawn):
        key = json.dumps(value, sort_keys=True)
        if key in first:
            most = sampler.limit()
            room = f" (it has {most} distinct value(s))" if most is not None else ""
            raise SynthConfigError(
                f"unique={field!r}, but {sampler!r}{room} gives records {first[key]} and {i} "
                f"the same value {value!r}; use samplers.sequence() for a unique field, or "
                f"drop {field!r} from unique (n={n})"
            )
        first[key] = i
