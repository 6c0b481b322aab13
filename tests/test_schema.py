"""pydantic model -> strict JSON schema for OpenAI structured outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, Generic, Literal, Optional, TypeVar

import pytest
from models import MedicalBilling
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator

from pytest_synthdata.errors import SynthConfigError, UnsupportedModelError
from pytest_synthdata.fieldlines import field_lines
from pytest_synthdata.schema import (
    ENFORCED_FORMATS,
    enforced_keywords,
    record_schema,
    relaxed_schema,
    schema_name,
    wrapper_schema,
)

# --------------------------------------------------------------------------- models


class Status(str, Enum):
    ACTIVE = "active"
    DISCHARGED = "discharged"


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str = Field(description="City name")
    zip_code: str = Field(min_length=5, max_length=5)


class Patient(BaseModel):
    """A hospital patient."""

    patient_id: int = Field(ge=0, description="The patient's id.")
    code: str = Field(max_length=10)
    email: str
    status: Status
    kind: Literal["inpatient", "outpatient"]
    age: Optional[int] = None  # noqa: UP045 - this spelling is what is tested
    nickname: str | None = None
    visits: int = 3
    address: Address = Field(description="Home address")
    previous_addresses: list[Address]
    tags: list[str]
    birth_date: date
    admitted_at: datetime
    weight_kg: float = Field(gt=0, le=500, description="Body weight")

    @field_validator("email")
    @classmethod
    def _must_have_at(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("not an email address")
        return value


BILLING = MedicalBilling(
    patient_id=1,
    patient_name="Jane Doe",
    diagnosis_code="E11.9",
    procedure_code="99213",
    total_charge=150.0,
    insurance_claim_amount=120.0,
)

#: A record written by hand to match the wire schema of Patient.
PATIENT_RECORD: dict[str, Any] = {
    "patient_id": 42,
    "code": "AB-123",
    "email": "jane.doe@example.org",
    "status": "active",
    "kind": "inpatient",
    "age": None,
    "nickname": "Jay",
    "visits": 1,
    "address": {"street": "1 Main St", "city": "Springfield", "zip_code": "12345"},
    "previous_addresses": [
        {"street": "2 Elm St", "city": "Shelbyville", "zip_code": "54321"},
    ],
    "tags": ["diabetes", "follow-up"],
    "birth_date": "1980-02-29",
    "admitted_at": "2024-01-31T13:45:00",
    "weight_kg": 72.5,
}


# --------------------------------------------------------------------------- helpers

BANNED = {
    "title",
    "default",
    "examples",
    "minLength",
    "maxLength",
    "multipleOf",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "discriminator",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentEncoding",
    "contentMediaType",
    "propertyNames",
    "oneOf",
    "allOf",
}
ALLOWED = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "anyOf",
    "$ref",
    "$defs",
    "description",
    # validation keywords endpoints enforce (relaxed_schema moves them into descriptions)
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
}


def assert_strict(root: dict[str, Any]) -> None:
    """Fail unless ``root`` follows the strict structured-outputs rules everywhere."""
    defs = root.get("$defs", {})
    assert root.get("type") == "object"

    def walk(node: Any, path: str) -> None:
        assert isinstance(node, dict), path
        if "$ref" in node:
            assert set(node) == {"$ref"}, f"{path}: $ref with siblings {sorted(node)}"
            ref = node["$ref"]
            assert ref.startswith("#/$defs/"), path
            assert ref[len("#/$defs/") :] in defs, f"{path}: dangling {ref}"
            return
        assert not BANNED & set(node), f"{path}: banned {sorted(BANNED & set(node))}"
        assert set(node) <= ALLOWED, f"{path}: unexpected {sorted(set(node) - ALLOWED)}"
        assert any(k in node for k in ("type", "enum", "const", "anyOf")), path
        assert node.get("format", "date") in ENFORCED_FORMATS, path
        if path != "$":
            assert "$defs" not in node, f"{path}: $defs below the root"
        if node.get("type") == "object" or "properties" in node:
            assert node["additionalProperties"] is False, path
            assert node["required"] == list(node["properties"]), path
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")
        for i, branch in enumerate(node.get("anyOf", [])):
            walk(branch, f"{path}|{i}")
        if "description" in node:
            assert isinstance(node["description"], str), path

    walk(root, "$")
    for name, sub in defs.items():
        walk(sub, f"$defs.{name}")
    json.dumps(root)  # JSON-serialisable


def conforms(value: Any, node: dict[str, Any], defs: dict[str, Any]) -> bool:
    """A tiny validator for the strict subset (enough to check hand-written records)."""
    if "$ref" in node:
        return conforms(value, defs[node["$ref"][len("#/$defs/") :]], defs)
    if "anyOf" in node:
        return any(conforms(value, branch, defs) for branch in node["anyOf"])
    if "enum" in node and value not in node["enum"]:
        return False
    if "const" in node and value != node["const"]:
        return False
    kind = node.get("type")
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind is not None and not checks[kind](value):
        return False
    if kind == "array":
        return all(conforms(item, node["items"], defs) for item in value)
    if kind == "object":
        if set(value) != set(node["required"]):
            return False
        return all(conforms(value[k], sub, defs) for k, sub in node["properties"].items())
    return True


SUFFIX = re.compile(r"\(constraints: ([^)]*)\)$")


def constraints_of(node: dict[str, Any]) -> dict[str, str]:
    """Parse the ``(constraints: k=v, ...)`` suffix of a node's description."""
    match = SUFFIX.search(node.get("description", ""))
    if match is None:
        return {}
    return dict(part.split("=", 1) for part in match.group(1).split(", "))


