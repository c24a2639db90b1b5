"""The README's promises: the bundled deal runs, the JSON parses, the README and CI agree.
Two real processes: the installed ``abs-engine`` command, and a new interpreter for what
happens before and at its first simulate."""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import abs_engine as ae
from abs_engine.cli import main
from tests.conftest import ABS_ENGINE, ROOT


def test_bundled_deal_runs_and_pays_senior_in_base_case(capsys):
    assert main(["run", "--paths", "20000"]) == 0
    out = capsys.readouterr().out
    assert "Huake Chuanghe" in out and "Tranches" in out and "Monte Carlo" in out
    res = ae.run_deterministic()  # the deal's deterministic_scenario: huake_base
    a = res[0].tranches.set_index("tranche").loc["A"]
    assert abs(a.principal_paid - 95_000_000) < 1e-4
    assert a.loss == 0.0


REQUIRED = (
    "name",
    "balance",
    "coupon",
    "principal_paid",
    "interest_paid",
    "loss",
    "wal_years",
    "min_coverage_ratio",
)


def test_run_json_parses_with_required_fields(capsys):
    assert main(["run", "--json", "--paths", "20000", "--seed", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "monte_carlo" and doc["n_paths"] == 20000 and doc["seed"] == 3
    assert [t["name"] for t in doc["tranches"]] == ["A", "Sub"]
    senior = doc["tranches"][0]
    for key in (*REQUIRED, "expected_loss", "expected_loss_se", "default_probability"):
        assert key in senior, key
    assert 0 < senior["expected_loss"] < 0.05 and senior["expected_loss_se"] > 0
    assert set(doc["pool"]["default_rate"]) == {"mean", "se"}
    assert len(doc["cashflows"]) == doc["periods"] == 12


def test_run_json_deterministic_scenario(capsys):
    assert main(["run", "-s", "huake_base", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in doc["tranches"]] == ["A", "Sub"]
    for key in REQUIRED:
        assert key in doc["tranches"][0], key
    assert doc["pool"]["obligors"] == 8
    assert len(doc["cashflows"]) == doc["periods"] == 12


def test_console_script_is_installed():
    """README command 1 in a real process, through the installed ``abs-engine`` script."""
    assert ABS_ENGINE.is_file(), f"{ABS_ENGINE} is not installed (pip install -e .)"
    cmd = [str(ABS_ENGINE), "run", "--json", "--paths", "2000"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["deal"].startswith("Huake")


def test_monte_carlo_options_refused_for_deterministic_scenarios(capsys):
    assert main(["run", "-s", "huake_base", "--paths", "10"]) == 2
    assert "only for Monte Carlo" in capsys.readouterr().err


def test_readme_commands_are_the_ci_commands():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
    assert len(commands) == 2
    for cmd in commands:
        assert cmd in ci, cmd


def test_out_writes_ledger_files(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["run", "-s", "huake_base", "-s", "cdr_stress", "--out", str(out)]) == 0
    import pandas as pd

    led = pd.read_parquet(out / "ledger.parquet")
    assert set(led["scenario"]) == {"huake_base", "cdr_stress"}
    csv = pd.read_csv(out / "ledger.csv")
    assert len(csv) == len(led)
    assert (out / "tranches_cdr_stress.csv").exists()
    # every CSV in UTF-8 with a byte-order mark (Excel then reads Chinese names right), its
    # header read back clean
    for f in out.glob("*.csv"):
        raw = f.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), f.name
        assert not pd.read_csv(f).columns[0].startswith("\ufeff"), f.name
    assert not list(out.glob(".*.tmp"))


def test_monte_carlo_out_writes_summary_ledger_and_paths(tmp_path, capsys):
    out = tmp_path / "mc"
    args = [
        "run",
        "--paths",
        "3000",
        "--seed",
        "5",
        "--out",
        str(out),
        "--keep-paths",
        "--no-progress",
    ]
    assert main(args) == 0
    import pandas as pd

    names = {p.name for p in out.iterdir()}
    for kind in ("summary", "tranches", "pool", "cashflows", "paths", "ledger"):
        assert any(n.startswith(f"{kind}_huake_mc.") for n in names), kind
    assert {"ledger_huake_mc.parquet", "ledger_huake_mc.csv", "paths_huake_mc.parquet"} <= names
    paths = pd.read_parquet(out / "paths_huake_mc.parquet")
    assert len(paths) == 3000
    tranches = pd.read_csv(out / "tranches_huake_mc.csv", encoding="utf-8-sig")
    assert list(tranches["tranche"]) == ["A", "Sub"]
    assert all(f.read_bytes()[:3] == b"\xef\xbb\xbf" for f in out.glob("*.csv"))
    ledger = pd.read_parquet(out / "ledger_huake_mc.parquet")
    assert set(ledger["path"]) == {0} and set(ledger["scenario"]) == {"huake_mc"}
    summary = json.loads((out / "summary_huake_mc.json").read_text())
    assert summary["n_paths"] == 3000 and summary["rating_table"]["illustrative"] is True


def test_validate_accepts_and_checks_monte_carlo_scenarios(tmp_path, capsys):
    assert main(["validate", str(ROOT / "waterfalls" / "huake_2025.toml"), "-s", "huake_mc"]) == 0
    bad = tmp_path / "bad_mc.toml"
    bad.write_text(
        'kind = "monte_carlo"\nname = "bad"\n'
        '[defaults]\nfactors = "sector"\nsector_correlation = -0.9\n'
    )
    assert main(["validate", str(ROOT / "waterfalls" / "huake_2025.toml"), "-s", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "defaults.sector_correlation" in err and "positive semi-definite" in err


# --- a new process: what happens before and at the first simulate ---------------------------------

NEW_PROCESS = """
import abs_engine as ae
from abs_engine.kernels.montecarlo import run_block
for bad in ({"n_paths": 0}, {"seed": -1}):
    try:
        ae.simulate(progress=False, **bad)
    except ae.InputError as e:
        print("error:", e)
print("compiled:", len(run_block.signatures))
a = ae.simulate(n_paths=3000, progress=False)
b = ae.simulate(n_paths=3000, progress=False)
print("first simulate:", a.compile_seconds > 0.0, b.compile_seconds == 0.0,
      a.tranches.equals(b.tranches), a.cashflows.equals(b.cashflows))
"""


@pytest.fixture(scope="module")
def new_process() -> list[str]:
    """The lines ``NEW_PROCESS`` prints, run in a new Python process: bad input to simulate,
    then two simulates (one process start-up, about 2 CPU-seconds, for the two tests below)."""
    cmd = [sys.executable, "-c", NEW_PROCESS]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()


def test_errors_come_before_any_kernel_compilation(new_process):
    """Bad arguments to simulate are refused before the Monte Carlo kernel is compiled (or
    loaded from the cache): no signature exists after two refusals."""
    assert sum(line.startswith("error:") for line in new_process) == 2, new_process
    assert "compiled: 0" in new_process, new_process


def test_first_simulate_reports_compile_time_apart_and_changes_nothing(new_process):
    """In a new process the first simulate compiles (or loads) the kernels on a one-path
    warm-up: that time is reported as compile_seconds, not in seconds, and the results are
    bitwise those of the second call."""
    assert "first simulate: True True True True" in new_process, new_process


def test_results_print_short_and_render_in_notebooks():
    """``repr`` of a result is a few lines (not the dataclass's full field dump), and
    ``_repr_html_`` a small table per scenario holding the same numbers."""
    mc = ae.simulate(n_paths=2_000, seed=1, progress=False)
    det = ae.run_deterministic(None, ["huake_base", "cdr_stress"])
    for res in (mc, det):
        text = repr(res)
        assert len(text) < 2_000 and text.count("\n") < 10
        assert all(t in text for t in ("A", "Sub"))
        page = res._repr_html_()
        parser = _Tags()
        parser.feed(page)
        assert "table" in parser.tags and len(page) < 5_000
    a = mc.tranches.iloc[0]
    assert f"{a.expected_loss:.4%} ± {a.expected_loss_se:.4%}" in repr(mc)
    assert "cdr_stress" in repr(det) and "cdr_stress" in det._repr_html_()


def test_solvers_and_tables_are_exported():
    for name in ("size_tranche", "solve_coupon", "breakeven", "sensitivity", "condition",
                 "load_curve", "load_rating_table", "breakeven_default_rate",
                 "large_obligor_test", "coverage_table"):  # fmt: skip
        assert name in ae.__all__ and callable(getattr(ae, name)) and getattr(ae, name).__doc__


class _Tags(html.parser.HTMLParser):
    """The start tags of an HTML text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)


def test_outputs_are_stamped_with_engine_inputs_and_run(tmp_path, capsys):
    """Every JSON document and manifest names the engine version and each input file with its
    SHA-256; Monte Carlo ones also the paths, the seed and the sampling."""
    import hashlib

    def sha(p):
        return hashlib.sha256(Path(p).read_bytes()).hexdigest()

    assert main(["run", "--paths", "1000", "--seed", "3", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["stamp"]
    assert st["engine"] == f"abs-engine {ae.__version__}" and st["sampling"] == "crude"
    assert (st["n_paths"], st["seed"]) == (1000, 3)
    roles = {i["role"]: i for i in st["inputs"]}
    assert set(roles) == {"deal", "scenario"}
    for i in st["inputs"]:
        assert i["sha256"] == sha(i["path"])
    out = tmp_path / "o"
    assert main(["run", "-s", "cdr_stress", "--out", str(out)]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stamp"]["engine"].startswith("abs-engine")
    assert {i["role"] for i in manifest["stamp"]["inputs"]} == {"deal", "scenario"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stamp"]["inputs"] == manifest["stamp"]["inputs"]
    # a Monte Carlo run's manifest: paths and sampling as the run had them (they were the
    # options': 1,000 paths where a precision target took 4,096, sampling 'crude' for an
    # importance-sampled run)
    for k, extra in enumerate((["--target-rel-se", "0.3"], ["--sampling", "importance"])):
        out = tmp_path / f"mc{k}"
        argv = ["run", "--paths", "1000", "--seed", "3", "--no-progress", "--out", str(out)]
        assert main(argv + extra) == 0
        capsys.readouterr()
        manifest = json.loads((out / "manifest.json").read_text())["stamp"]
        summary = json.loads((out / "summary_huake_mc.json").read_text())["stamp"]
        for item in ("n_paths", "seed", "sampling"):
            assert manifest[item] == [summary[item]], (extra, item)
        assert summary["sampling"] == ("importance" if k else "crude")
        assert summary["n_paths"] > 1000 if k == 0 else summary["n_paths"] == 1000


def test_long_form_cash_flows_hold_the_wide_tables_numbers():
    """``cashflows_long()`` beside the wide table, for Monte Carlo (with se) and deterministic
    results alike: every (period, tranche, item) cell of the wide table once."""
    mc = ae.simulate(n_paths=1_000, seed=2, progress=False)
    det = ae.run_deterministic(None, ["huake_base", "cdr_stress"])
    pairs = [
        (mc.cashflows, mc.cashflows_long()),
        (det["cdr_stress"].cashflows, det["cdr_stress"].cashflows_long()),
    ]
    for wide, long in pairs:
        assert set(long["tranche"]) == {"A", "Sub"}
        for r in long.sample(20, random_state=0).itertuples():
            row = wide[wide["period"] == r.period].iloc[0]
            assert row[f"{r.tranche}.{r.item}"] == r.value
            if "se" in long.columns:
                assert row[f"{r.tranche}.{r.item}_se"] == r.se
        n_items = sum(1 for c in wide.columns if c[:2] in ("A.", "Su") and not c.endswith("_se"))
        assert len(long) == len(wide) * n_items
    assert "se" in mc.cashflows_long().columns and "se" not in det.cashflows_long().columns


def test_help_and_usage_errors_load_no_kernels():
    """``--help``, ``--version`` and a usage error answer before the commands load (numba,
    pandas, the kernels: about a second of a two-second answer)."""
    probe = (
        "import sys\n"
        "from abs_engine.cli import main\n"
        "codes = []\n"
        "for argv in (['--help'], ['--version'], ['run', '--help'], ['run', '--paths', '0']):\n"
        "    try:\n"
        "        codes.append(main(argv))\n"
        "    except SystemExit as exc:\n"
        "        codes.append(exc.code)\n"
        "heavy = sorted(m for m in ('numba', 'pandas', 'abs_engine.commands',\n"
        "               'abs_engine.kernels') if m in sys.modules)\n"
        "print(codes, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "[0, 0, 0, 2] []", out.stdout[-500:]
