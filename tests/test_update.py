"""Day-2 work, through real pytest runs (pytester) and real cassette files: datasets that
grow and shrink as a stable prefix, and ``--synth-update``, which records only what is
missing, prunes what a run no longer uses and deletes stale cassettes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakellm import FakeLLM
from stored import edit

SUITE = """
import json
import pathlib

import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
    patient_name: str
    total_charge: float


OUT = pathlib.Path(__file__).parent / "out"


def dump(tag, records):
    OUT.mkdir(exist_ok=True)
    (OUT / f"{tag}.json").write_text(json.dumps([r.model_dump(mode="json") for r in records]))


@pytest.mark.synth(Bill, n=N_BILLS, extra="EXTRA", batch_size=BATCH)
def test_bills(synth_data):
    assert len(synth_data) == N_BILLS
    dump("bills", synth_data)


def test_factory(synth_factory):
    dump("factory", synth_factory(Bill, n=2, extra="from the factory"))
"""


def write_suite(
    pytester: pytest.Pytester, n: int = 10, extra: str = "unusual names", batch: int = 20
) -> None:
    source = SUITE.replace("N_BILLS", str(n)).replace("EXTRA", extra)
    pytester.makepyfile(test_billing=source.replace("BATCH", str(batch)))


def out(pytester: pytest.Pytester, tag: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((pytester.path / "out" / f"{tag}.json").read_text())
    return rows


def cassette(pytester: pytest.Pytester, name: str = "test_bills") -> Path:
    return pytester.path / "cassettes" / "test_billing" / f"{name}.synth.yaml"


def content(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def stored_counts(path: Path) -> list[int]:
    """How many records each stored dataset of the cassette holds."""
    return [entry["n"] for entry in content(path).get("datasets", {}).values()]


def prompt(request: Any) -> str:
    return str(request.body["messages"][-1]["content"])


def run(pytester: pytest.Pytester, *args: str, passed: int = 2) -> pytest.RunResult:
    result = pytester.runpytest("--synth-no-cache", *args)
    result.assert_outcomes(passed=passed)
    return result


# --- growing and shrinking --------------------------------------------------------------------


def test_more_records_are_one_request_for_the_missing_ones(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, n=10)
    run(pytester)
    first = out(pytester, "bills")
    before = len(llm_env.chat_requests)

    write_suite(pytester, n=12)
    result = run(pytester, "--synth-update")
    new = llm_env.chat_requests[before:]
    assert len(new) == 1, [prompt(r) for r in new]
    asked = prompt(new[0])
    assert "Return exactly 2 records." in asked
    assert "The dataset already holds 10 records" in asked
    # the new records are asked to differ from the ones already taken
    assert "Values already used by earlier records; do not repeat them:" in asked
    assert all(row["patient_name"] in asked for row in first)
    grown = out(pytester, "bills")
    assert len(grown) == 12 and grown[:10] == first
    assert len({json.dumps(row, sort_keys=True) for row in grown}) == 12
    result.stdout.fnmatch_lines(
        ["*recorded  cassettes/test_billing/test_bills.synth.yaml (Bill: 10 -> 12)*"]
    )
    # one dataset and the two exchanges that made it: nothing stale left behind
    assert stored_counts(cassette(pytester)) == [12]
    assert len(content(cassette(pytester))["interactions"]) == 2

    # and it replays as a whole, offline, with no request
    run(pytester, "--synth-record-mode=none")
    assert out(pytester, "bills") == grown
    assert len(llm_env.chat_requests) == before + 1


@pytest.mark.parametrize("mode", ["none", "once", "new_episodes"])
def test_fewer_records_replay_the_first_ones_with_no_request(
    pytester: pytest.Pytester, llm_env: FakeLLM, mode: str
) -> None:
    write_suite(pytester, n=10)
    run(pytester)
    first = out(pytester, "bills")
    before = llm_env.request_count
    recorded = cassette(pytester).read_text()

    write_suite(pytester, n=4)
    run(pytester, f"--synth-record-mode={mode}")
    assert out(pytester, "bills") == first[:4]
    assert llm_env.request_count == before
    assert cassette(pytester).read_text() == recorded  # a replay leaves the file alone


def test_growth_in_once_mode_names_the_missing_records_and_the_fix(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, n=3)
    run(pytester)
    write_suite(pytester, n=5)
    result = pytester.runpytest("--synth-no-cache")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_bills.synth.yaml holds 3 Bill record(s) and 5 are asked for; record mode "
            "'once' does not record the 2 missing one(s) (the stored ones stay the first 3). "
            "Record them with: pytest test_billing.py::test_bills *--synth-update*"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_growth_over_several_batches_and_back(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    """Larger growth is asked for in batches too; a shrink pruned by --synth-update keeps the
    first records and the exchanges that made them, and growing again adds new ones."""
    write_suite(pytester, n=4, batch=4)
    run(pytester)
    first = out(pytester, "bills")
    write_suite(pytester, n=12, batch=4)
    before = len(llm_env.chat_requests)
    run(pytester, "--synth-update")
    new = [prompt(r) for r in llm_env.chat_requests[before:]]
    assert len(new) == 2 and all("The dataset already holds 4 records" in p for p in new)
    grown = out(pytester, "bills")
    assert grown[:4] == first
    assert len(content(cassette(pytester))["interactions"]) == 3

    write_suite(pytester, n=3, batch=4)
    result = run(pytester, "--synth-update")
    result.stdout.fnmatch_lines(
        [
            "*pruned    cassettes/test_billing/test_bills.synth.yaml (9 record(s) beyond the n "
            "asked for, 2 unused exchange(s))"
        ]
    )
    assert stored_counts(cassette(pytester)) == [3]
    assert len(content(cassette(pytester))["interactions"]) == 1
    assert out(pytester, "bills") == first[:3]

    write_suite(pytester, n=5, batch=4)
    run(pytester, "--synth-update")
    again = out(pytester, "bills")
    assert again[:3] == first[:3] and len(again) == 5


def test_a_changed_spec_starts_afresh(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    write_suite(pytester, n=4)
    run(pytester)
    first = out(pytester, "bills")
    write_suite(pytester, n=4, extra="only Scandinavian names")
    before = len(llm_env.chat_requests)
    run(pytester, "--synth-update")
    new = [prompt(r) for r in llm_env.chat_requests[before:]]
    assert len(new) == 1 and "already holds" not in new[0]
    assert out(pytester, "bills") != first


def test_a_stored_dataset_the_model_now_rejects_is_generated_again(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    """Stored records are validated by the model on every read; when they no longer pass,
    the dataset is not grown from them but generated afresh."""
    write_suite(pytester, n=3)
    run(pytester)
    source = (pytester.path / "test_billing.py").read_text()
    strict = source.replace(
        "from pydantic import BaseModel\n", "from pydantic import BaseModel, field_validator\n"
    ).replace(
        "    total_charge: float\n",
        "    total_charge: float\n\n"
        "    @field_validator('patient_name')\n"
        "    @classmethod\n"
        "    def never(cls, value):\n"
        "        if value.startswith('Stored'):\n"
        "            raise ValueError('no')\n"
        "        return value\n",
        1,
    )
    (pytester.path / "test_billing.py").write_text(strict)
    # every stored name now fails validation
    path = cassette(pytester)
    edit(path, lambda body: body.replace('"patient_name": "', '"patient_name": "Stored '))
    before = len(llm_env.chat_requests)
    run(pytester, "--synth-update")
    new = [prompt(r) for r in llm_env.chat_requests[before:]]
    assert len(new) == 1 and "already holds" not in new[0]
    assert all(not row["patient_name"].startswith("Stored") for row in out(pytester, "bills"))


# --- --synth-update ---------------------------------------------------------------------------


def test_update_drops_what_a_changed_spec_left_behind(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, n=3)
    run(pytester)
    write_suite(pytester, n=3, extra="only Scandinavian names")
    # without the flag nothing changes: new_episodes keeps the old answer and dataset
    run(pytester, "--synth-record-mode=new_episodes")
    assert stored_counts(cassette(pytester)) == [3, 3]
    assert len(content(cassette(pytester))["interactions"]) == 2
    result = run(pytester, "--synth-update")
    result.stdout.fnmatch_lines(
        [
            "update: 0 cassette(s) recorded into, 1 pruned, 0 stale cassette file(s) deleted",
            "  pruned    cassettes/test_billing/test_bills.synth.yaml (1 unused dataset(s), "
            "1 unused exchange(s))",
        ]
    )
    data = content(cassette(pytester))
    assert stored_counts(cassette(pytester)) == [3]
    assert len(data["interactions"]) == 1
    assert "Scandinavian" in json.dumps(data["interactions"][0]["request"]["body"])
    assert len([key for key in data.get("metadata", {}) if key.startswith("generate:")]) == 1
    # the rewritten file is sealed like a recording: it replays offline, in every mode
    before = llm_env.request_count
    run(pytester, "--synth-record-mode=none")
    assert llm_env.request_count == before
    # and a second update has nothing left to do
    again = run(pytester, "--synth-update")
    again.stdout.fnmatch_lines(
        ["update: 0 cassette(s) recorded into, 0 pruned, 0 stale cassette file(s) deleted"]
    )


def test_update_records_only_what_is_missing(pytester: pytest.Pytester, llm_env: FakeLLM) -> None:
    write_suite(pytester, n=3)
    run(pytester)
    before = llm_env.request_count
    pytester.makepyfile(
        test_more="""
        from pydantic import BaseModel
        import pytest

        class Ticket(BaseModel):
            ticket_id: int
            title: str

        @pytest.mark.synth(Ticket, n=2)
        def test_tickets(synth_data):
            assert len(synth_data) == 2
        """
    )
    result = run(pytester, "--synth-update", passed=3)
    assert llm_env.request_count == before + 1  # only the new test's dataset
    result.stdout.fnmatch_lines(
        [
            "update: 1 cassette(s) recorded into, 0 pruned, 0 stale cassette file(s) deleted",
            "  recorded  cassettes/test_more/test_tickets.synth.yaml (Ticket: 2)",
        ]
    )


NARROWING = [
    ["-k", "bills"],
    ["-m", "not slow"],
    ["test_billing.py::test_bills"],
    ["test_billing.py"],
    ["--deselect", "test_billing.py::test_factory"],
    ["--lf"],
]


@pytest.mark.parametrize("args", NARROWING, ids=lambda args: " ".join(args))
def test_update_deletes_stale_cassettes_only_after_a_whole_run(
    pytester: pytest.Pytester, llm_env: FakeLLM, args: list[str]
) -> None:
    write_suite(pytester, n=3)
    run(pytester)  # --lf then has no failures to narrow to: it runs what it collects
    orphan = cassette(pytester, "test_gone")
    orphan.write_text(cassette(pytester, "test_factory").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow tests\n")
    if args == ["--lf"]:
        pytester.makepyfile(test_failing="def test_fails():\n    assert False\n")
        pytester.runpytest("-p", "cacheprovider")
        narrowed = pytester.runpytest("-p", "cacheprovider", "--synth-update", "--lf")
    else:
        narrowed = pytester.runpytest("--synth-update", *args)
    assert narrowed.ret in (0, 1)
    assert orphan.is_file()
    narrowed.stdout.fnmatch_lines(
        ["  no stale cassette file was looked for: only a run of the whole suite*deletes them"]
    )
    if args == ["--lf"]:
        (pytester.path / "test_failing.py").unlink()
    whole = pytester.runpytest("--synth-update")
    whole.assert_outcomes(passed=2)
    whole.stdout.fnmatch_lines(
        [
            "*1 stale cassette file(s) deleted",
            "  deleted   cassettes/test_billing/test_gone.synth.yaml",
        ]
    )
    assert not orphan.exists()
    assert cassette(pytester).is_file() and cassette(pytester, "test_factory").is_file()


def test_update_deletes_the_cassettes_of_a_deleted_test_file(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, n=3)
    pytester.makepyfile(test_gone="def test_old(synth_factory):\n    pass\n")
    run(pytester, passed=3)
    folder = pytester.path / "cassettes" / "test_gone"
    folder.mkdir()
    (folder / "test_old.synth.yaml").write_text(cassette(pytester).read_text())
    (pytester.path / "test_gone.py").unlink()
    result = run(pytester, "--synth-update")
    result.stdout.fnmatch_lines(["  deleted   cassettes/test_gone/test_old.synth.yaml"])
    assert not folder.exists()  # the folder it leaves empty goes too
    assert cassette(pytester).is_file()


def test_update_does_not_delete_outside_the_collected_folders(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    sub = pytester.mkpydir("sub")
    (sub / "test_sub.py").write_text(
        SUITE.replace("N_BILLS", "2").replace("EXTRA", "x").replace("BATCH", "20")
    )
    write_suite(pytester, n=3)
    run(pytester, passed=4)
    kept = cassette(pytester)
    assert kept.is_file()
    result = pytester.runpytest("--synth-update", "--synth-no-cache", "sub")
    result.assert_outcomes(passed=2)
    assert kept.is_file()
    assert "deleted   cassettes/test_billing" not in result.stdout.str()


def test_update_leaves_a_cassette_alone_when_a_test_using_it_did_not_pass(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, n=3)
    run(pytester)
    write_suite(pytester, n=3, extra="changed")
    run(pytester, "--synth-record-mode=new_episodes")
    source = (pytester.path / "test_billing.py").read_text()
    (pytester.path / "test_billing.py").write_text(
        source.replace(
            '    dump("bills", synth_data)', '    dump("bills", synth_data)\n    assert False'
        )
    )
    result = pytester.runpytest("--synth-update", "--synth-no-cache")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "  not pruned cassettes/test_billing/test_bills.synth.yaml: "
            "a test that uses it did not pass"
        ]
    )
    assert stored_counts(cassette(pytester)) == [3, 3]


PARAMETRIZED = """
import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
    patient_name: str


