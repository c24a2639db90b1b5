"""Malformed deal, tape and scenario files: every problem names the file, the field path and the
offending value, through the Python API and through the CLI (exit status 2, no traceback).

The files are in ``tests/data/bad``; each starts with a ``# BAD:`` comment saying what is wrong.
They are derived from ``_valid_small.toml``, which must itself validate and run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import abs_engine as ae
from abs_engine.errors import DealError, Problem, short_repr
from abs_engine.schema import parse_deal
from tests.conftest import base_deal, obligor, run_cli

BAD = Path(__file__).resolve().parent / "data" / "bad"
VALID = BAD / "_valid_small.toml"
NO_VALUE = object()  # the problem must carry no value (there is none to show)


@dataclass(frozen=True)
class Case:
    id: str
    deal: str  # file name in BAD
    path: str  # expected field path, exactly
    value: Any = NO_VALUE
    message: str = ""  # a fragment the message must contain
    file: str | None = None  # the offending file when it is not the deal (a tape)
    scenario: str | None = None  # a scenario file checked against ``deal``

    @property
    def deal_path(self) -> Path:
        return BAD / self.deal

    @property
    def offending(self) -> Path:
        return BAD / (self.scenario or self.file or self.deal)


CASES = [
    Case(
        "unknown_step_kind",
        "unknown_step_kind.toml",
        "waterfalls.normal[3].kind",
        "fund_reserves",
        "unknown kind",
    ),
    Case(
        "unknown_tranche_in_waterfall",
        "unknown_tranche_in_waterfall.toml",
        "waterfalls.normal[1].tranches[0]",
        "AA",
        "unknown tranche",
    ),
    Case(
        "coverage_trigger_periods_past_the_end",
        "coverage_trigger_periods_past_the_end.toml",
        "triggers[1].periods",
        5,
        "more than the deal's periods (4)",
    ),
    Case(
        "negative_tranche_balance",
        "negative_tranche_balance.toml",
        "tranches[1].balance",
        -10_000_000,
        "greater than or equal to 0",
    ),
    Case(
        "negative_obligor_balance",
        "negative_obligor_balance.toml",
        "pool.obligors[1].balance",
        -40_000_000,
        "greater than 0",
    ),
    Case(
        "coupon_rate_string",
        "coupon_rate_string.toml",
        "tranches[0].coupon.rate",
        "0.0279",
        "not a string",
    ),
    Case(
        "first_payment_before_closing",
        "first_payment_before_closing.toml",
        "dates.first_payment",
        "2024-07-15",
        "must be after closing 2025-01-15",
    ),
    Case(
        "legal_final_before_first_payment",
        "legal_final_before_first_payment.toml",
        "dates.legal_final",
        "2025-06-01",
        "before first_payment 2025-07-15",
    ),
    Case(
        "license_fee_dates_out_of_order",
        "license_fee_dates_out_of_order.toml",
        "pool.obligors[0].amortization.payments[1].date",
        "2025-07-15",
        "dates out of order",
    ),
    Case("empty_pool", "empty_pool.toml", "pool.obligors", [], "the pool is empty"),
    Case(
        "duplicate_obligor_id",
        "duplicate_obligor_id.toml",
        "pool.obligors[1].id",
        "O1",
        "duplicate obligor id",
    ),
    Case(
        "tape_missing_columns",
        "tape_missing_columns.toml",
        "<columns>",
        ["id", "balance", "rate", "amortization", "n_periods"],
        "missing required column(s) annual_pd",
        file="tape_missing_columns.csv",
    ),
    Case(
        "tape_bad_value",
        "tape_bad_value.toml",
        "row 2 (id=T2).balance",
        -40_000_000,
        "greater than 0",
        file="tape_bad_value.csv",
    ),
    Case(
        "tape_not_found",
        "tape_not_found.toml",
        "pool.tape.path",
        "no_such_tape.csv",
        "pool tape not found",
    ),
    Case(
        "unknown_top_level_key",
        "unknown_top_level_key.toml",
        "base_scenaro",
        "stress",
        "unknown key",
    ),
    Case(
        "nested_key_typo", "nested_key_typo.toml", "dates.legal_finale", "2027-01-15", "unknown key"
    ),
    Case(
        "missing_required_field",
        "missing_required_field.toml",
        "dates.legal_final",
        NO_VALUE,
        "required field is missing",
    ),
    Case(
        "pd_at_least_one", "pd_at_least_one.toml", "pool.obligors[1].pd.annual", 1.0, "less than 1"
    ),
    Case("wrong_schema_version", "wrong_schema_version.toml", "schema_version", 2),
    Case(
        "pd_term_structure_decreasing",
        "pd_term_structure_decreasing.toml",
        "pool.obligors[0].pd.cumulative[1]",
        0.05,
        "must not decrease",
    ),
    Case(
        "target_balances_not_target_principal",
        "target_balances_not_target_principal.toml",
        "tranches[0].target_balances",
        [90_000_000, 60_000_000, 30_000_000, 0],
        "only used with principal = 'target_balance'",
    ),
    Case(
        "amortization_past_legal_final",
        "amortization_past_legal_final.toml",
        "pool.obligors[0].amortization",
        {"first_period": 1, "n_periods": 6},
        "schedule runs to period 6 but the deal has 4 periods",
    ),
    Case(
        "junior_before_senior",
        "junior_before_senior.toml",
        "waterfalls.normal[4].tranches",
        ["Sub"],
        "junior tranche 'Sub' is paid principal before senior 'A'",
    ),
    Case("unknown_fee", "unknown_fee.toml", "waterfalls.normal[0].fee", "trustees", "unknown fee"),
    Case(
        "unknown_account",
        "unknown_account.toml",
        "waterfalls.normal[3].account",
        "reserves",
        "unknown account",
    ),
    Case(
        "unknown_support",
        "unknown_support.toml",
        "waterfalls.normal[5].support",
        "guarantee",
        "unknown support",
    ),
    Case(
        "accelerate_without_waterfall",
        "accelerate_without_waterfall.toml",
        "triggers[0].effect",
        "accelerate",
        "needs a waterfalls.accelerated",
    ),
    Case("toml_syntax_error", "toml_syntax_error.toml", "<syntax>", NO_VALUE, "not valid TOML"),
    Case("file_not_found", "does_not_exist.toml", "<file>", NO_VALUE, "file not found"),
    Case(
        "json_top_level_not_object",
        "top_level_not_object.json",
        "<root>",
        NO_VALUE,
        "expected a JSON object",
    ),
    Case("json_bad_date", "bad_date.json", "dates.closing", "2025-13-01", "YYYY-MM-DD"),
    Case(
        "json_unknown_coupon_kind",
        "unknown_coupon_kind.json",
        "tranches[0].coupon.kind",
        "fixd",
        "unknown kind",
    ),
    Case(
        "scenario_timing_sum",
        "_valid_small.toml",
        "defaults.timing",
        [0.5, 0.3],
        "they sum to 0.8",
        scenario="scenario_timing_sum.toml",
    ),
    Case(
        "scenario_unknown_obligor",
        "_valid_small.toml",
        "obligor_defaults[0].obligor",
        "O9",
        "unknown obligor id",
        scenario="scenario_unknown_obligor.toml",
    ),
]

#: cases also run through ``abs-engine run`` (schema, compile, tape and scenario stages)
RUN_CASES = {
    "unknown_tranche_in_waterfall",
    "coupon_rate_string",
    "tape_bad_value",
    "file_not_found",
    "scenario_unknown_obligor",
}


def _problems(case: Case) -> list[Problem]:
    """The problems the Python API raises for ``case`` (deal, then scenario when there is one)."""
    with pytest.raises(DealError) as info:
        deal = ae.load_deal(case.deal_path)
        cd = ae.compile_deal(deal)
        if case.scenario is not None:
            ae.run_deterministic(cd, [ae.load_scenario(BAD / case.scenario, deal)])
    return info.value.problems


def _has_value(p: Problem) -> bool:
    return "value" in p.as_dict()


def _cli_args(case: Case, command: str) -> list[str | Path]:
    args: list[str | Path] = [command, case.deal_path]
    if case.scenario is not None:
        args += ["-s", BAD / case.scenario]
    return args


def test_valid_small_deal_is_valid():
    """The base of every bad file must be good, or the bad files test nothing."""
    cd = ae.compile_deal(ae.load_deal(VALID))
    assert cd.n_obligors == 2 and cd.tranche_names == ("A", "Sub") and cd.n_periods == 4
    out = run_cli("validate", VALID)
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout


def test_cases_are_distinct_and_files_exist():
    assert len(CASES) >= 18
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.offending, c.path) for c in CASES}) == len(CASES)
    for c in CASES:
        if c.id != "file_not_found":
            assert c.deal_path.is_file(), c.deal_path
            assert c.offending.is_file(), c.offending
            if c.scenario is None and c.offending.suffix in (".toml", ".json"):
                assert c.offending.read_text().strip() != VALID.read_text().strip()
    assert not (BAD / "does_not_exist.toml").exists()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_api_reports_file_path_and_value(case: Case):
    problems = _problems(case)
    here = [p for p in problems if Path(p.file).resolve() == case.offending.resolve()]
    assert here, f"no problem names {case.offending.name}: {problems}"
    match = [p for p in here if p.path == case.path]
    assert match, f"no problem at {case.path!r}; got paths {[p.path for p in here]}"
    p = match[0]
    assert case.message in p.message
    if case.value is NO_VALUE:
        assert not _has_value(p), p
    else:
        assert _has_value(p), p
        assert p.value == case.value
        assert type(p.value) is type(case.value) or isinstance(case.value, int | float)
    # the paths are clean: no pydantic union tags, no internal names
    for q in problems:
        for junk in (
            "function-",
            "coupon.fixed",
            "pd.flat",
            "pd.term_structure",
            "amortization.license_fee",
            "defaults.cumulative",
        ):
            assert junk not in q.path, q


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_cli_validate_exits_2_naming_file_path_and_value(case: Case):
    _check_cli(case, "validate")


@pytest.mark.parametrize("case", [c for c in CASES if c.id in RUN_CASES], ids=lambda c: c.id)
def test_cli_run_exits_2_naming_file_path_and_value(case: Case):
    _check_cli(case, "run")


def _check_cli(case: Case, command: str) -> None:
    out = run_cli(*_cli_args(case, command))
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert out.stderr.startswith("error: ")
    head = f"{case.offending}: {case.path}: "
    lines = [ln.strip() for ln in out.stderr.splitlines() if ln.strip().startswith(head)]
    assert lines, f"no line starts with {head!r} in\n{out.stderr}"
    line = lines[0]
    assert case.message in line
    if case.value is NO_VALUE:
        assert "(got " not in line
    else:
        assert line.endswith(f"(got {short_repr(case.value)})"), line


def test_cli_validate_lists_problems_of_several_scenarios():
    out = run_cli(
        "validate",
        VALID,
        "-s",
        BAD / "scenario_timing_sum.toml",
        "-s",
        BAD / "scenario_unknown_obligor.toml",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: 2 problems found")
    assert f"{BAD / 'scenario_timing_sum.toml'}: defaults.timing: " in out.stderr
    assert f"{BAD / 'scenario_unknown_obligor.toml'}: obligor_defaults[0].obligor: " in out.stderr


# --- several problems in one file: all listed at once ----------------------------------------

MANY = {
    "many_schema_problems.toml": {
        ("tranches[1].balance", -10_000_000),
        ("tranches[0].coupon.rate", "0.0279"),
        ("pool.obligors[1].pd.annual", 1.5),
        ("base_scenaro", "stress"),
    },
    "many_compile_problems.toml": {
        ("pool.obligors[1].id", "O1"),
        ("waterfalls.normal[0].fee", "trustees"),
        ("waterfalls.normal[1].tranches[0]", "AA"),
        ("waterfalls.normal[5].support", "guarantee"),
    },
}


@pytest.mark.parametrize("name", sorted(MANY))
def test_every_problem_reported_at_once(name: str):
    path = BAD / name
    with pytest.raises(DealError) as info:
        ae.compile_deal(ae.load_deal(path))
    problems = info.value.problems
    assert {(p.path, p.value) for p in problems} == MANY[name]
    assert all(Path(p.file) == path for p in problems)
    assert str(info.value).startswith(f"{len(MANY[name])} problems:")

    out = run_cli("validate", path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"error: {len(MANY[name])} problems found")
    for field, value in MANY[name]:
        assert f"{path}: {field}: " in out.stderr
        assert f"(got {short_repr(value)})" in out.stderr


# --- nothing half-written under --out ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["unknown_fee.toml"],
        ["coupon_rate_string.toml"],
        ["tape_bad_value.toml"],
        ["_valid_small.toml", "-s", "scenario_unknown_obligor.toml"],
        ["_valid_small.toml", "-s", "scenario_name_with_slash.toml"],
    ],
    ids=["compile", "schema", "tape", "scenario", "scenario_name_not_a_file_name"],
)
@pytest.mark.parametrize("exists", [True, False], ids=["dir_exists", "no_dir"])
def test_run_out_writes_nothing_for_bad_input(tmp_path: Path, args: list[str], exists: bool):
    out_dir = tmp_path / "out"
    if exists:
        out_dir.mkdir()
    paths = [BAD / a if a.endswith((".toml", ".json")) else a for a in args]
    out = run_cli("run", *paths, "--out", out_dir)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    if exists:
        assert list(out_dir.iterdir()) == []
    else:
        assert not out_dir.exists()


def test_run_out_names_the_scenario_whose_name_is_not_a_file_name(tmp_path: Path):
    sc = BAD / "scenario_name_with_slash.toml"
    out = run_cli("run", VALID, "-s", sc, "--out", tmp_path / "out")
    assert out.returncode == 2
    assert f"{sc}: name: " in out.stderr and "(got 'stress/10pct')" in out.stderr


def test_run_out_refuses_a_file(tmp_path: Path):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    out = run_cli("run", VALID, "--out", target)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{target}: <file>: --out must be a folder" in out.stderr
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("which", ["deal", "scenario", "tape", "manifest_by_a_link"])
def test_run_out_never_replaces_an_input(tmp_path: Path, capsys, which: str):
    """An input of the run (deal, scenario or tape) in the output folder under an output's
    name: exit 2 naming both, nothing written, the input intact (the outputs used to be
    renamed over it). The same file by another name (a symbolic link) counts as the same."""
    import json

    from abs_engine.cli import main
    from abs_engine.schema.load import read_document

    out = tmp_path / "o"
    out.mkdir()
    deal = read_document(VALID)
    args: list[str | Path]
    if which == "tape":
        (out / "ledger.csv").write_text(
            (BAD / "tape_bad_value.csv").read_text().replace("-40000000", "40000000")
        )
        tape_deal = (BAD / "tape_bad_value.toml").read_text()
        (out / "deal.toml").write_text(tape_deal.replace("tape_bad_value.csv", "ledger.csv"))
        args, victim = [out / "deal.toml"], out / "ledger.csv"
    elif which == "scenario":
        sc = read_document(BAD.parent.parent.parent / "scenarios" / "huake_base.toml")
        (out / "summary.json").write_text(json.dumps({**sc, "name": "base"}, default=str))
        args, victim = [VALID, "-s", out / "summary.json"], out / "summary.json"
    else:
        (tmp_path / "deal.json").write_text(json.dumps(deal, default=str))  # dates as text
        victim = out / "manifest.json"
        if which == "deal":
            (tmp_path / "deal.json").rename(victim)
            args = [victim]
        else:
            victim.symlink_to(tmp_path / "deal.json")
            args = [tmp_path / "deal.json"]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["run", *map(str, args), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{victim} is an input of this run" in err and "nothing was written" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("name", ["summary.json", "manifest.json"])
def test_run_out_never_replaces_a_folder(tmp_path: Path, capsys, name: str):
    """A folder at an output's name was moved aside with the previous outputs and deleted
    with the staging folder, everything in it (found by a fuzzing helper): refused, exit 2,
    nothing written, the folder intact."""
    from abs_engine.cli import main

    out = tmp_path / "o"
    (out / name / "sub").mkdir(parents=True)
    (out / name / "sub" / "data.txt").write_text("precious")
    assert main(["run", str(VALID), "--out", str(out)]) == 2
    assert f"{out / name} is a folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == [name]
    assert (out / name / "sub" / "data.txt").read_text() == "precious"


def test_a_process_may_write_outputs_it_checked_and_then_write_them_again(tmp_path: Path):
    """``synth`` reads its staged tape back to check it: a file read while staged is an
    output once moved into place, not an input, so the same command in the same process runs
    again (it was refused as "an input of this run"). An input changed since it was read (or
    a new file on a deleted input's inode) is not one either."""
    from abs_engine.cli import main
    from abs_engine.schema.files import input_at, inputs_recorded, note_input

    for _ in range(2):
        assert main(["synth", str(tmp_path / "s"), "--obligors", "8", "--periods", "4"]) == 0
    f = tmp_path / "deal.toml"
    f.write_text("x")
    with inputs_recorded():
        note_input(f)
        assert input_at(f) == str(f)
        os.utime(f, ns=(0, 123_456_789))
        assert input_at(f) is None
    note_input(f)  # outside a command: nothing recorded
    assert input_at(f) is None


def test_a_python_session_may_regenerate_files_it_loaded(tmp_path: Path):
    """Inputs are recorded per command: a session that loads a deal and then writes it anew
    (regenerating a synthetic pool) is not refused, as it was while the record lasted as long
    as the process (a reviewer's finding)."""
    import abs_engine as ae
    from abs_engine.synthetic import write_synthetic

    files = write_synthetic(tmp_path, 8, name="demo", n_periods=4)
    ae.load_deal(files["deal"])
    assert write_synthetic(tmp_path, 9, name="demo", n_periods=4)["deal"] == files["deal"]
    assert ae.load_deal(files["deal"]).pool is not None


@pytest.mark.parametrize(
    ("command", "field"),
    [(["run"], "base_scenario"), (["stress"], "deterministic_scenario"),
     (["report", "--out", "{out}"], "base_scenario"),
     (["size", "--tranche", "A", "--target", "AAA"], "base_scenario")],
)  # fmt: skip
def test_a_scenario_the_deal_names_and_nobody_has_is_blamed_on_the_deal(
    tmp_path: Path, capsys, command: list[str], field: str
):
    """The deal's own scenario not found: the error names the deal file and the field (it
    named only the scenario before, as though the command line had); one given with
    ``--scenario`` is still blamed on the flag's value."""
    import json

    from abs_engine.cli import main
    from abs_engine.schema.load import read_document

    deal = tmp_path / "deal.json"
    doc = {**read_document(VALID), "base_scenario": "nope", "deterministic_scenario": "nope2"}
    deal.write_text(json.dumps(doc, default=str))
    args = [a.replace("{out}", str(tmp_path / "out")) for a in command]
    assert main([args[0], str(deal), *args[1:]]) == 2
    err = capsys.readouterr().err
    assert f"{deal}: {field}: scenario cannot be loaded: scenario not found" in err, err
    assert main([args[0], str(deal), *args[1:], "-s", "nope3"]) == 2
    assert "nope3: <file>: scenario not found" in capsys.readouterr().err


def test_run_out_writes_files_for_the_valid_deal(tmp_path: Path):
    """Control for the tests above: the same command on the good deal does write."""
    out_dir = tmp_path / "out"
    out = run_cli("run", VALID, "--out", out_dir)
    assert out.returncode == 0, out.stderr
    assert {p.name for p in out_dir.iterdir()} == {
        "manifest.json",
        "ledger.parquet",
        "ledger.csv",
        "summary.json",
        "tranches_no_defaults.csv",
        "cashflows_no_defaults.csv",
        "tranches_no_defaults.parquet",
        "cashflows_no_defaults.parquet",
    }
    import pandas as pd

    # the Parquet twin holds the CSV's table (the residual tranche's coupon as text in both)
    pq = pd.read_parquet(out_dir / "tranches_no_defaults.parquet")
    csv = pd.read_csv(out_dir / "tranches_no_defaults.csv")
    assert list(pq.columns) == list(csv.columns) and len(pq) == len(csv)


def test_duplicate_id_in_tape_names_the_tape():
    problems = _problems(Case("tape_duplicate_id", "tape_duplicate_id.toml", "row 2 (id=T1).id"))
    hits = [p for p in problems if Path(p.file).name == "tape_duplicate_id.csv"]
    assert [p.path for p in hits] == ["row 2 (id=T1).id"], problems
    assert hits[0].value == "T1"


def test_tiny_level_pay_rate_compiles():
    """A rate that rounds (1 + r)^-n to 1 must not divide by zero."""
    deal = base_deal(pool={"obligors": [obligor("O1", 100.0, rate=1e-17, n=3, kind="level_pay")]})
    cd = ae.compile_deal(parse_deal(deal))
    assert cd.pool.sched_principal[0].sum() == pytest.approx(100.0)


@pytest.mark.parametrize("name", ["pool", "notes", "original_pool"])
def test_a_tranche_may_not_take_a_reserved_name(tmp_path: Path, capsys, name: str):
    """A fee's base and a reserve target's balance read "pool", "notes" and "original_pool"
    before tranche names, and outputs name the pool's columns "pool.<item>": a tranche named
    "pool" validated, then broke the console table with a traceback and overwrote the pool's
    columns in the cash flows. Refused, naming the file, the field and the name."""
    deal = Path(__file__).resolve().parents[1] / "waterfalls" / "huake_2025.toml"
    p = tmp_path / "d.toml"
    p.write_text(deal.read_text().replace('"Sub"', f'"{name}"'))
    with pytest.raises(DealError) as info:
        ae.load_deal(p)
    (problem,) = info.value.problems
    assert (problem.path, problem.value) == ("tranches[1].name", name)
    assert Path(problem.file) == p and "reserved" in problem.message
    from abs_engine.cli import main

    assert main(["run", str(p), "--paths", "100"]) == 2
    err = capsys.readouterr().err
    assert "tranches[1].name" in err and "Traceback" not in err


def test_an_output_name_ending_in_whitespace_is_refused_at_its_field():
    """A tranche "A " beside a tranche "A" ran, and every table and file showed two rows
    "A" (the cash-flow columns "A.interest_paid" and "A .interest_paid"; a validator): names
    the outputs label by end without whitespace, as obligor ids do. The deal's own name
    too; a name with an inner space stays valid."""
    deal = base_deal(name="deal ")
    second = {**deal["tranches"][0], "name": "A "}
    deal["tranches"].append(second)
    with pytest.raises(DealError) as ei:
        parse_deal(deal)
    got = {(q.path, q.value) for q in ei.value.problems}
    assert {("name", "deal "), ("tranches[1].name", "A ")} <= got
    assert all("may not end with whitespace" in q.message for q in ei.value.problems
               if q.path in ("name", "tranches[1].name"))  # fmt: skip
    assert parse_deal(base_deal(name="a deal")).name == "a deal"
