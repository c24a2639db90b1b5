"""Hostile input on the command line: flags and numbers, grid specs, curve files, output
destinations, ``synth``, memory. Every case runs ``abs_engine.cli.main`` in-process and must
exit with status 2 and one message on stderr naming the flag and the offending value, with no
traceback, before anything is simulated or written.

The corpus is generated: each flag crossed with the hostile values that fit it (NaN and
infinities, out-of-range numbers, malformed text, duplicates). Placeholders in the argument
lists are filled per test: ``{tmp}`` (a fresh folder), ``{file}`` (a regular file in it),
``{long}`` (a 5,000-character path), ``{data}`` (the shared folder of curve files).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import abs_engine.cli as cli
import abs_engine.commands as commands
from abs_engine.cli import MAX_GRID_VALUES, MAX_LEDGER_PATHS, main
from tests.conftest import ROOT, base_deal, snapshot

LONG = "/tmp/" + "x" * 4995  # 5,000 characters


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    flag: str  # must appear in stderr
    value: str  # must appear in stderr (the offending value, or a clear word for it)
    writes: bool = False  # an output-destination case: nothing may be written under {tmp}


def _c(id: str, argv: str | list[str], flag: str, value: str, writes: bool = False) -> Case:
    args = argv.split() if isinstance(argv, str) else list(argv)
    # a value that starts with "-" but is not a plain negative number ("-inf") must be given
    # as --flag=VALUE (argparse takes it for an option otherwise, as for any program)
    for k in range(len(args) - 1, 0, -1):
        if args[k - 1].startswith("--") and args[k].startswith("-") and args[k][1:2].isalpha():
            args[k - 1 : k + 1] = [f"{args[k - 1]}={args[k]}"]
    return Case(id, tuple(args), flag, value, writes)


NONFINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999"]
GARBAGE = ["abc", "", "1,2", "0x10"]


def _flag_cases() -> Iterator[Case]:
    # --- integers: --paths, --seed, --threads on run and the solvers ---------------------------
    for v in ["0", "-1", "-1000", "10000000001", "1e11", "1.5", *NONFINITE[:3], *GARBAGE]:
        yield _c(f"run-paths-{v!r}", ["run", "--paths", v], "--paths", repr(v))
    for v in ["-1", "9223372036854775808", "18446744073709551616", "1.5", "nan", "x"]:
        yield _c(f"run-seed-{v}", ["run", "--seed", v], "--seed", repr(v))
    for v in ["0", "-1", "100000", "nan", "two"]:
        yield _c(f"run-threads-{v}", ["run", "--threads", v], "--threads", repr(v))
    solver_base = {
        "size": ["size", "--tranche", "A", "--target", "A"],
        "price": ["price", "--tranche", "A", "--curve", "0.02"],
        "breakeven": ["breakeven", "--tranche", "A", "--param", "pd_multiplier"],
        "sensitivity": ["sensitivity", "--x", "pd_multiplier=1,2", "--y", "recovery=0.2"],
    }
    for cmd, base in solver_base.items():
        for v in ["0", "-5", "1e11", "nan"]:
            yield _c(f"{cmd}-paths-{v}", [*base, "--paths", v], "--paths", repr(v))
        for v in ["-1", "9223372036854775808", "inf"]:
            yield _c(f"{cmd}-seed-{v}", [*base, "--seed", v], "--seed", repr(v))
        yield _c(f"{cmd}-unknown-tranche", _with_tranche(base, "ZZZ"), "--tranche", "'ZZZ'")
    yield _c("size-junior-tranche", "size --tranche Sub --target A", "--tranche", "'Sub'")
    yield _c("size-empty-tranche", ["size", "--tranche", "", "--target", "A"], "--tranche", "''")
    # named by the flag, not by the API's argument ("simulate_compiled: sampling_target") or
    # by nothing at all (size-stack's targets)
    yield _c("run-sampling-target-unknown", "run --sampling importance --sampling-target ZZ",
             "--sampling-target", "'ZZ'")  # fmt: skip
    yield _c("run-sampling-target-crude", "run --sampling-target A", "--sampling-target",
             "--sampling importance")  # fmt: skip
    yield _c("run-target-tranche-unknown", "run --target-se 0.001 --target-tranche ZZ",
             "--target-tranche", "'ZZ'")  # fmt: skip
    yield _c("size-stack-unknown-rating", "size-stack --target A=ZZ", "--target", "'ZZ'")
    yield _c("size-stack-unknown-tranche", "size-stack --target A=AAA=AA", "--target", "'A=AAA'")

    # --- stress ------------------------------------------------------------------------------
    for v in ["2", "-0.1", "1.0001", *NONFINITE, "x"]:
        yield _c(f"stress-recovery-{v}", ["stress", "--recovery", v], "--recovery", repr(v))
    for v in ["-1", "121", "1.5", "nan", "x"]:
        yield _c(f"stress-lag-{v}", ["stress", "--lag", v], "--lag", repr(v))
    for v in ["0", "-3", "100001", "nan"]:
        yield _c(f"stress-period-{v}", ["stress", "--period", v], "--period", repr(v))
    yield _c("stress-period-beyond-deal", "stress --period 13", "--period", "13")
    for v in ["0", "-1", "1001", "inf"]:
        yield _c(f"stress-largest-{v}", ["stress", "--largest", v], "--largest", repr(v))
    yield _c("stress-unknown-tranche", "stress --tranche ZZZ", "--tranche", "'ZZZ'")
    yield _c("stress-tranche-twice", "stress --tranche A --tranche A", "--tranche", "twice")

    # --- size --------------------------------------------------------------------------------
    for v in ["0", "1", "2", "-0.1", *NONFINITE, "x"]:
        yield _c(
            f"size-target-el-{v}",
            ["size", "--tranche", "A", "--target-el", v],
            "--target-el",
            repr(v),
        )
    for v in ["AAAA", "aaa", ""]:
        yield _c(
            f"size-target-{v!r}", ["size", "--tranche", "A", "--target", v], "--target", repr(v)
        )

    # --- price -------------------------------------------------------------------------------
    for v in [*NONFINITE, "2", "-0.1", "1.5"]:
        yield _c(f"price-curve-{v}", ["price", "--tranche", "A", "--curve", v], "--curve", repr(v))
    for v in [*NONFINITE, "10001", "-20000"]:
        yield _c(
            f"price-spread-{v}",
            ["price", "--tranche", "A", "--curve", "0.02", "--spread-bps", v],
            "--spread-bps",
            repr(v),
        )

    # --- breakeven ---------------------------------------------------------------------------
    be = ["breakeven", "--tranche", "A"]
    for v in ["nope", "", "PD_MULTIPLIER", "pd multiplier"]:
        yield _c(f"breakeven-param-{v!r}", [*be, "--param", v], "--param", repr(v))
    pd = [*be, "--param", "pd_multiplier"]
    for v in [
        "el_above:nan",
        "el_above:inf",
        "pd_above:-inf",
        "irr_below:nan",
        "el_above:2",
        "pd_above:-0.1",
        "irr_below:5",
        "el_above:",
        "el_above:x",
        "first_loss:0.5",
        "nope",
        ":0.1",
    ]:
        yield _c(f"breakeven-condition-{v}", [*pd, "--condition", v], "--condition", repr(v))
    for v in ["0.5", "1,2,3", "1,1", "a,b", "", "nan,1", "0,inf", "0,1e999"]:
        yield _c(f"breakeven-range-{v!r}", [*pd, "--range", v], "--range", repr(v))
    for param, v in [
        ("pd_multiplier", "-1,1"),
        ("pd_multiplier", "0,60"),
        ("recovery", "1.5,0"),
        ("correlation", "0,1"),
        ("cpr", "0,2"),
        ("ip_haircut", "-0.5,0.5"),
    ]:
        yield _c(
            f"breakeven-range-{param}-{v}",
            [*be, "--param", param, f"--range={v}"],
            "--range",
            repr(v),
        )

    # --- sensitivity grids -------------------------------------------------------------------
    many = "pd_multiplier=" + ",".join(str(k) for k in range(1, MAX_GRID_VALUES + 2))
    grids = [
        "noequals",
        "pd_multiplier=",
        "=1,2",
        "pd_multiplier=1,1",
        "recovery=0.1,0.10",
        "pd_multiplier=1,,2",
        "pd_multiplier=a",
        "nope=1",
        "pd_multiplier=-1",
        "pd_multiplier=nan",
        "pd_multiplier=1,inf",
        "correlation=1",
        "recovery=1.5",
        "cpr=2",
        many,
    ]
    for v in grids:
        short = v if len(v) < 30 else v[:20]
        yield _c(
            f"sensitivity-x-{short!r}",
            ["sensitivity", "--x", v, "--y", "recovery=0.2"],
            "--x",
            repr(v)[:40],
        )
    for v in ["recovery=nan", "correlation=-0.1", "noequals", "cpr=0.1,0.1"]:
        yield _c(
            f"sensitivity-y-{v}",
            ["sensitivity", "--x", "pd_multiplier=1", "--y", v],
            "--y",
            repr(v),
        )
    for p in ["pd_multiplier", "recovery"]:
        yield _c(
            f"sensitivity-same-axis-{p}",
            ["sensitivity", "--x", f"{p}=0.5", "--y", f"{p}=0.2,0.3"],
            "--x and --y",
            repr(p),
        )
    yield _c(
        "sensitivity-tranche-empty",
        ["sensitivity", "--x", "pd_multiplier=1", "--y", "recovery=0.2", "--tranche", ""],
        "--tranche",
        "''",
    )

    # --- run: options that need --out, ledger paths ------------------------------------------
    yield _c("run-keep-paths-without-out", "run --keep-paths", "--keep-paths", "--out")
    yield _c("run-ledger-paths-without-out", "run --ledger-paths 0", "--ledger-paths", "--out")
    too_many = ",".join(str(k) for k in range(MAX_LEDGER_PATHS + 1))
    for v in ["a", "-1", "", "0,,1", "1.5", "0,0", "nan", too_many]:
        yield _c(
            f"run-ledger-paths-{v[:12]!r}",
            ["run", "--ledger-paths", v, "--out", "{tmp}/out"],
            "--ledger-paths",
            repr(v)[:40],
            writes=True,
        )
    yield _c(
        "run-ledger-path-beyond-paths",
        "run --paths 100 --ledger-paths 0,100 --out {tmp}/out",
        "--ledger-paths",
        "100",
        writes=True,
    )
    yield _c(  # a targeted run's first round is capped at --max-paths (a validator: the run's
        # own check then named "simulate_compiled: ledger_paths[0]" after the up-front one passed)
        "run-ledger-path-beyond-the-cap",
        "run --paths 2000 --max-paths 1000 --target-se 0.01 --ledger-paths 1500 --out {tmp}/out",
        "--ledger-paths",
        "1,500",
        writes=True,
    )
    yield _c(  # the default cap of a targeted run (10,000,000 paths) counts as well
        "run-ledger-path-beyond-the-default-cap",
        "run --paths 20000000 --target-se 0.01 --ledger-paths 15000000 --out {tmp}/out",
        "--ledger-paths",
        "15,000,000",
        writes=True,
    )
    yield _c(  # without a target there is no cap: --max-paths is the mistake named
        "run-max-paths-without-target-and-a-ledger-path",
        "run --paths 200 --max-paths 100 --ledger-paths 150 --out {tmp}/out",
        "--max-paths",
        "--target-se",
        writes=True,
    )
    # --- found by fuzzing: numbers that are not ASCII or not exactly integers, flags twice --------
    for v in ["١٢", "１", "1e-400", "0.5e-300"]:
        yield _c(f"run-paths-odd-{v!r}", ["run", "--paths", v], "--paths", repr(v))
        yield _c(f"stress-lag-odd-{v!r}", ["stress", "--lag", v], "--lag", repr(v))
        yield _c(f"run-seed-odd-{v!r}", ["run", "--seed", v], "--seed", repr(v))
    for v in ["١٢", "１٠"]:
        yield _c(
            f"synth-obligors-odd-{v!r}",
            ["synth", "{tmp}/pools", "--obligors", v],
            "--obligors",
            repr(v),
            True,
        )
        yield _c(f"stress-recovery-odd-{v!r}", ["stress", "--recovery", v], "--recovery", repr(v))
        yield _c(
            f"breakeven-range-odd-{v!r}", [*pd, "--range", f"0,{v}"], "--range", repr(f"0,{v}")
        )
        yield _c(
            f"sensitivity-x-odd-{v!r}",
            ["sensitivity", "--x", f"pd_multiplier={v}", "--y", "recovery=0.2"],
            "--x",
            repr(f"pd_multiplier={v}"),
        )
    yield _c("price-curve-arabic-digit", "price --tranche A --curve ١", "--curve", "١")
    for argv, flag in [
        ("run --paths 10 --paths 20", "--paths"),
        ("run --seed 1 --seed 1", "--seed"),
        ("run --out {tmp}/a --out {tmp}/b", "--out"),
        ("stress --lag 1 --lag 2", "--lag"),
        ("size --tranche A --target A --scenario huake_mc -s huake_mc", "--scenario"),
        ("price --tranche A --curve 0.02 --curve 0.03", "--curve"),
        ("sensitivity --x pd_multiplier=1 --y recovery=0.2 --tranche A --tranche Sub", "--tranche"),
        ("synth {tmp}/pools --obligors 10 --obligors 12", "--obligors"),
    ]:
        yield _c(f"twice-{argv.split()[0]}-{flag}", argv, flag, "given twice", writes=True)
    yield _c(
        "synth-amortization-5000-chars",
        ["synth", "{tmp}/pools", "--obligors", "10", "--amortization", "b" * 5000],
        "--amortization",
        "bbbbbbbb",
        True,
    )
    for v in ["\u202ename", "a\u200bb", "x\u2028y"]:
        yield _c(
            f"synth-name-invisible-{v!r}",
            ["synth", "{tmp}/pools", "--obligors", "10", "--name", v],
            "--name",
            "formatting",
            True,
        )

    for cmd in ("run", "stress"):
        yield _c(f"{cmd}-unknown-flag", [cmd, "--bogus", "1"], "--bogus", "--bogus")
    yield _c("no-command", [], "command", "required")
    yield _c("unknown-command", ["fly"], "command", "'fly'")


def _with_tranche(base: list[str], name: str) -> list[str]:
    if "--tranche" in base:
        k = base.index("--tranche")
        return [*base[: k + 1], name, *base[k + 2 :]]
    return [*base, "--tranche", name]


CURVES = {
    "empty.csv": b"",
    "blank.csv": b"\n\n  \n",
    "header_only.csv": b"tenor_years,zero_rate\n",
    "binary.csv": bytes(range(256)) * 4,
    "latin1.csv": "tenor_years,zero_rate\n1,0.02 é\n".encode("latin-1"),
    "missing_columns.csv": b"tenor,rate\n1,0.02\n",
    "nan_tenor.csv": b"tenor_years,zero_rate\nnan,0.02\n2,0.03\n",
    "negative_tenor.csv": b"tenor_years,zero_rate\n-1,0.02\n2,0.03\n",
    "zero_tenor.csv": b"tenor_years,zero_rate\n0,0.02\n2,0.03\n",
    "unsorted.csv": b"tenor_years,zero_rate\n3,0.02\n1,0.03\n",
    "duplicate.csv": b"tenor_years,zero_rate\n1,0.02\n1,0.03\n",
    "nan_rate.csv": b"tenor_years,zero_rate\n1,nan\n2,0.03\n",
    "inf_rate.csv": b"tenor_years,zero_rate\n1,inf\n2,0.03\n",
    "huge_rate.csv": b"tenor_years,zero_rate\n1,5\n2,0.03\n",
    "text_rate.csv": b"tenor_years,zero_rate\n1,two\n",
    "ragged.csv": b'tenor_years,zero_rate\n1,0.02,7,8\n"unclosed\n',
    "duplicate_columns.csv": b"tenor_years,zero_rate,zero_rate\n1,0.02,0.03\n",
}
CURVE_WORDS = {
    "empty.csv": "empty",
    "blank.csv": "empty",
    "header_only.csv": "no rows",
    "binary.csv": "binary",
    "latin1.csv": "UTF-8",
    "missing_columns.csv": "columns",
    "nan_tenor.csv": "tenor",
    "negative_tenor.csv": "tenor",
    "zero_tenor.csv": "tenor",
    "unsorted.csv": "increase",
    "duplicate.csv": "increase",
    "nan_rate.csv": "zero rate",
    "inf_rate.csv": "zero rate",
    "huge_rate.csv": "zero rate",
    "text_rate.csv": "zero rate",
    "ragged.csv": "curve",
    "duplicate_columns.csv": "column",
}


def _file_cases() -> Iterator[Case]:
    price = ["price", "--tranche", "A", "--curve"]
    for name in CURVES:
        yield _c(f"curve-file-{name}", [*price, f"{{data}}/{name}"], "--curve", name)
    yield _c("curve-file-missing", [*price, "{data}/nope.csv"], "--curve", "nope.csv")
    yield _c("curve-file-directory", [*price, "{data}"], "--curve", "folder")
    yield _c("curve-file-long-path", [*price, "{long}"], "--curve", "xxxxxxxx")
    yield _c("curve-file-long-name", [*price, "{data}/" + "c" * 300], "--curve", "ccccccc")
    yield _c("curve-file-nul", [*price, "{data}/a\x00b.csv"], "--curve", "path")
    yield _c(
        "rating-table-binary",
        ["size", "--tranche", "A", "--target", "A", "--rating-table", "{data}/binary.csv"],
        "--rating-table",
        "binary.csv",
    )
    yield _c(
        "rating-table-directory",
        ["size", "--tranche", "A", "--target", "A", "--rating-table", "{data}"],
        "--rating-table",
        "the path is a folder, not a rating table",
    )
    yield _c(
        "rating-table-long-path",
        ["size", "--tranche", "A", "--target", "A", "--rating-table", "{long}"],
        "--rating-table",
        "too long",
    )
    for cmd in ("run", "validate", "stress", "size"):
        extra = ["--tranche", "A", "--target", "A"] if cmd == "size" else []
        yield _c(f"{cmd}-deal-long-path", [cmd, "{long}", *extra], "deal", "too long")
    yield _c("run-scenario-long-path", ["run", "-s", "{long}"], "--scenario", "too long")
    yield _c("validate-scenario-long", ["validate", "{data}/x.toml", "-s", "{long}"], "-s", "long")
    big = "{data}/huge_paths_mc.toml"
    yield _c("run-scenario-n-paths-too-large", ["run", "-s", big], "n_paths", "100000000000")


def _out_cases() -> Iterator[Case]:
    dests = {
        "existing-file": ("{file}", "must be a folder"),
        "under-a-file": ("{file}/sub", "is a file"),
        "deep-under-a-file": ("{file}/a/b/c", "is a file"),
        "dotdot-under-a-file": ("{file}/../out", "is a file"),
        "proc": ("/proc", "not writable"),
        "in-proc": ("/proc/abs_engine_out", "not writable"),
        "under-proc-file": ("/proc/self/status/out", "is a file"),
        "sys": ("/sys/abs_engine_out", "not writable"),
        "long-path": ("{long}", "too long"),
        "long-name": ("{tmp}/" + "n" * 300, "too long"),
        "long-name-deeper": ("{tmp}/missing/" + "n" * 300, "255"),
        "nul": ("{tmp}/a\x00b", "path"),
        "empty": ("", "''"),
        "blank": (" ", "' '"),
    }
    for key, (dest, word) in dests.items():
        yield _c(f"run-out-{key}", ["run", "--out", dest], "--out", word, writes=True)
        yield _c(
            f"run-mc-out-{key}",
            ["run", "--paths", "100", "--keep-paths", "--out", dest],
            "--out",
            word,
            writes=True,
        )
        yield _c(
            f"run-det-out-{key}", ["run", "-s", "huake_base", "--out", dest], "--out", word, True
        )
        yield _c(f"synth-out-{key}", ["synth", dest, "--obligors", "10"], "OUT", word, True)
    for n in ["1000000000", "10000000000"]:
        yield _c(
            f"run-keep-paths-memory-{n}",
            ["run", "--paths", n, "--keep-paths", "--out", "{tmp}/out"],
            "--keep-paths",
            "GiB",
            writes=True,
        )


def _synth_cases() -> Iterator[Case]:
    base = ["synth", "{tmp}/pools"]
    for v in ["7", "0", "-1", "2000000", "1000001", "1e7", "nan", "x"]:
        yield _c(f"synth-obligors-{v}", [*base, "--obligors", v], "--obligors", repr(v), True)
    ok = [*base, "--obligors", "10"]
    for v in ["0", "-1", "121", "100000", "nan", "1.5"]:
        yield _c(f"synth-periods-{v}", [*ok, "--periods", v], "--periods", repr(v), True)
    yield _c(
        "synth-obligor-periods",
        [*base, "--obligors", "1000000", "--periods", "25"],
        "--obligors × --periods",
        "25,000,000",
        True,
    )
    for flag, values in {
        "--pd": ["1", "-0.1", "1.5", *NONFINITE[:4]],
        "--correlation": ["1", "-0.1", "2", "nan", "inf"],
        "--recovery": ["1.1", "-0.5", "nan", "-inf"],
        "--seed": ["-1", "9223372036854775808", "nan"],
    }.items():
        for v in values:
            yield _c(f"synth{flag}-{v}", [*ok, flag, v], flag, repr(v), True)
    for v in [
        "0.1,0.05",
        "0.05,0.05",
        "0,0.1",
        "0.1,1",
        "1.5",
        "-0.1",
        "x",
        "",
        "0.1,,0.2",
        "nan",
        "0.1,inf",
        ",".join(f"0.{k:02d}" for k in range(1, 23)),
    ]:
        yield _c(f"synth-attach-{v[:14]!r}", [*ok, "--attach", v], "--attach", repr(v)[:30], True)
    for v in ["../x", "a/b", "/abs", "..", ".", ".hidden", "a\\b", "", "x" * 62, "x\ny", "c:d"]:
        yield _c(f"synth-name-{v[:12]!r}", [*ok, "--name", v], "--name", repr(v)[:40], True)
    yield _c("synth-amortization", [*ok, "--amortization", "balloon"], "--amortization", "balloon")


CASES = [*_flag_cases(), *_file_cases(), *_out_cases(), *_synth_cases()]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile_data")
    for name, content in CURVES.items():
        (d / name).write_bytes(content)
    (d / "huge_paths_mc.toml").write_text(
        'schema_version = 1\nkind = "monte_carlo"\nname = "huge"\nn_paths = 100000000000\n'
    )
    return d


@pytest.fixture(autouse=True)
def nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A case that slips past validation must not start a simulation: fail loudly instead."""

    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("a hostile case reached a simulation")

    import abs_engine.solvers.agency as agency
    import abs_engine.solvers.structuring as structuring

    monkeypatch.setattr(commands, "start_simulation_compiled", refuse)
    monkeypatch.setattr(commands, "run_deterministic", refuse)
    monkeypatch.setattr(structuring, "start_simulation_compiled", refuse)
    monkeypatch.setattr(agency, "_run", refuse)


