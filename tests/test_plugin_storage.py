"""Record/replay, the cache, secrets and xdist, through real pytest runs (pytester)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fakellm import FakeLLM
from stored import only_datasets, strip_datasets

FAKE_KEY = "sk-test-fake-key-0123456789"

SUITE = """
import json
import pathlib

import pytest
from pydantic import BaseModel


class MedicalBilling(BaseModel):
    patient_id: int
    patient_name: str
    total_charge: float


OUT = pathlib.Path(__file__).parent / "out"


def dump(tag, records):
    OUT.mkdir(exist_ok=True)
    (OUT / f"{tag}.json").write_text(json.dumps([r.model_dump(mode="json") for r in records]))


@pytest.mark.synth(MedicalBilling, n=N_BILLS, extra="EXTRA")
def test_bills(synth_data):
    dump("bills", synth_data)


@pytest.mark.synth(MedicalBilling, n=3, each=True)
def test_each(synth_record):
    dump(f"each-{synth_record.patient_id}", [synth_record])


def test_factory(synth_factory):
    dump("factory", synth_factory(MedicalBilling, n=2, extra="factory"))
"""

OFFLINE_CONFTEST = """
import socket

_saved = {}


def _refuse(*args, **kwargs):
    raise AssertionError("a socket was opened during an offline replay")


def pytest_configure(config):
    _saved["connect"] = socket.socket.connect
    _saved["create_connection"] = socket.create_connection
    socket.socket.connect = _refuse
    socket.create_connection = _refuse


def pytest_unconfigure(config):
    socket.socket.connect = _saved["connect"]
    socket.create_connection = _saved["create_connection"]
