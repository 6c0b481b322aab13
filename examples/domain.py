"""The record types of the example suite."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field


class MedicalBilling(BaseModel):
    """A line of a medical bill sent to an insurer."""

    patient_id: int = Field(ge=100000, le=999999, description="six-digit patient number")
    patient_name: str
    diagnosis_code: str = Field(description="ICD-10 code such as J20.9")
    procedure_code: str = Field(description="CPT code such as 99213")
    total_charge: float = Field(gt=0)
    insurance_claim_amount: float = Field(ge=0)


BILLING_EXAMPLES: list[object] = [
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


class SupportTicket(BaseModel):
    """A customer support ticket from a SaaS help desk."""

    ticket_id: int = Field(ge=1)
    customer_email: str
    subject: str = Field(max_length=80)
    priority: Literal["low", "normal", "high", "urgent"]
    opened_on: dt.date
    tags: list[str]