@pytest.mark.parametrize("extra", ["first", "second"])
def test_sizes(synth_factory, extra):
    assert len(synth_factory(Bill, n=2, extra=extra)) == 2
"""


def test_update_keeps_what_an_unselected_parameter_uses(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_param=PARAMETRIZED)
    pytester.runpytest("--synth-no-cache").assert_outcomes(passed=2)
    path = pytester.path / "cassettes" / "test_param" / "test_sizes.synth.yaml"
    assert len(stored_counts(path)) == 2
    for args in (["test_param.py::test_sizes[first]"], ["-k", "first"]):
        result = pytester.runpytest("--synth-update", "--synth-no-cache", *args)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "  not pruned cassettes/test_param/test_sizes.synth.yaml: some of its tests were "
                "not selected"
            ]
        )
        assert len(stored_counts(path)) == 2
    pytester.runpytest("--synth-update", "--synth-no-cache").assert_outcomes(passed=2)
    assert len(stored_counts(path)) == 2


@pytest.mark.parametrize("source", ["ini", "env"])
def test_update_from_the_ini_file_or_the_environment(
    pytester: pytest.Pytester, llm_env: FakeLLM, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    write_suite(pytester, n=3)
    run(pytester)
    orphan = cassette(pytester, "test_gone")
    orphan.write_text(cassette(pytester).read_text())
    # a CI setting of record mode none gives way to update
    if source == "ini":
        pytester.makeini("[pytest]\nsynth_update = true\nsynth_record_mode = none\n")
    else:
        monkeypatch.setenv("SYNTHDATA_UPDATE", "1")
        monkeypatch.setenv("SYNTHDATA_RECORD_MODE", "none")
    write_suite(pytester, n=4)
    result = run(pytester)
    result.stdout.fnmatch_lines(
        ["*recorded  cassettes/test_billing/test_bills.synth.yaml (Bill: 3 -> 4)*"]
    )
    assert not orphan.exists()


def test_update_and_record_mode_none_on_the_command_line_contradict(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--synth-update", "--synth-record-mode=none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*pytest-synthdata: --synth-update records what is missing, but "
            "--synth-record-mode=none forbids recording; drop one of them"
        ]
    )


def test_help_and_the_options_reference_list_the_update_show_and_export_options(
    pytester: pytest.Pytester,
) -> None:
    text = pytester.runpytest("--help").stdout.str()
    root = Path(__file__).resolve().parent.parent
    readme = (root / "docs" / "reference" / "options.md").read_text()
    for flag, ini, env in [
        ("--synth-update", "synth_update", "SYNTHDATA_UPDATE"),
        ("--synth-show", "synth_show", "SYNTHDATA_SHOW"),
        ("--synth-export=DIR", "synth_export", "SYNTHDATA_EXPORT"),
    ]:
        assert flag in text and f"{ini} (" in text and env in text
        row = f"| `{flag.split('=')[0]}` | `{ini}` | `{env}` |"
        assert row in readme, row


# --- xdist ------------------------------------------------------------------------------------

EACH = """
import json
import pathlib