def _fill(argv: tuple[str, ...], tmp: Path, data: Path) -> list[str]:
    file = tmp / "a_file.txt"
    subs = {"{tmp}": str(tmp), "{file}": str(file), "{long}": LONG, "{data}": str(data)}
    out = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        out.append(a)
    return out


def test_corpus_is_large_and_ids_are_unique():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_command_line_exits_2_with_one_clear_message(
    case: Case, tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "a_file.txt").write_text("keep me")
    before = snapshot(tmp_path)
    rc = main(_fill(case.argv, tmp_path, data_dir))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and "pydantic" not in err and "ValidationError" not in err
    assert err.startswith("error: "), err
    assert sum(line.startswith("error") for line in err.splitlines()) == 1, err
    assert case.flag in err, err
    assert case.value in err, err
    assert len(err) < 2_000, err
    if case.writes:
        assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes regardless of permissions")
def test_unreadable_curve_and_unwritable_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    curve = tmp_path / "curve.csv"
    curve.write_text("tenor_years,zero_rate\n1,0.02\n")
    curve.chmod(0)
    assert main(["price", "--tranche", "A", "--curve", str(curve)]) == 2
    err = capsys.readouterr().err
    assert "--curve" in err and "permission" in err.lower() and "Traceback" not in err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    for argv in (
        ["run", "--out", str(locked / "out")],
        ["synth", str(locked), "--obligors", "10"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "not writable" in err and str(locked) in err and "Traceback" not in err
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("under", [False, True], ids=["the-folder", "a-parent"])
def test_an_output_folder_at_a_link_to_nothing_is_refused_before_the_run(
    under: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """``--out`` at a symbolic link whose target does not exist passed the check, ran, then
    failed to write with exit 1: "file exists; nothing was changed there: it holds its
    previous outputs", of a folder that never held any. It is refused up front (exit 2),
    naming the link and where it points."""
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "gone" / "dir")
    out = link / "sub" if under else link
    for argv in (
        ["run", "-s", "huake_base", "--out", str(out)],
        ["report", "--out", str(out)],
        ["synth", str(out), "--obligors", "10"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "symbolic link to" in err and "leads nowhere" in err, (argv, err)
        assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling"]
    assert not (tmp_path / "gone").exists()
    # a chain of links: the first hop exists, as a link to nothing itself
    (tmp_path / "chain").symlink_to("dangling")
    assert main(["run", "-s", "huake_base", "--out", str(tmp_path / "chain")]) == 2
    err = capsys.readouterr().err
    assert "symbolic link to dangling, which leads nowhere" in err, err


@pytest.mark.parametrize("field", ["base_scenario", "deterministic_scenario"])
def test_validate_checks_the_deals_named_scenarios(
    field: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """``validate`` answered OK for a deal whose base_scenario names no scenario, though
    ``run`` and ``stress`` then fail on it: the names are checked, at the deal's field."""
    deal = tmp_path / "deal.json"
    deal.write_text(json.dumps(base_deal(**{field: "no_such_scenario"})))
    assert main(["validate", str(deal)]) == 2
    err = capsys.readouterr().err
    assert f"{field}: scenario cannot be loaded" in err and "'no_such_scenario'" in err, err
    deal.write_text(json.dumps(base_deal(deterministic_scenario="huake_mc")))
    assert main(["validate", str(deal)]) == 2
    assert "deterministic_scenario: names a Monte Carlo scenario" in capsys.readouterr().err


def test_validate_reports_each_problem_of_a_named_scenario_file_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A scenario file the deal names that loads with bad values: ``validate`` kept only
    the first problem, at the deal's ``base_scenario`` with the scenario's name as its value
    (``run`` named each at its own field). Every problem now stands in the scenario file, at
    its field and value, as ``run`` reports them."""
    sc = (ROOT / "scenarios" / "huake_mc.toml").read_text()
    sc = sc.replace("[defaults]\n", "[defaults]\npd_multiplier = 100\n", 1)
    sc = "seed = -3\n" + "\n".join(ln for ln in sc.splitlines() if not ln.startswith("seed"))
    (tmp_path / "my_mc.toml").write_text(sc)
    deal = tmp_path / "deal.json"
    deal.write_text(json.dumps(base_deal(base_scenario="my_mc.toml")))
    both = tmp_path / "both.json"  # both fields naming the file: its problems listed once
    both.write_text(json.dumps(base_deal(base_scenario="my_mc.toml",
                                         deterministic_scenario="my_mc.toml")))  # fmt: skip
    for argv in (["validate", str(deal)], ["run", str(deal), "--paths", "100"],
                 ["validate", str(both)]):  # fmt: skip
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "2 problems found" in err, (argv, err)
        assert "my_mc.toml: seed:" in err and "(got -3)" in err, (argv, err)
        assert "my_mc.toml: defaults.pd_multiplier:" in err and "(got 100)" in err, (argv, err)
        assert "base_scenario" not in err, (argv, err)


def test_valid_arguments_still_parse():
    """Control: the boundaries themselves are accepted by the parser."""
    p = cli._parser()
    a = p.parse_args(["run", "--paths", "10000000000", "--seed", str(2**63 - 1)])
    assert a.paths == 10_000_000_000 and a.seed == 2**63 - 1
    a = p.parse_args(["run", "--paths", "1e6", "--ledger-paths", "0,17"])
    assert a.paths == 1_000_000 and a.ledger_paths == [0, 17]
    a = p.parse_args(["run", "--paths", "1_000", "--seed", "12.0", "--threads", "+1"])
    assert (a.paths, a.seed, a.threads) == (1_000, 12, 1)
    a = p.parse_args(["stress", "--recovery", "1e-400", "--lag", " 4 "])
    assert (a.recovery, a.lag) == (0.0, 4)
    a = p.parse_args(["stress", "--recovery", "1", "--lag", "120", "--largest", "1000"])
    assert (a.recovery, a.lag, a.largest) == (1.0, 120, 1000)
    a = p.parse_args(["breakeven", "--tranche", "A", "--param", "recovery", "--range", "1,0"])
    assert a.range == "1,0"
    a = p.parse_args(["sensitivity", "--x", "correlation=0,0.99", "--y", "cpr=0,1"])
    assert a.x == ("correlation", [0.0, 0.99]) and a.y == ("cpr", [0.0, 1.0])
    a = p.parse_args(["synth", "out", "--obligors", "1000000", "--attach", "0.01,0.5,0.99"])
    assert a.attach == [0.01, 0.5, 0.99] and a.obligors == 1_000_000
    a = p.parse_args(["synth", "out", "--obligors", "8", "--name", "pool-1.v2", "--pd", "0"])
    assert a.name == "pool-1.v2" and a.pd == 0.0
    a = p.parse_args(["price", "--tranche", "A", "--curve", "-0.05", "--spread-bps", "-10000"])
    assert a.curve == "-0.05" and a.spread_bps == -10_000


def test_python_api_argument_errors_are_abs_engine_errors():
    import math

    import abs_engine as ae
    from abs_engine.errors import AbsEngineError
    from abs_engine.solvers import condition, large_obligor_test, load_curve, with_parameter
    from abs_engine.synthetic import check_name, synthetic_deal

    for bad in (-5, math.nan, math.inf, 2.0, True, None, object(), [0.02]):
        with pytest.raises(AbsEngineError):
            load_curve(bad)  # type: ignore[arg-type]
    for kind, value in (("el_above", math.nan), ("pd_above", 2.0), ("first_loss", "x")):
        with pytest.raises(AbsEngineError):
            condition(kind, value)  # type: ignore[arg-type]
    cd = ae.compile_deal(ae.load_deal())
    for kw in (
        {"max_obligors": -1},
        {"max_obligors": 1.5},
        {"period": 0},
        {"period": 13},
        {"recovery_rate": math.nan},
        {"recovery_lag": -1},
    ):
        with pytest.raises(AbsEngineError):
            large_obligor_test(cd, **kw)  # type: ignore[arg-type]
    with pytest.raises(AbsEngineError):
        large_obligor_test(cd, "ZZZ")
    sc = ae.load_scenario("huake_mc", ae.load_deal())
    for name, value in (("pd_multiplier", math.nan), ("correlation", 1.0), ("nope", 1.0)):
        with pytest.raises(AbsEngineError):
            with_parameter(sc, name, value)  # type: ignore[arg-type]
    # "+pool" wrote a scenario "+pool_mc" the engine then refused (a spreadsheet would run
    # the cell): the stem is refused up front
    for name in ("../x", "a/b", "..", "", "+pool", "=x", "-p", "@p"):
        with pytest.raises(AbsEngineError):
            check_name(name)
    assert check_name("pool+1") == "pool+1"
    for kw in (
        {"n_periods": 100_000},
        {"attachments": (0.1, 0.05)},
        {"annual_pd": math.nan},
        {"seed": -1},
    ):
        with pytest.raises(AbsEngineError):
            synthetic_deal(10, **kw)  # type: ignore[arg-type]


def test_keep_paths_memory_check():
    from abs_engine.errors import AbsEngineError
    from abs_engine.simulation import check_keep_paths_memory, kept_bytes_per_path

    check_keep_paths_memory(1_000_000, kept_bytes_per_path(2))  # about 0.25 GB: fine
    with pytest.raises(AbsEngineError, match=r"GiB"):
        check_keep_paths_memory(10**9, kept_bytes_per_path(2))


def test_synth_writes_only_inside_the_output_folder(tmp_path: Path, capsys):
    """Control for the --name cases: a plain name writes three files in the folder."""
    out = tmp_path / "pools"
    assert main(["synth", str(out), "--obligors", "8", "--name", "p1", "--periods", "4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["p1.json", "p1_mc.json", "p1_tape.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pools"]


def test_synth_s_longest_name_gives_files_that_load(tmp_path: Path):
    """The longest name ``synth`` takes leaves its scenario, ``<name>_mc``, within a scenario
    name's 64 characters (a 62-character name was taken, and its scenario then failed to
    load: the "run it" command ``synth`` printed did not run)."""
    name = "n" * 61
    assert main(["synth", str(tmp_path), "--obligors", "8", "--name", name, "--periods", "4"]) == 0
    import abs_engine as ae

    deal = ae.load_deal(tmp_path / f"{name}.json")
    assert ae.load_scenario(tmp_path / f"{name}_mc.json", deal).name == f"{name}_mc"


def test_breakeven_range_may_point_either_way():
    """An equity tranche's loss falls as correlation rises: lo above hi is accepted; the bounds
    and lo != hi are still checked."""
    from types import SimpleNamespace

    from abs_engine.api import load_deal
    from abs_engine.errors import AbsEngineError

    deal = load_deal(Path(__file__).resolve().parents[1] / "waterfalls" / "huake_2025.toml")
    sub = [t.name for t in deal.tranches][-1]
    for param, rng in [("correlation", "0.95,0"), ("pd_multiplier", "2,1"), ("recovery", "0,1")]:
        args = SimpleNamespace(command="breakeven", tranche=sub, param=param, range=rng)
        commands.check_solver_args(args, deal)  # no error
    for rng in ["1,0", "0.5,0.5"]:
        args = SimpleNamespace(command="breakeven", tranche=sub, param="correlation", range=rng)
        with pytest.raises(AbsEngineError, match="--range|differ"):
            commands.check_solver_args(args, deal)


@pytest.mark.parametrize(
    "name", ["a\x00b", "tab\there", "\U0001d11e" * 62], ids=["nul", "control", "too-long"]
)
def test_scenario_names_unusable_as_out_file_names_are_refused_up_front(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    sc = tmp_path / "sc.json"
    sc.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "kind": "deterministic",
                "name": name,
                "defaults": {"kind": "none"},
            }
        )
    )
    assert main(["run", "-s", str(sc), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(sc) in err and "name:" in err, err
    assert repr(name)[:20] in err, err
    assert not (tmp_path / "out").exists()


def test_stress_largest_beyond_the_pool_is_refused(capsys: pytest.CaptureFixture[str]):
    assert main(["stress", "--largest", "9"]) == 2
    err = capsys.readouterr().err
    assert "--largest" in err and "9" in err and "8 obligors" in err, err


def test_curve_folder_message_reads_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from abs_engine.errors import DealError
    from abs_engine.solvers.structuring import load_curve

    with pytest.raises(DealError) as info:
        load_curve(str(tmp_path))
    msg = str(info.value)
    assert "is a folder" in msg and msg.count(str(tmp_path)) == 1, msg
    assert "cannot read the curve" not in msg


def test_a_warning_is_one_warning_line(monkeypatch: pytest.MonkeyPatch, capsys):
    """A command's Python warnings (a chart's missing glyphs, no CJK font) print as one
    ``warning: ...`` line, as the deal's warnings do, not Python's format with the source
    file and the code line that warned."""
    import warnings

    def warns(args: object) -> int:
        warnings.warn("something to see", RuntimeWarning, stacklevel=2)
        return 0

    monkeypatch.setattr(cli, "_dispatch", warns)
    assert main(["validate", "x.toml"]) == 0
    assert capsys.readouterr().err == "warning: something to see\n"


@pytest.mark.parametrize("value", ["0", "-1", " 0 "])
def test_numba_threads_below_one_is_a_clear_error(value, monkeypatch, capsys):
    """NUMBA_NUM_THREADS=0 stopped ``import numba`` with a ValueError: a traceback and exit 1
    from every command, ``validate`` included (checked before the command's imports)."""
    monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    with pytest.raises(SystemExit) as ei:
        cli._check_numba_threads()
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: NUMBA_NUM_THREADS:") and repr(value.strip()) in err
    for fine in ("1", "abc", "1.5", ""):  # numba's own: a warning and its default
        monkeypatch.setenv("NUMBA_NUM_THREADS", fine)
        cli._check_numba_threads()


def test_compile_wait_falls_back_to_its_default(monkeypatch):
    """ABS_ENGINE_COMPILE_WAIT_S=abc stopped the commands' imports with a ValueError; like
    the other variables it falls back to its default for a value it cannot use."""
    from abs_engine import kernel_compile

    for bad in ("abc", "nan", "inf", "-5", "0", ""):
        monkeypatch.setenv("ABS_ENGINE_COMPILE_WAIT_S", bad)
        assert kernel_compile._wait_s() == 120.0, bad
    monkeypatch.setenv("ABS_ENGINE_COMPILE_WAIT_S", " 30 ")
    assert kernel_compile._wait_s() == 30.0


def test_several_deals_with_a_repeated_scenario_are_refused_before_any_runs(capsys):
    """Two deals with -s huake_base twice: the first deal was printed, then the second
    stopped on the repeat (named by the API's function, not the flag)."""
    deal = str(ROOT / "waterfalls" / "huake_2025.toml")
    assert main(["run", deal, deal, "-s", "huake_base", "-s", "huake_base"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "two scenarios have this name" in err
