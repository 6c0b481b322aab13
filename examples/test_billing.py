"""Medical billing: the LangChain synthetic-data example, as a pytest suite."""

from __future__ import annotations

import pytest
from domain import BILLING_EXAMPLES, MedicalBilling


def payable(bill: MedicalBilling) -> float:
    """The code under test: an insurer never pays more than was charged."""
    return min(bill.insurance_claim_amount, bill.total_charge)


@pytest.mark.synth(
    MedicalBilling,
    n=10,
    examples=BILLING_EXAMPLES,
    extra="the name must be chosen at random; make it something unusual",
    unique="patient_id",
)
def test_payable_never_exceeds_the_charge(synth_data: list[MedicalBilling]) -> None:
    assert len(synth_data) == 10
    assert len({bill.patient_id for bill in synth_data}) == 10
    assert all(0 <= payable(bill) <= bill.total_charge for bill in synth_data)


@pytest.mark.synth(MedicalBilling, n=5, examples=BILLING_EXAMPLES, each=True)
def test_each_bill_has_a_six_digit_patient(synth_record: MedicalBilling) -> None:
    assert 100000 <= synth_record.patient_id <= 999999


def test_large_bills_on_demand(synth_factory) -> None:  # type: ignore[no-untyped-def]
    bills = synth_factory(
        MedicalBilling, n=4, examples=BILLING_EXAMPLES, extra="every total_charge above $1000"
    )
    assert len(bills) == 4
    assert all(isinstance(bill, MedicalBilling) for bill in bills)
