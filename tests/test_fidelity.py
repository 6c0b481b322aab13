"""A replay hands a test exactly what the recording run handed it, for any pydantic model.

The stored dataset keeps what the model answered and validates it once on every run, so
transforming validators, secrets, aliases, computed fields, serializers, decimals, aware
datetimes, enums, nested models and excluded fields all come back as they were recorded,
whether the replay reads the stored datasets or the recorded exchanges.
"""

from __future__ import annotations

import json

import pytest
from fakellm import FakeLLM
from stored import only_datasets, strip_datasets

SUITE = '''
import datetime
import decimal
import enum
import json
import pathlib
from typing import Annotated

import pytest
from pydantic import (
    AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, SecretBytes, SecretStr,
    WrapValidator, computed_field, field_serializer, field_validator, model_validator,
)

OUT = pathlib.Path(__file__).parent / "out"


class Tier(str, enum.Enum):
    gold = "gold"
    silver = "silver"


class Address(BaseModel):
    city: str

    @field_validator("city")
    @classmethod
    def checked(cls, v: str) -> str:
        return v + " (checked)"


class Account(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    account_id: int = Field(alias="accountId")
    owner: Annotated[str, BeforeValidator(lambda v: str(v).strip() + "!")]
    nickname: Annotated[str, WrapValidator(lambda v, handler: handler(v) + " (wrapped)")]
    note: str
    password: SecretStr
    token: SecretBytes
    balance: decimal.Decimal
    opened: AwareDatetime
    tier: Tier
    address: Address
    internal: str = Field(default="hidden", exclude=True)

    @field_validator("note")
    @classmethod
    def verified(cls, v: str) -> str:
        return v + " (verified)"

    @model_validator(mode="after")
    def stamped(self) -> "Account":
        self.note += " [model]"
        return self

    @computed_field
    @property
    def label(self) -> str:
        return f"{self.account_id}-{self.tier.value}"

    @field_serializer("balance")
    def money(self, v: decimal.Decimal) -> str:
        return f"{v:.2f}"


class Badge(BaseModel):
    code: str = Field(alias="Code")

    @model_validator(mode="before")
    @classmethod
    def upper(cls, data):
        return {**data, "Code": str(data.get("Code", "")).upper() + "-B"}


def fingerprint(value):
    """Everything a test can observe of a value, secrets included."""
    if isinstance(value, BaseModel):
        return [
            type(value).__name__,
            {name: fingerprint(item) for name, item in sorted(vars(value).items())},
            {name: fingerprint(getattr(value, name)) for name in type(value).model_computed_fields},
            sorted(value.model_fields_set),
            value.model_dump_json(),
        ]
    if isinstance(value, (SecretStr, SecretBytes)):
        return ["secret", repr(value.get_secret_value())]
    if isinstance(value, list):
        return [fingerprint(item) for item in value]
    return [type(value).__name__, repr(value)]


def save(tag, value):
    OUT.mkdir(exist_ok=True)
    (OUT / f"{tag}.json").write_text(json.dumps(fingerprint(value)))


@pytest.mark.synth(Account, n=4, name="accounts")
@pytest.mark.synth(Badge, n=3, name="badges")
def test_models(accounts, badges):
    save("accounts", accounts)
    save("badges", badges)


def test_extraction(synth_extract):
    account = synth_extract("Account 4411 of Ann Lee, gold tier, opened 2020-01-02.", Account)
    save("extracted", [account])
'''


@pytest.mark.parametrize("source", ["datasets", "exchanges"])
def test_replay_hands_the_test_what_recording_handed_it(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    pytester.makepyfile(test_accounts=SUITE)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=2)
    recorded = {
        tag: json.loads((pytester.path / "out" / f"{tag}.json").read_text())
        for tag in ("accounts", "badges", "extracted")
    }
    # the validators ran once on what the model said, as they do on every run
    first = recorded["accounts"][0][1]
    assert first["note"][1].endswith(" (verified) [model]'")
    assert first["nickname"][1].endswith(" (wrapped)'")
    assert first["address"][1]["city"][1].endswith(" (checked)'")
    assert first["password"][0] == "secret" and "*" not in first["password"][1]
    assert recorded["badges"][0][1]["code"][1].endswith("-B'")
    for path in (pytester.path / "cassettes" / "test_accounts").iterdir():
        (only_datasets if source == "datasets" else strip_datasets)(path)
    monkeypatch.delenv("OPENAI_API_KEY")
    calls = llm_env.request_count
    (pytester.path / "out").rename(pytester.path / "first")
    pytester.runpytest("--synth-no-cache", "--synth-record-mode=none").assert_outcomes(passed=2)
    for tag, value in recorded.items():
        assert json.loads((pytester.path / "out" / f"{tag}.json").read_text()) == value, tag
    assert llm_env.request_count == calls