"""


def write_suite(pytester: pytest.Pytester, n: int = 4, extra: str = "unusual names") -> None:
    pytester.makepyfile(test_billing=SUITE.replace("N_BILLS", str(n)).replace("EXTRA", extra))


def out(pytester: pytest.Pytester, tag: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads((pytester.path / "out" / f"{tag}.json").read_text())
    return rows


def cassette(pytester: pytest.Pytester, name: str) -> Path:
    return pytester.path / "cassettes" / "test_billing" / f"{name}.synth.yaml"


def go_offline(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(OFFLINE_CONFTEST)
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there


@pytest.mark.parametrize("source", ["datasets", "exchanges"])
def test_record_then_replay_offline_with_no_key(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    write_suite(pytester)
    first = pytester.runpytest("--synth-no-cache")
    first.assert_outcomes(passed=5)
    recorded = llm_env.request_count
    assert recorded == 3
    for name in ("test_bills", "test_each", "test_factory"):
        assert cassette(pytester, name).is_file()
        if source == "exchanges":
            strip_datasets(cassette(pytester, name))
    bills = out(pytester, "bills")

    go_offline(pytester, monkeypatch)
    (pytester.path / "out" / "bills.json").unlink()
    second = pytester.runpytest("--synth-record-mode=none", "--synth-no-cache")
    second.assert_outcomes(passed=5)
    second.stdout.fnmatch_lines(["*3 replayed from cassettes, 0 recorded*"])
    assert out(pytester, "bills") == bills
    assert llm_env.request_count == recorded


def test_changed_spec_fails_under_none_with_the_rerecord_command(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    write_suite(pytester, extra="only Scandinavian names")
    go_offline(pytester, monkeypatch)
    result = pytester.runpytest("--synth-record-mode=none")
    result.assert_outcomes(passed=4, errors=1)
    text = result.stdout.str()
    assert "test_billing.py::test_bills" in text
    assert "cassettes/test_billing/test_bills.synth.yaml has no recording" in text
    assert "only Scandinavian names" in text
    assert "pytest test_billing.py::test_bills --synth-record-mode=rewrite" in text
    assert "Traceback" not in text


def test_once_records_a_new_test_and_refuses_a_changed_one(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    write_suite(pytester, extra="only Scandinavian names")
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*record mode 'once' does not allow recording*"])
    write_suite(pytester, n=5)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_bills.synth.yaml holds 4 MedicalBilling record(s) and 5 are asked for; "
            "record mode 'once' does not record the 1 missing one(s)*--synth-update*"
        ]
    )


def test_rewrite_rerecords_and_new_episodes_keeps_the_old(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    write_suite(pytester, n=5)
    pytester.runpytest("--synth-record-mode=new_episodes").assert_outcomes(passed=5)
    path = cassette(pytester, "test_bills")
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 2
    pytester.runpytest("--synth-record-mode=rewrite").assert_outcomes(passed=5)
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 1
    before = llm_env.request_count
    pytester.runpytest("--synth-record-mode=none").assert_outcomes(passed=5)
    assert llm_env.request_count == before


def test_no_file_written_contains_the_key(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    write_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    assert llm_env.chat_requests[0].headers["authorization"] == f"Bearer {FAKE_KEY}"
    written = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".yaml" for p in written)
    assert any("synthdata" in str(p) for p in written)  # the cache is there too
    for path in written:
        assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_corrupt_cassette_fails_its_test_with_the_file_and_rewrite(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    path = cassette(pytester, "test_bills")
    path.write_text("interactions: [unterminated")
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*cassette {path} is not what pytest-synthdata recorded*"
            "test_billing.py::test_bills --synth-record-mode=rewrite*"
        ]
    )


def test_cache_serves_a_deleted_cassette_and_it_is_complete_again(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    calls = llm_env.request_count
    bills = out(pytester, "bills")
    cassette(pytester, "test_bills").unlink()
    result = pytester.runpytest()
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*2 replayed from cassettes, 0 recorded, 1 from the cache*"])
    assert llm_env.request_count == calls
    go_offline(pytester, monkeypatch)
    result = pytester.runpytest("--synth-record-mode=none", "--synth-no-cache")
    result.assert_outcomes(passed=5)
    assert out(pytester, "bills") == bills


def test_clear_cache_and_cache_dir(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    write_suite(pytester)
    pytester.runpytest("--synth-cache-dir=mycache").assert_outcomes(passed=5)
    assert (pytester.path / "mycache" / "cache.db").is_file()
    for path in (pytester.path / "cassettes").rglob("*.yaml"):
        path.unlink()
    calls = llm_env.request_count
    pytester.runpytest("--synth-cache-dir=mycache", "--synth-clear-cache").assert_outcomes(passed=5)
    assert llm_env.request_count == 2 * calls


def test_invalid_record_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsynth_record_mode = sometimes\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*synth_record_mode*must be one of none, once*"])


def test_named_session_fixture_records_into_its_own_cassette(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makeconftest(
        """
        from pydantic import BaseModel
        from pytest_synthdata import synth_fixture

        class Customer(BaseModel):
            customer_id: int
            full_name: str

        customers = synth_fixture(Customer, n=3, scope="session")
        """
    )
    pytester.makepyfile(
        test_a="def test_first(customers):\n    assert len(customers) == 3\n",
        test_b="def test_second(customers):\n    assert len(customers) == 3\n",
    )
    pytester.runpytest().assert_outcomes(passed=2)
    own = pytester.path / "cassettes" / "conftest" / "customers.synth.yaml"
    assert own.is_file()
    assert sorted(p.name for p in pytester.path.rglob("*.synth.yaml")) == ["customers.synth.yaml"]
    assert llm_env.request_count == 1
    pytester.runpytest("test_b.py", "--synth-record-mode=none").assert_outcomes(passed=1)


def test_stale_cassettes_are_listed_after_a_full_run_only(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    orphan = cassette(pytester, "test_gone")
    orphan.write_text(cassette(pytester, "test_factory").read_text())
    full = pytester.runpytest()
    full.stdout.fnmatch_lines(["*1 cassette file(s) that no collected test*", f"*{orphan}"])
    partial = pytester.runpytest("-k", "bills")
    assert "no collected test" not in partial.stdout.str()


def test_xdist_generates_a_shared_dataset_once(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    pytester.makeconftest(
        """
        from pydantic import BaseModel
        from pytest_synthdata import synth_fixture

        class Customer(BaseModel):
            customer_id: int
            full_name: str

        customers = synth_fixture(Customer, n=4, scope="session")
        """
    )
    tests = "\n".join(
        f"def test_{i}(customers):\n    assert len(customers) == 4\n" for i in range(8)
    )
    pytester.makepyfile(test_a=tests, test_b=tests)
    write_suite(pytester)
    result = pytester.runpytest_subprocess("-n", "2", "--synth-no-cache")
    result.assert_outcomes(passed=21)
    # customers once, bills once, each once, factory once: never twice across workers
    assert llm_env.request_count == 4
    summary = result.stdout.str()
    assert "4 recorded" in summary
    # the session fixture counts once, whichever worker made it, as do its requests
    result.stdout.fnmatch_lines(["4 dataset(s), *", "sent to the endpoint: 4 request(s),*"])
    cassettes = list(pytester.path.rglob("*.synth.yaml"))
    assert len(cassettes) == 4
    for path in cassettes:
        assert yaml.safe_load(path.read_text())["interactions"]
    again = pytester.runpytest_subprocess("-n", "2", "--synth-no-cache")
    again.assert_outcomes(passed=21)
    again.stdout.fnmatch_lines(
        [
            "4 dataset(s), *",
            "sent to the endpoint: nothing",
            "replayed (not paid for): 4 request(s), *",
            "*0 recorded*",
        ]
    )


EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("source", ["committed", "datasets only"])
def test_example_suite_passes_offline(tmp_path: Path, source: str) -> None:
    examples = EXAMPLES_DIR
    if source == "datasets only":
        # The committed datasets must be current: with the exchanges gone, a dataset that
        # no longer matches its spec has nothing to fall back on.
        examples = tmp_path / "examples"
        shutil.copytree(EXAMPLES_DIR, examples, ignore=shutil.ignore_patterns("__pycache__"))
        for path in examples.rglob("*.synth.yaml"):
            only_datasets(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHDATA_"))}
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(examples),
            "-p",
            "no:cacheprovider",
            "--synth-record-mode=none",
            "--synth-no-cache",
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replayed from cassettes, 0 recorded" in result.stdout


def test_stress_four_workers_forty_tests_three_datasets_with_faults(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    llm_env.retry_after_ms = 0
    llm_env.enqueue("429", "malformed", "500", "truncated", "fewer", "reset", "duplicate")
    pytester.makeconftest(
        """
        from pydantic import BaseModel
        from pytest_synthdata import synth_fixture

        class Customer(BaseModel):
            customer_id: int
            full_name: str

        class Order(BaseModel):
            order_id: int
            total: float

        class Product(BaseModel):
            sku: str
            price: float

        customers = synth_fixture(Customer, n=12, unique="customer_id", scope="session")
        orders = synth_fixture(Order, n=9, scope="session")
        products = synth_fixture(Product, n=15, scope="session")
        """
    )
    for module in range(4):
        tests = "\n".join(
            f"def test_{i}(customers, orders, products):\n"
            "    assert (len(customers), len(orders), len(products)) == (12, 9, 15)\n"
            for i in range(10)
        )
        pytester.makepyfile(**{f"test_stress_{module}": tests})
    result = pytester.runpytest_subprocess("-n", "4", "--synth-max-retries=6")
    result.assert_outcomes(passed=40)
    # each dataset generated once: one successful answer per batch, whatever the faults
    answered = [r for r in llm_env.chat_requests if r.status == 200]
    models = {r.body["response_format"]["json_schema"]["name"] for r in answered}
    assert models == {"Customer", "Order", "Product"}
    first_batches = [
        r
        for r in llm_env.chat_requests
        if r.status == 200 and "This is attempt" not in r.body["messages"][-1]["content"]
    ]
    assert len(first_batches) == 3
    # the summary counts what happened: the answers recorded, the failures retried
    failed = [r for r in llm_env.chat_requests if r.status in (429, 500)]
    result.stdout.fnmatch_lines(
        [
            "3 dataset(s), 36 record(s)",
            f"*{len(answered)} recorded, 0 from the cache, 0 live without a cassette, "
            f"{len(failed)} failed and retried",
        ]
    )
    cassettes = sorted(pytester.path.rglob("*.synth.yaml"))
    assert [p.name for p in cassettes] == [
        "customers.synth.yaml",
        "orders.synth.yaml",
        "products.synth.yaml",
    ]
    for path in cassettes:
        interactions = yaml.safe_load(path.read_text())["interactions"]
        assert all(i["response"]["status"]["code"] == 200 for i in interactions)
    # the cache holds only valid answers, and the run replays offline from the cassettes
    from pytest_synthdata.storage.cache import ResponseCache

    cache = ResponseCache(pytester.path / ".pytest_cache" / "d" / "synthdata")
    keys = list(cache._cache.iterkeys())
    assert keys
    for key in keys:
        hit = cache.get(key)
        assert hit is not None and hit["status"] == 200
        content = json.loads(hit["body"])["choices"][0]["message"]["content"]
        assert json.loads(content)["records"]
    cache.close()
    again = pytester.runpytest_subprocess(
        "-n", "4", "--synth-max-retries=6", "--synth-record-mode=none", "--synth-no-cache"
    )
    again.assert_outcomes(passed=40)