# --------------------------------------------------------------------------- record_schema


def test_medical_billing_record_schema_exact() -> None:
    assert record_schema(MedicalBilling) == {
        "type": "object",
        "properties": {
            "patient_id": {"type": "integer"},
            "patient_name": {"type": "string"},
            "diagnosis_code": {"type": "string"},
            "procedure_code": {"type": "string"},
            "total_charge": {"type": "number"},
            "insurance_claim_amount": {"type": "number"},
        },
        "required": [
            "patient_id",
            "patient_name",
            "diagnosis_code",
            "procedure_code",
            "total_charge",
            "insurance_claim_amount",
        ],
        "additionalProperties": False,
    }


def test_medical_billing_wrapper_schema_exact() -> None:
    schema = wrapper_schema(MedicalBilling)
    assert schema == {
        "type": "object",
        "properties": {"records": {"type": "array", "items": record_schema(MedicalBilling)}},
        "required": ["records"],
        "additionalProperties": False,
    }
    assert "$defs" not in schema
    assert_strict(schema)


@pytest.mark.parametrize("model", [MedicalBilling, Patient, Address])
def test_record_and_wrapper_are_strict(model: type[BaseModel]) -> None:
    assert_strict(record_schema(model))
    assert_strict(wrapper_schema(model))
    assert_strict(wrapper_schema(model, key="rows"))