import pytest
from pydantic import BaseModel


class Bill(BaseModel):
    patient_id: int
    patient_name: str


OUT = pathlib.Path(__file__).parent / "out"


@pytest.mark.synth(Bill, n=N_BILLS, each=True)
def test_each(synth_record, request):
    OUT.mkdir(exist_ok=True)
    index = request.node.callspec.id.rsplit("-", 1)[1]
    (OUT / f"each-{index}.json").write_text(json.dumps(synth_record.model_dump(mode="json")))


@pytest.mark.parametrize("size", [2, 5])
def test_sizes(synth_factory, size):
    OUT.mkdir(exist_ok=True)
    rows = [r.model_dump(mode="json") for r in synth_factory(Bill, n=size, extra="sizes")]
    (OUT / f"size-{size}.json").write_text(json.dumps(rows))
"""


def each_records(pytester: pytest.Pytester, n: int) -> list[dict[str, Any]]:
    return [json.loads((pytester.path / "out" / f"each-{i}.json").read_text()) for i in range(n)]


def test_prefix_rule_after_a_growth_under_xdist(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    pytester.makepyfile(test_each=EACH.replace("N_BILLS", "3"))
    pytester.runpytest_subprocess("-n", "2", "--synth-no-cache").assert_outcomes(passed=5)
    first = each_records(pytester, 3)
    # two tests of one spec with two sizes, run at once on two workers: whichever comes
    # second reads (or grows) what the first stored, under the cassette's lock
    small = json.loads((pytester.path / "out" / "size-2.json").read_text())
    large = json.loads((pytester.path / "out" / "size-5.json").read_text())
    assert large[:2] == small
    before = len(llm_env.chat_requests)

    # 8 items over two workers, all asking for the grown dataset at once
    pytester.makepyfile(test_each=EACH.replace("N_BILLS", "8"))
    result = pytester.runpytest_subprocess("-n", "2", "--synth-no-cache", "--synth-update")
    result.assert_outcomes(passed=10)
    new = [prompt(r) for r in llm_env.chat_requests[before:]]
    assert len(new) == 1 and "Return exactly 5 records." in new[0]
    grown = each_records(pytester, 8)
    assert grown[:3] == first
    path = pytester.path / "cassettes" / "test_each" / "test_each.synth.yaml"
    assert stored_counts(path) == [8]
    (entry,) = content(path)["datasets"].values()
    assert [json.loads(line) for line in entry["records"].splitlines()] == grown
    assert [step["upto"] for step in entry["steps"]] == [3, 8]
    result.stdout.fnmatch_lines(
        ["*recorded  cassettes/test_each/test_each.synth.yaml (Bill: 3 -> 8)*"]
    )
    # the other worker found a cassette being recorded, not one an interrupted run left
    assert "left incomplete" not in result.stdout.str()
    assert "incomplete" not in path.read_text()

    # replayed offline on two workers: the very same records, no request
    for file in (pytester.path / "out").iterdir():
        file.unlink()
    again = pytester.runpytest_subprocess("-n", "2", "--synth-no-cache", "--synth-record-mode=none")
    again.assert_outcomes(passed=10)
    assert each_records(pytester, 8) == grown
    assert len(llm_env.chat_requests) == before + 1


def test_update_under_xdist_prunes_and_deletes_at_the_controller(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, n=3)
    pytester.runpytest_subprocess("-n", "2", "--synth-no-cache").assert_outcomes(passed=2)
    orphan = cassette(pytester, "test_gone")
    orphan.write_text(cassette(pytester).read_text())
    write_suite(pytester, n=3, extra="changed")
    pytester.runpytest_subprocess(
        "-n", "2", "--synth-no-cache", "--synth-record-mode=new_episodes"
    ).assert_outcomes(passed=2)
    assert stored_counts(cassette(pytester)) == [3, 3]
    result = pytester.runpytest_subprocess("-n", "2", "--synth-no-cache", "--synth-update")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "update: 0 cassette(s) recorded into, 1 pruned, 1 stale cassette file(s) deleted",
            "  pruned    cassettes/test_billing/test_bills.synth.yaml (1 unused dataset(s), "
            "1 unused exchange(s))",
            "  deleted   cassettes/test_billing/test_gone.synth.yaml",
        ]
    )
    assert stored_counts(cassette(pytester)) == [3]
    assert not orphan.exists()


@pytest.mark.parametrize("how", ["--ignore", "collect_ignore", "module skip", "importorskip"])
def test_update_keeps_the_cassettes_of_modules_left_out_on_purpose(
    pytester: pytest.Pytester, llm_env: FakeLLM, how: str
) -> None:
    """A module this run ignores or skips as a whole runs elsewhere (another platform,
    another Python): its cassettes are not stale, while a real orphan still goes."""
    write_suite(pytester, n=3)
    pytester.makepyfile(
        test_elsewhere="def test_there(synth_factory):\n    pass\n",
    )
    run(pytester, passed=3)
    elsewhere = pytester.path / "cassettes" / "test_elsewhere"
    elsewhere.mkdir()
    (elsewhere / "test_there.synth.yaml").write_text(cassette(pytester).read_text())
    orphan = cassette(pytester, "test_gone")
    orphan.write_text(cassette(pytester).read_text())
    args = ["--synth-update", "--synth-no-cache"]
    if how == "--ignore":
        args.append("--ignore=test_elsewhere.py")
    elif how == "collect_ignore":
        pytester.makeconftest('collect_ignore = ["test_elsewhere.py"]\n')
    elif how == "module skip":
        pytester.makepyfile(
            test_elsewhere="import pytest\n\npytest.skip('not here', allow_module_level=True)\n"
        )
    else:
        pytester.makepyfile(
            test_elsewhere="import pytest\n\npytest.importorskip('no_such_module_here')\n"
        )
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["  deleted   cassettes/test_billing/test_gone.synth.yaml"])
    assert not orphan.exists()
    assert (elsewhere / "test_there.synth.yaml").is_file()


def test_update_keeps_the_cassette_of_a_library_call_inside_a_test(
    pytester: pytest.Pytester, llm_env: FakeLLM
) -> None:
    write_suite(pytester, n=3)
    pytester.makepyfile(
        test_library="""
        import pathlib

        from pydantic import BaseModel
        from pytest_synthdata import generate

        class Bill(BaseModel):
            patient_id: int

        def test_own_cassette():
            path = pathlib.Path(__file__).parent / "cassettes" / "shared" / "bills.synth.yaml"
            assert len(generate(Bill, 2, cassette=path)) == 2
        """
    )
    run(pytester, passed=3)
    own = pytester.path / "cassettes" / "shared" / "bills.synth.yaml"
    assert own.is_file()
    result = run(pytester, "--synth-update", passed=3)
    assert own.is_file()
    result.stdout.fnmatch_lines(["update: *, 0 stale cassette file(s) deleted"])
