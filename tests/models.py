"""Models shared by the tests (importable because conftest puts tests/ on sys.path)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class MedicalBilling(BaseModel):
    patient_id: int
    patient_name: str
    diagnosis_code: str
    procedure_code: str
    total_charge: float
    insurance_claim_amount: float


EXAMPLES: list[object] = [
    "Patient ID: 123456, Patient Name: John Doe, Diagnosis Code: J20.9, Procedure Code: 99203, "
    "Total Charge: $500, Insurance Claim Amount: $350",
    MedicalBilling(
        patient_id=789012,
        patient_name="Johnson Smith",
        diagnosis_code="M54.5",
        procedure_code="99213",
        total_charge=150,
        insurance_claim_amount=120,
    ),
    {
        "patient_id": 345678,
        "patient_name": "Emily Stone",
        "diagnosis_code": "E11.9",
        "procedure_code": "99214",
        "total_charge": 300,
        "insurance_claim_amount": 250,
    },
]


class Priority(str, enum.Enum):
    LOW = "low"
    HIGH = "high"


class Address(BaseModel):
    street: str
    city: str = Field(max_length=40)


class Ticket(BaseModel):
    """A customer support ticket."""

    ticket_id: int = Field(ge=1, description="Unique ticket number")
    title: str = Field(max_length=30)
    priority: Priority
    channel: Literal["email", "phone", "chat"]
    assignee: str | None
    tags: list[str]
    opened_on: dt.date
    address: Address
    history: list[Address]
    score: float = Field(ge=0, le=10)

    @field_validator("title")
    @classmethod
    def title_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be blank")
        return value


class Strict(BaseModel):
    """A model whose validator rejects names starting with X (for re-ask tests)."""

    patient_id: int
    patient_name: str

    @field_validator("patient_name")
    @classmethod
    def no_x(cls, value: str) -> str:
        if value.startswith("X"):
            raise ValueError("names starting with X are not allowed")
        return value
