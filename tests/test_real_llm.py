"""Against a server and a model nobody here wrote: llama-cpp-python with SmolLM2-135M.

Prepared by ``.ci/setup-real-llm``. Without it these tests are skipped, unless
``SYNTHDATA_REQUIRE_REAL_LLM=1`` (set by ``.ci/run``) turns the skip into a failure.
The model is tiny, so the content is poor; what is checked is that the product gets valid
records out of it without special settings.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import enum
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Optional

import openai
import pytest
from models import EXAMPLES, MedicalBilling
from pydantic import BaseModel, Field

from pytest_synthdata import generate

# One worker runs them all (``-n 2`` with the ``--dist=loadgroup`` of pyproject.toml), so one
# llama.cpp server serves them, and it does not compete with a second one for the CPU.
pytestmark = [
    pytest.mark.real_llm,
    pytest.mark.xdist_group("real_llm"),
    pytest.mark.usefixtures("fresh_endpoints"),
]

CACHE = Path(
    os.environ.get("SYNTHDATA_CI_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-synthdata-ci"
)
GGUF = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _missing() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama-cpp-python is not installed; run .ci/setup-real-llm"
    if not GGUF.is_file():
        return f"{GGUF} is missing; run .ci/setup-real-llm"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LlamaServer:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(GGUF),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "4096",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/models", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("llama_cpp.server did not become ready within 120 s")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL: the server ignores SIGTERM while it is generating."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def llama() -> Iterator[LlamaServer]:
    reason = _missing()
    if reason:
        if os.environ.get("SYNTHDATA_REQUIRE_REAL_LLM") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    server = LlamaServer().start()
    try:
        yield server
    finally:
        server.stop()


SLOW = 300.0
"""The deadline of one try: a 135M model on a CPU shared with another job can need minutes
(what these tests check is what the model's answers converge to, not how fast they come)."""


def client(server: LlamaServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="sk-local-not-checked", timeout=300)


def test_auto_mode_gets_exactly_five_valid_records(llama: LlamaServer) -> None:
    with pytest.warns(UserWarning, match="does not support structured mode 'json_schema'"):
        bills = generate(MedicalBilling, n=5, examples=EXAMPLES, client=client(llama), timeout=SLOW)
    assert len(bills) == 5
    assert all(isinstance(b, MedicalBilling) for b in bills)
    assert len({b.model_dump_json() for b in bills}) == 5


@pytest.mark.parametrize("mode", ["json_object", "tools"])
def test_each_supported_mode_set_explicitly(llama: LlamaServer, mode: str) -> None:
    bills = generate(
        MedicalBilling, n=3, examples=EXAMPLES, client=client(llama), timeout=SLOW, structured=mode
    )
    assert len(bills) == 3
    assert all(isinstance(b, MedicalBilling) for b in bills)


def test_json_schema_set_explicitly_is_a_clear_error(llama: LlamaServer) -> None:
    from pytest_synthdata import SynthAPIError

    with pytest.raises(SynthAPIError, match="try another structured mode"):
        generate(
            MedicalBilling,
            n=2,
            client=client(llama),
            timeout=SLOW,
            structured="json_schema",
            http_retries=0,
        )


def test_pytester_records_then_replays_with_the_server_stopped(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _missing():
        pytest.skip(str(_missing()))
    pytester.makepyfile(
        test_real="""
        import json, pathlib
        import pytest
        from pydantic import BaseModel

        class Customer(BaseModel):
            customer_id: int
            full_name: str
            city: str

        @pytest.mark.synth(Customer, n=3, extra="customers of a bakery")
        def test_customers(synth_data):
            assert len(synth_data) == 3
            out = pathlib.Path(__file__).parent / "out.json"
            out.write_text(json.dumps([c.model_dump() for c in synth_data]))
        """
    )
    server = LlamaServer().start()
    try:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-local-not-checked")
        first = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--synth-timeout=300")
        first.assert_outcomes(passed=1)
    finally:
        server.stop()
    recorded = (pytester.path / "out.json").read_text()
    assert (pytester.path / "cassettes" / "test_real" / "test_customers.synth.yaml").is_file()
    monkeypatch.delenv("OPENAI_API_KEY")
    (pytester.path / "out.json").unlink()
    second = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--synth-record-mode=none")
    second.assert_outcomes(passed=1)
    assert (pytester.path / "out.json").read_text() == recorded


def test_a_model_too_slow_for_the_deadline_still_gets_exactly_n(llama: LlamaServer) -> None:
    # SmolLM2 on a CPU writes a few records a second at best: a request of 12 runs past a
    # 20 s deadline, and llama-cpp-python keeps writing it after the client gave up (one
    # answer at a time). The run asks again in smaller requests, one at a time at first.
    bills = generate(
        MedicalBilling, n=12, examples=EXAMPLES, client=client(llama), timeout=20.0, seed=5
    )
    assert len(bills) == 12
    assert len({b.model_dump_json() for b in bills}) == 12


class Actor(BaseModel):
    name: str
    films: list[str]


def test_text_dataset_mentions_every_value(llama: LlamaServer) -> None:
    from pytest_synthdata import generate_dataset, missing_values

    records = generate_dataset(
        [["blue"], {"animal": "cat"}], client=client(llama), timeout=SLOW, seed=0
    )
    assert len(records) == 2
    for record in records:
        assert missing_values(record.text, record.fields) == []


def test_extract_returns_a_valid_model(llama: LlamaServer) -> None:
    from pytest_synthdata import extract

    actor = extract(
        "Tom Hanks starred in Forrest Gump and in The Green Mile.",
        Actor,
        client=client(llama),
        timeout=SLOW,
    )
    assert isinstance(actor, Actor)
    assert isinstance(actor.films, list)


# Models harder than the examples: nested objects and lists, dates, enums, literals, optional
# fields and bounds, each with several seeds. A tiny model gets many records wrong; the
# fresh top-ups and the per-dataset budget must still converge on exactly n valid ones.


class Priority(str, enum.Enum):
    low = "low"
    normal = "normal"
    urgent = "urgent"


class TicketCustomer(BaseModel):
    email: str
    tier: Optional[str] = None  # noqa: UP045 (the annotation style users write)


class SupportTicket(BaseModel):
    ticket_id: int = Field(ge=1)
    subject: str
    priority: Priority
    customer: TicketCustomer


class LineItem(BaseModel):
    sku: str
    quantity: int = Field(ge=1)


class Order(BaseModel):
    order_id: int
    status: Literal["placed", "shipped", "delivered"]
    placed_on: datetime.date
    items: list[LineItem] = Field(min_length=1)


@pytest.mark.parametrize("seed", range(6))
def test_nested_enum_and_optional_model_converges(llama: LlamaServer, seed: int) -> None:
    tickets = generate(
        SupportTicket, n=4, client=client(llama), timeout=SLOW, seed=seed, structured="json_object"
    )
    assert len(tickets) == 4
    assert all(isinstance(t.customer, TicketCustomer) for t in tickets)
    assert len({t.model_dump_json() for t in tickets}) == 4


@pytest.mark.parametrize("seed", range(4))
def test_dates_literals_and_nested_lists_converge(llama: LlamaServer, seed: int) -> None:
    orders = generate(
        Order, n=3, client=client(llama), timeout=SLOW, seed=seed, structured="json_object"
    )
    assert len(orders) == 3
    assert all(order.items and isinstance(order.placed_on, datetime.date) for order in orders)


class Color(str, enum.Enum):
    red = "red"
    green = "green"
    blue = "blue"


class Product(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-[0-9]{4}$")
    price: decimal.Decimal = Field(ge=0, le=1000)
    colors: list[Color] = Field(min_length=1, max_length=3)
    released: datetime.datetime
    discontinued: Optional[bool] = None  # noqa: UP045


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.filterwarnings("ignore:.*does not support structured mode:UserWarning")
def test_decimals_patterns_and_bounded_enum_lists_converge_in_auto_mode(
    llama: LlamaServer, seed: int
) -> None:
    products = generate(Product, n=4, client=client(llama), timeout=SLOW, seed=seed)
    assert len(products) == 4
    assert all(isinstance(p.price, decimal.Decimal) and 0 <= p.price <= 1000 for p in products)
    assert len({p.model_dump_json() for p in products}) == 4


class Branch(BaseModel):
    street: str
    zip_code: str = Field(min_length=5, max_length=5)


class Store(BaseModel):
    store_code: str = Field(min_length=4, max_length=4)
    city: str = Field(max_length=12)
    zip_code: str = Field(min_length=5, max_length=5)
    branches: list[Branch] = Field(min_length=1, max_length=2)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.filterwarnings("ignore:.*does not support structured mode:UserWarning")
def test_string_lengths_converge_in_auto_mode(llama: LlamaServer, seed: int) -> None:
    stores = generate(Store, n=4, client=client(llama), timeout=SLOW, seed=seed)
    assert len(stores) == 4
    assert all(len(s.store_code) == 4 and len(s.zip_code) == 5 for s in stores)