def test_patient_record_schema_shape() -> None:
    schema = record_schema(Patient)
    props = schema["properties"]
    assert list(props) == list(Patient.model_fields)
    assert schema["required"] == list(Patient.model_fields)  # defaults are required too
    assert schema["description"] == "A hospital patient."
    assert set(schema["$defs"]) == {"Address", "Status"}
    assert schema["$defs"]["Status"] == {"type": "string", "enum": ["active", "discharged"]}
    assert schema["$defs"]["Address"]["description"] == "A postal address."
    # nested models / enums are plain references (the field description is dropped)
    assert props["status"] == {"$ref": "#/$defs/Status"}
    assert props["address"] == {"$ref": "#/$defs/Address"}
    assert props["previous_addresses"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/Address"},
    }
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["kind"] == {"type": "string", "enum": ["inpatient", "outpatient"]}
    # optional fields are nullable, a non-None default is not
    assert props["age"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["nickname"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["visits"] == {"type": "integer"}


def test_enforceable_constraints_stay_in_the_schema() -> None:
    schema = record_schema(Patient)
    props = schema["properties"]
    assert props["patient_id"] == {
        "description": "The patient's id.",
        "type": "integer",
        "minimum": 0,
    }
    assert props["code"] == {"description": "(constraints: maxLength=10)", "type": "string"}
    assert props["birth_date"] == {"type": "string", "format": "date"}
    assert props["admitted_at"] == {"type": "string", "format": "date-time"}
    assert props["weight_kg"] == {
        "description": "Body weight",
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": 500,
    }
    zip_code = schema["$defs"]["Address"]["properties"]["zip_code"]
    assert zip_code["description"] == "(constraints: minLength=5, maxLength=5)"
    assert enforced_keywords(schema) == ["minimum", "exclusiveMinimum", "maximum", "format"]


def test_relaxed_schema_moves_them_into_the_description() -> None:
    strict = record_schema(Patient)
    schema = relaxed_schema(strict)
    assert strict == record_schema(Patient)  # a copy: the strict schema is left alone
    props = schema["properties"]
    assert props["patient_id"] == {
        "description": "The patient's id. (constraints: minimum=0)",
        "type": "integer",
    }
    assert props["code"]["description"] == "(constraints: maxLength=10)"
    assert props["birth_date"] == {"description": "(constraints: format=date)", "type": "string"}
    assert constraints_of(props["admitted_at"]) == {"format": "date-time"}
    assert props["weight_kg"]["description"].startswith("Body weight (constraints: ")
    assert constraints_of(props["weight_kg"]) == {"exclusiveMinimum": "0", "maximum": "500"}
    zip_code = schema["$defs"]["Address"]["properties"]["zip_code"]
    assert zip_code["description"] == "(constraints: minLength=5, maxLength=5)"
    city = schema["$defs"]["Address"]["properties"]["city"]
    assert city == {"description": "City name", "type": "string"}
    assert enforced_keywords(schema) == []
    assert relaxed_schema(schema) == schema


def test_relaxed_suffix_keeps_one_order_and_both_kinds_of_keyword() -> None:
    class Code(BaseModel):
        code: str = Field(max_length=10, pattern=r"^[A-Z], [0-9]+$", description="A code")
        site: str = Field(json_schema_extra={"format": "uri"})
        part: str = Field(pattern=r"[0-9]{3}")  # unanchored: "contains", not a whole string

    strict = record_schema(Code)["properties"]
    assert strict["code"] == {
        "description": "A code (constraints: maxLength=10)",
        "type": "string",
        "pattern": "^[A-Z], [0-9]+$",
    }
    assert strict["site"] == {"description": "(constraints: format=uri)", "type": "string"}
    assert strict["part"] == {"description": "(constraints: pattern=[0-9]{3})", "type": "string"}
    relaxed = relaxed_schema(record_schema(Code))["properties"]
    assert relaxed["code"] == {
        "description": "A code (constraints: maxLength=10, pattern=^[A-Z], [0-9]+$)",
        "type": "string",
    }


def test_fields_named_like_keywords_are_not_keywords() -> None:
    class Named(BaseModel):
        pattern: str
        minimum: int = Field(ge=1)

    schema = wrapper_schema(Named)
    relaxed = relaxed_schema(schema)
    assert list(relaxed["properties"]["records"]["items"]["properties"]) == ["pattern", "minimum"]
    assert relaxed["properties"]["records"]["items"]["properties"]["minimum"] == {
        "description": "(constraints: minimum=1)",
        "type": "integer",
    }
    assert enforced_keywords(schema) == ["minimum"]


def test_naive_datetimes_keep_their_format_in_the_description() -> None:
    from pydantic import AwareDatetime, NaiveDatetime

    class Moments(BaseModel):
        naive: NaiveDatetime
        aware: AwareDatetime
        plain: datetime

    props = record_schema(Moments)["properties"]
    # an endpoint enforcing "date-time" writes an offset, which a naive field rejects
    assert props["naive"] == {"description": "(constraints: format=date-time)", "type": "string"}
    assert props["aware"] == props["plain"] == {"type": "string", "format": "date-time"}
    stamp = "2024-01-01T00:00:00Z"
    with pytest.raises(ValidationError) as info:
        Moments.model_validate({"naive": stamp, "aware": stamp, "plain": stamp})
    assert [error["loc"] for error in info.value.errors()] == [("naive",)]


def test_decimals_are_asked_for_as_bounded_numbers() -> None:
    from decimal import Decimal

    class Price(BaseModel):
        amount: Decimal = Field(ge=0, le=1000, description="In euros.")
        refund: Optional[Decimal] = None  # noqa: UP045

    props = record_schema(Price)["properties"]
    # pydantic's "number or any string" would let a model write "5.9K" past the bounds
    assert props["amount"] == {
        "description": "In euros.",
        "type": "number",
        "minimum": 0.0,
        "maximum": 1000.0,
    }
    assert props["refund"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    record = Price.model_validate_json('{"amount": 12.5, "refund": null}')
    assert record.amount == Decimal("12.5")


def test_constraints_at_every_level() -> None:
    class Deep(BaseModel):
        scores: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1, max_length=3)
        maybe: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
        ids: set[int]
        ratio: float = Field(multiple_of=0.5)

    strict = record_schema(Deep)
    props = strict["properties"]
    assert props["scores"] == {
        "type": "array",
        "minItems": 1,
        "maxItems": 3,
        "items": {"type": "number", "minimum": 0, "maximum": 1},
    }
    assert props["maybe"] == {
        "anyOf": [{"type": "string", "pattern": "^[A-Z]{3}$"}, {"type": "null"}]
    }
    assert props["ids"]["description"] == "(constraints: uniqueItems=true)"
    assert props["ratio"]["description"] == "(constraints: multipleOf=0.5)"
    assert_strict(strict)

    props = relaxed_schema(strict)["properties"]
    assert props["scores"]["description"] == "(constraints: minItems=1, maxItems=3)"
    assert props["scores"]["items"] == {
        "description": "(constraints: minimum=0, maximum=1)",
        "type": "number",
    }
    assert props["maybe"] == {
        "anyOf": [
            {"description": "(constraints: pattern=^[A-Z]{3}$)", "type": "string"},
            {"type": "null"},
        ]
    }
    assert props["ids"]["description"] == "(constraints: uniqueItems=true)"
    assert_strict(relaxed_schema(strict))


def test_banned_metadata_is_dropped() -> None:
    class Meta(BaseModel):
        a: int = Field(default=1, examples=[1, 2], title="Custom", deprecated=True)
        b: str = Field(json_schema_extra={"readOnly": True, "x-custom": "yes"})

    props = record_schema(Meta)["properties"]
    assert props == {"a": {"type": "integer"}, "b": {"type": "string"}}


def test_hand_written_record_matches_wire_schema_and_validates() -> None:
    schema = wrapper_schema(Patient)
    defs = schema["$defs"]
    payload = {"records": [PATIENT_RECORD]}
    assert conforms(payload, schema, defs)
    patient = Patient.model_validate(PATIENT_RECORD)
    assert patient.status is Status.ACTIVE
    assert patient.birth_date == date(1980, 2, 29)
    assert patient.address.city == "Springfield"
    # pydantic still enforces what the schema only describes
    with pytest.raises(ValidationError):
        Patient.model_validate({**PATIENT_RECORD, "patient_id": -1})
    with pytest.raises(ValidationError):
        Patient.model_validate({**PATIENT_RECORD, "email": "nope"})


def test_wrapper_validates_with_jsonschema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = wrapper_schema(Patient)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({"records": [PATIENT_RECORD]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"records": [{**PATIENT_RECORD, "extra": 1}]}, schema)


def test_wrapper_moves_defs_to_the_root() -> None:
    schema = wrapper_schema(Patient, key="patients")
    assert list(schema) == ["type", "properties", "required", "additionalProperties", "$defs"]
    assert schema["required"] == ["patients"]
    items = schema["properties"]["patients"]["items"]
    assert "$defs" not in items
    assert schema["$defs"] == record_schema(Patient)["$defs"]
    assert items == {k: v for k, v in record_schema(Patient).items() if k != "$defs"}


def test_wrapper_key_must_be_a_non_empty_string() -> None:
    with pytest.raises(SynthConfigError, match="non-empty string"):
        wrapper_schema(MedicalBilling, key="")


def test_deterministic() -> None:
    for model in (MedicalBilling, Patient):
        assert json.dumps(record_schema(model)) == json.dumps(record_schema(model))
        assert json.dumps(wrapper_schema(model)) == json.dumps(wrapper_schema(model))
        assert field_lines(model) == field_lines(model)


def test_results_are_independent_copies() -> None:
    first = record_schema(Patient)
    first["properties"]["code"]["description"] = "changed"
    first["$defs"]["Status"]["enum"].append("x")
    assert record_schema(Patient)["properties"]["code"]["description"] != "changed"
    assert record_schema(Patient)["$defs"]["Status"]["enum"] == ["active", "discharged"]


def test_recursive_model_keeps_its_ref() -> None:
    class TreeNode(BaseModel):
        value: int
        children: list[TreeNode] = []

    TreeNode.model_rebuild()
    schema = record_schema(TreeNode)
    assert schema["properties"]["children"] == {
        "type": "array",
        "items": {"$ref": "#/$defs/TreeNode"},
    }
    assert schema["required"] == ["value", "children"]
    assert_strict(schema)
    assert_strict(wrapper_schema(TreeNode))
    TreeNode.model_validate({"value": 1, "children": [{"value": 2, "children": []}]})


def test_discriminated_union_becomes_any_of() -> None:
    class Cat(BaseModel):
        pet_type: Literal["cat"]
        meows: int

    class Dog(BaseModel):
        pet_type: Literal["dog"]
        barks: float

    class Owner(BaseModel):
        pet: Cat | Dog = Field(discriminator="pet_type")

    schema = record_schema(Owner)
    assert schema["properties"]["pet"] == {
        "anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]
    }
    assert_strict(schema)


def test_single_all_of_is_unwrapped() -> None:
    class Inner(BaseModel):
        x: int

    def old_style(s: dict[str, Any]) -> None:
        s["allOf"] = [{"$ref": s.pop("$ref")}]

    class Outer(BaseModel):
        inner: Inner = Field(description="inner one", json_schema_extra=old_style)

    schema = record_schema(Outer)
    assert schema["properties"]["inner"] == {"$ref": "#/$defs/Inner"}
    assert_strict(schema)


def test_extra_allow_model_is_closed() -> None:
    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")
        a: int

    schema = record_schema(Loose)
    assert schema["additionalProperties"] is False
    assert_strict(schema)


def test_aliases_are_the_wire_names() -> None:
    class Aliased(BaseModel):
        patient_id: int = Field(alias="patientId")

    assert list(record_schema(Aliased)["properties"]) == ["patientId"]
    assert field_lines(Aliased) == ["- patientId (integer, required)"]
    Aliased.model_validate({"patientId": 1})


# --------------------------------------------------------------------------- errors


def test_dict_field_is_rejected() -> None:
    class Billing(BaseModel):
        metadata: dict[str, str]

    with pytest.raises(UnsupportedModelError) as info:
        record_schema(Billing)
    message = str(info.value)
    assert message.startswith("Billing.metadata: dict fields cannot be expressed")
    assert "use a list of key/value models instead" in message
    assert isinstance(info.value, SynthConfigError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("annotation", [dict, dict[str, Any], dict[str, int] | None])
def test_any_dict_spelling_is_rejected(annotation: Any) -> None:
    class Holder(BaseModel):
        extra_info: annotation

    with pytest.raises(UnsupportedModelError, match=r"Holder\.extra_info: dict fields"):
        wrapper_schema(Holder)


def test_dict_in_nested_model_names_the_nested_field() -> None:
    class Item(BaseModel):
        attrs: dict[str, int]

    class Order(BaseModel):
        items: list[Item]

    with pytest.raises(UnsupportedModelError, match=r"^Item\.attrs: dict fields"):
        record_schema(Order)


@pytest.mark.parametrize(
    "annotation",
    [Any, Any | None, list, list[Any]],
    ids=["Any", "Any-or-None", "list", "list[Any]"],
)
def test_any_field_is_rejected(annotation: Any) -> None:
    class Loose(BaseModel):
        payload: annotation

    with pytest.raises(UnsupportedModelError, match=r"^Loose\.payload: .*use a concrete type"):
        record_schema(Loose)


def test_callable_field_is_rejected() -> None:
    class WithCallback(BaseModel):
        name: str
        callback: Callable[[int], int]

    with pytest.raises(UnsupportedModelError) as info:
        record_schema(WithCallback)
    message = str(info.value)
    assert message.startswith("WithCallback.callback: ")
    assert "use a JSON-compatible type" in message


def test_arbitrary_class_field_is_rejected() -> None:
    class Opaque:
        pass

    class Holder(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        ok: int
        thing: Opaque

    with pytest.raises(
        UnsupportedModelError, match=r"^Holder\.thing: type Opaque .*JSON-compatible"
    ):
        record_schema(Holder)
    with pytest.raises(UnsupportedModelError, match=r"^Holder\.thing"):
        field_lines(Holder)


def test_callable_in_nested_model_names_both_fields() -> None:
    class Hook(BaseModel):
        run: Callable[[], None]

    class Job(BaseModel):
        hooks: list[Hook]

    with pytest.raises(UnsupportedModelError, match=r"^Job\.hooks \(via Hook\.run\): "):
        record_schema(Job)


def test_tuple_field_is_rejected() -> None:
    class Point(BaseModel):
        xy: tuple[int, int]

    with pytest.raises(UnsupportedModelError, match=r"^Point\.xy: fixed-size tuple"):
        record_schema(Point)


def test_root_model_is_rejected() -> None:
    class Numbers(RootModel[list[int]]):
        pass

    with pytest.raises(UnsupportedModelError, match=r"^Numbers: a record must be a JSON object"):
        record_schema(Numbers)


@pytest.mark.parametrize(
    "value",
    [BILLING, dict, None, "MedicalBilling", int],
    ids=["instance", "dict", "None", "str", "int"],
)
@pytest.mark.parametrize("func", [record_schema, wrapper_schema, field_lines, schema_name])
def test_non_model_input_is_rejected(func: Callable[[Any], Any], value: Any) -> None:
    with pytest.raises(UnsupportedModelError, match="expected a pydantic BaseModel subclass, got"):
        func(value)


# --------------------------------------------------------------------------- field_lines


def test_field_lines_medical_billing() -> None:
    assert field_lines(MedicalBilling) == [
        "- patient_id (integer, required)",
        "- patient_name (string, required)",
        "- diagnosis_code (string, required)",
        "- procedure_code (string, required)",
        "- total_charge (number, required)",
        "- insurance_claim_amount (number, required)",
    ]


def test_field_lines_patient() -> None:
    lines = field_lines(Patient)
    assert len(lines) == len(Patient.model_fields)
    assert lines == [
        "- patient_id (integer, required): The patient's id. Constraints: >= 0.",
        "- code (string, required): Constraints: at most 10 characters.",
        "- email (string, required)",
        "- status (one of: 'active', 'discharged'; required)",
        "- kind (one of: 'inpatient', 'outpatient'; required)",
        "- age (integer or null, optional)",
        "- nickname (string or null, optional)",
        "- visits (integer, optional, default 3)",
        "- address (Address, required): Home address.",
        "- previous_addresses (list of Address, required)",
        "- tags (list of string, required)",
        "- birth_date (date (YYYY-MM-DD), required)",
        "- admitted_at (datetime (YYYY-MM-DDTHH:MM:SS), required)",
        "- weight_kg (number, required): Body weight. Constraints: > 0, <= 500.",
    ]


def test_field_lines_nested_constraints_and_examples() -> None:
    class Deep(BaseModel):
        codes: list[Annotated[str, Field(max_length=3)]] = Field(min_length=1)
        score: Annotated[float, Field(ge=0)] | None = None
        colour: Literal["red"] = Field(examples=["red"])

    assert field_lines(Deep) == [
        "- codes (list of string, required): Constraints: at least 1 item, "
        "each item at most 3 characters.",
        "- score (number or null, optional): Constraints: >= 0.",
        "- colour (one of: 'red', required): Examples: 'red'.",
    ]


# --------------------------------------------------------------------------- schema_name

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
T = TypeVar("T")


def test_schema_name_simple() -> None:
    assert schema_name(MedicalBilling) == "MedicalBilling"
    assert schema_name(Patient) == "Patient"


def test_schema_name_sanitised() -> None:
    from pydantic import create_model

    odd = create_model("Weird Name!/v2", a=(int, ...))
    long = create_model("L" * 100, a=(int, ...))

    class Page(BaseModel, Generic[T]):
        items: list[T]

    for model in (odd, long, Page[int], Page[Address]):
        assert NAME_RE.match(schema_name(model)), schema_name(model)
    assert schema_name(odd) == "Weird_Name_v2"
    assert schema_name(long) == "L" * 64
    assert schema_name(Page[int]) == "Page_int"
