"""Full-stack sizing (size_stack, ``abs-engine size-stack``): every target met at the final
evaluation, the capital kept, the sizes taken top-down, bad input refused by name."""

from __future__ import annotations

import copy
import json
import math
import tomllib
from typing import Any

import pytest

import abs_engine as ae
from abs_engine.compile import compile_deal
from abs_engine.report.console import size_stack_text
from abs_engine.schema import Deal, parse_deal
from abs_engine.solvers import SolverError, StackSizing, size_stack, size_tranche
from tests.conftest import ROOT, run_cli

#: the searches here: few paths and a coarse tolerance keep the module at a few seconds
PATHS, TOL, SEED = 4_000, 1e-2, 11


def three_tranche_doc() -> dict[str, Any]:
    """The bundled deal with a mezzanine B (15m at 4%, sequential) between A (80m) and Sub
    (5m): B's interest is paid after A's (and the reserve), its principal after A's and
    before Sub's in every waterfall."""
    with open(ROOT / "waterfalls" / "huake_2025.toml", "rb") as fh:
        doc = tomllib.load(fh)
    doc = copy.deepcopy(doc)
    a, sub = doc["tranches"]
    assert (a["name"], sub["name"]) == ("A", "Sub")
    b = {"name": "B", "balance": 15e6, "coupon": {"kind": "fixed", "rate": 0.04},
         "principal": "sequential"}  # fmt: skip
    doc["tranches"] = [{**a, "balance": 80e6}, b, sub]
    for name, steps in doc["waterfalls"].items():
        out = []
        for s in steps:
            if s["kind"] == "pay_principal" and "Sub" in s["tranches"]:
                out.append({"kind": "pay_interest", "tranches": ["B"]})
                if s["tranches"] == ["Sub"]:  # accelerated, post-default: B's own step first
                    out.append({**s, "tranches": ["B"]})
                else:
                    k = s["tranches"].index("Sub")
                    s = {**s, "tranches": [*s["tranches"][:k], "B", *s["tranches"][k:]]}
            out.append(s)
        assert sum(st.get("tranches") == ["B"] for st in out) >= 1, name
        doc["waterfalls"][name] = out
    return doc


@pytest.fixture(scope="module")
def deal3() -> Deal:
    return parse_deal(three_tranche_doc())


@pytest.fixture(scope="module")
def mc(deal3: Deal) -> Any:
    return ae.load_scenario("huake_mc", deal3)


@pytest.fixture(scope="module")
def stack3(deal3: Deal, mc: Any) -> StackSizing:
    return size_stack(deal3, mc, {"A": "AAA", "B": "A"}, curve=0.0185, n_paths=PATHS,
                      seed=SEED, tol=TOL, progress=False)  # fmt: skip


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_the_stack_meets_every_target_and_keeps_the_capital(deal3, stack3):
    a, b, sub = stack3.tranches
    assert [t["role"] for t in stack3.tranches] == ["sized", "sized", "residual"]
    assert [t["target"] for t in stack3.tranches] == ["AAA", "A", None]
    assert stack3.all_targets_met and not stack3.notes
    for t in (a, b):
        assert t["meets_target"] and t["metric"] <= t["limit"]
        assert t["margin_se"] is None or t["margin_se"] <= 0
        assert t["balance"] > 0 and t["balance_ci95"] is not None
        lo, hi = t["balance_ci95"]
        assert lo <= t["balance"] <= hi
    capital = sum(t.balance for t in deal3.tranches)
    assert stack3.total_capital == capital == 100e6
    assert sum(t["balance"] for t in stack3.tranches) == pytest.approx(capital, rel=1e-12)
    assert sum(t.balance for t in stack3.deal.tranches) == pytest.approx(capital, rel=1e-12)
    assert sum(t["share"] for t in stack3.tranches) == pytest.approx(1.0)
    # subordination: the shares below each tranche
    assert a["subordination"] == pytest.approx(b["share"] + sub["share"])
    assert b["subordination"] == pytest.approx(sub["share"]) and sub["subordination"] == 0
    # the residual takes what the sized tranches leave
    assert sub["balance"] == pytest.approx(capital - a["balance"] - b["balance"])


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_par_coupons_are_solved_and_patched_into_the_final_structure(stack3):
    a, b, sub = stack3.tranches
    assert stack3.curve == "0.0185"
    for t, tr in zip((a, b), stack3.deal.tranches[:2], strict=True):
        assert t["par_coupon"] is not None and 0.0185 - 1e-8 <= t["par_coupon"] < 0.05
        assert t["coupon"] == t["par_coupon"] == tr.coupon.rate
        # with its standard error and interval, as price gives them (there were none)
        lo, hi = t["par_coupon_ci95"]
        assert t["par_coupon_se"] >= 0.0 and lo <= t["par_coupon"] <= hi
    # the junior's coupon prices its larger loss: at least the senior's
    assert b["par_coupon"] >= a["par_coupon"]
    assert sub["par_coupon"] is None and sub["coupon"] is None


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_sizes_are_taken_top_down(deal3, mc, stack3):
    """A is sized first, on the deal as issued: size_tranche's answer for A alone; then B
    out of what the residual holds after A (B plus the residual, A's balance fixed)."""
    alone = size_tranche(deal3, mc, "A", target_rating="AAA", n_paths=PATHS, seed=SEED,
                         tol=TOL, progress=False)  # fmt: skip
    a, b, sub = stack3.tranches
    assert a["balance"] == alone["balance"]
    assert a["sizing"]["metric"] == alone["metric"]
    # B's search shared the capital left below A with the residual
    assert b["sizing"]["share_of_capital"] * (100e6 - a["balance"]) == pytest.approx(
        b["balance"], rel=1e-12
    )


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_the_result_prints_and_serialises(stack3):
    doc = stack3.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["targets"] == [{"tranche": "A", "rating": "AAA"}, {"tranche": "B", "rating": "A"}]
    assert doc["all_targets_met"] is True
    frame = stack3.to_frame()
    assert list(frame.index) == ["A", "B", "Sub"] and "sizing" not in frame.columns
    text = size_stack_text(doc)
    lines = text.splitlines()
    assert lines[0].startswith("capital structure sized top-down (importance sampling, 4,000")
    assert "par coupons over 0.0185" in lines[0]
    rows = {ln.split()[0]: ln for ln in lines[2:6]}
    assert set(rows) == {"A", "B", "Sub", "total"}
    assert "AAA" in rows["A"] and "yes" in rows["A"] and "(residual)" in rows["Sub"]
    assert "100,000,000" in rows["total"]
    assert "ILLUSTRATIVE" in text


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"Z": "AAA"}, "unknown tranche 'Z'"),
        ({"Sub": "BBB"}, "'Sub' is the most junior tranche"),
        ([("B", "A"), ("A", "AAA")], "'A' is senior to 'B'"),
        ({"A": "AAAA"}, "unknown rating 'AAAA' for tranche 'A'"),
        ([("A", "AAA"), ("A", "AA")], "'A' is given a target twice"),
        ({}, "no targets"),
        ([("A",)], "(tranche, rating) pair"),
        ("A=AAA", "targets must map"),
        ({"A": 1}, "must be a rating"),
        ({1: "AAA"}, "must be a string"),
    ],
)
def test_bad_targets_are_refused_by_name(deal3, mc, targets, message):
    with pytest.raises(SolverError, match=message.replace("(", r"\(").replace(")", r"\)")):
        size_stack(deal3, mc, targets, n_paths=100)


def test_bad_arguments_are_refused(deal3, mc):
    with pytest.raises(SolverError, match="sampling must be one of"):
        size_stack(deal3, mc, {"A": "AAA"}, sampling="stratified")
    with pytest.raises(SolverError, match="n_paths"):
        size_stack(deal3, mc, {"A": "AAA"}, n_paths=0)
    for seed in ("x", -1, 2**63, True, 1.5):
        with pytest.raises(ae.AbsEngineError, match="size_stack: seed must be an integer"):
            size_stack(deal3, mc, {"A": "AAA"}, seed=seed)
    for tol in (0, 1.5, float("nan"), "0.1"):
        with pytest.raises(SolverError, match="tol"):
            size_stack(deal3, mc, {"A": "AAA"}, tol=tol)
    with pytest.raises(SolverError, match="deal must be a Deal"):
        size_stack(compile_deal(deal3), mc, {"A": "AAA"})
    with pytest.raises(SolverError, match="flat curve rate"):
        size_stack(deal3, mc, {"A": "AAA"}, curve=float("nan"))
    # a tranche with a scheduled paydown cannot change balance alone
    doc = three_tranche_doc()
    doc["tranches"][1].update(principal="target_balance", target_balances=[15e6] * 12)
    with pytest.raises(SolverError, match="'B': its principal is 'target_balance'"):
        size_stack(parse_deal(doc), mc, {"A": "AAA", "B": "A"})


def test_an_unmeetable_target_names_the_tranche_and_the_sizes_above(deal3, mc, monkeypatch):
    import abs_engine.solvers.stack as stack

    calls = []

    def fake(deal: Deal, sc: Any, tranche: str, **kw: Any) -> dict[str, Any]:
        calls.append((tranche, [t.balance for t in deal.tranches]))
        if tranche == "B":
            raise SolverError("B misses the target even at 0.10% of its capital")
        return {"balance": 60e6}

    monkeypatch.setattr(stack, "size_tranche", fake)
    with pytest.raises(SolverError, match=r"^sizing B to AAA \(after sizing A\): B misses"):
        size_stack(deal3, mc, {"A": "AA", "B": "AAA"}, n_paths=100, progress=False)
    # B was sized on the structure A left: A at its size, the residual holding the rest
    assert calls == [("A", [80e6, 15e6, 5e6]), ("B", [60e6, 15e6, 25e6])]


def test_later_rounds_start_from_the_last_structure_and_stop_when_settled(deal3, mc, monkeypatch):
    import abs_engine.solvers.stack as stack

    sizes, prices = [], []
    answers = {"A": 40e6, "B": 20e6}

    def fake_size(deal: Deal, sc: Any, tranche: str, **kw: Any) -> dict[str, Any]:
        sizes.append((tranche, [(t.balance, getattr(t.coupon, "rate", None))
                                for t in deal.tranches]))  # fmt: skip
        return {"balance": answers[tranche], "balance_ci95": None, "share_of_capital": 0.5,
                "metric": 0.0, "metric_se": 0.0, "limit": 0.0, "wal_years": 1.0,
                "implied_rating": "AAA", "sampling": "crude"}  # fmt: skip

    def fake_price(deal: Deal, sc: Any, tranche: str, curve: Any, **kw: Any) -> dict:
        prices.append(tranche)
        c = {"A": 0.02, "B": 0.03}[tranche]
        return {"par_coupon": c, "se": 1e-5, "ci95": [c - 2e-5, c + 2e-5]}

    monkeypatch.setattr(stack, "size_tranche", fake_size)
    monkeypatch.setattr(stack, "solve_coupon", fake_price)
    out = size_stack(deal3, mc, {"A": "AAA", "B": "A"}, curve=0.02, rounds=5, n_paths=200,
                     sampling="crude", progress=False)  # fmt: skip
    # pass 2 moved nothing: the passes stop there
    assert out.rounds == 2 and prices == ["A", "B", "A", "B"]
    first, second = sizes[0][1], sizes[2][1]
    assert first == [(80e6, 0.0279), (15e6, 0.04), (5e6, None)]  # the deal as issued
    assert second == [(40e6, 0.02), (20e6, 0.03), (40e6, None)]  # the last pass's structure
    assert [t.balance for t in out.deal.tranches] == [40e6, 20e6, 40e6]
    assert out.to_dict()["rounds"] == 2
    with pytest.raises(ae.AbsEngineError, match="rounds"):
        size_stack(deal3, mc, {"A": "AAA"}, rounds=stack.MAX_ROUNDS + 1)


def test_a_floaters_spread_settles_within_the_coupon_tolerance(deal3):
    """A floater's par spread solved again moves in its last bits: compared exactly, it
    never settled, and ``--rounds`` ran every pass (a validator: a floating B identical in
    cash flows to a fixed one took 5 passes against 4). Spreads now settle as fixed coupons
    do, within a hundredth of a basis point; a floor or cap changed is a change."""
    from abs_engine.compile.patch import with_tranche_terms
    from abs_engine.solvers.stack import _COUPON_SETTLED, _settled

    cd = compile_deal(deal3)

    def b(coupon: dict[str, Any]) -> Any:
        return with_tranche_terms(cd, {"B": {"coupon": coupon}})

    for kind, key, base in (("fixed", "rate", {}), ("floating", "spread", {"floor": 0.0})):
        start = b({"kind": kind, key: 0.03, **base})
        assert _settled(start, b({"kind": kind, key: 0.03 + 1e-9, **base}), 1e4), kind
        moved = b({"kind": kind, key: 0.03 + 2 * _COUPON_SETTLED, **base})
        assert not _settled(start, moved, 1e4), kind
    floater = b({"kind": "floating", "spread": 0.03})
    assert not _settled(floater, b({"kind": "floating", "spread": 0.03, "cap": 0.08}), 1e4)


@pytest.mark.slow
def test_a_second_round_sizes_at_the_par_coupons(deal3, mc, stack3):
    """One pass sizes at the coupons as issued (A 2.79%, B 4%), then prices far lower: B has
    room to spare. A second pass sizes at the par coupons: B grows, and still meets A."""
    two = size_stack(deal3, mc, {"A": "AAA", "B": "A"}, curve=0.0185, n_paths=PATHS,
                     seed=SEED, tol=TOL, rounds=2, progress=False)  # fmt: skip
    assert two.rounds == 2
    b1, b2 = stack3.tranches[1], two.tranches[1]
    assert b2["balance"] > b1["balance"]
    assert b2["margin_se"] > b1["margin_se"]  # less slack
    assert sum(t["balance"] for t in two.tranches) == pytest.approx(100e6, rel=1e-12)


def test_cli_json_on_the_bundled_deal():
    r = run_cli("size-stack", "--target", "A=AAA", "--curve", "0.0185", "--paths", "2000",
                "--sampling", "crude", "--seed", "3", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {
        "deal",
        "scenario",
        "paths",
        "seed",
        "targets",
        "total_capital",
        "tranches",
        "all_targets_met",
        "curve",
        "rating_table",
        "sampling",
        "notes",
    } <= set(doc)
    assert (doc["paths"], doc["seed"], doc["curve"], doc["sampling"]) == (2000, 3, "0.0185",
                                                                          "crude")  # fmt: skip
    assert doc["targets"] == [{"tranche": "A", "rating": "AAA"}]
    a, sub = doc["tranches"]
    assert (a["tranche"], sub["tranche"]) == ("A", "Sub")
    assert a["balance"] + sub["balance"] == pytest.approx(doc["total_capital"]) == 100e6
    keys = {"balance", "share", "expected_loss", "expected_loss_se", "wal_years",
            "implied_rating", "par_coupon", "limit", "meets_target", "balance_ci95"}  # fmt: skip
    assert keys <= set(a)
    assert a["meets_target"] is True and a["par_coupon"] >= 0.0185 - 1e-8
    assert doc["rating_table"]["illustrative"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "A"], "--target: expected TRANCHE=RATING"),
        (["--target", "=AAA"], "--target: expected TRANCHE=RATING"),
        (["--target", "Sub=AAA"], "'Sub' is the most junior tranche"),
        (["--target", "Z=AAA"], "unknown tranche 'Z'"),
        (["--target", "A=AAAA"], "unknown rating 'AAAA'"),
        (["--target", "A=AAA", "--curve", "2"], "--curve"),
        (["--target", "A=AAA", "--rounds", "6"], "--rounds"),
        ([], "--target"),
    ],
)
def test_cli_bad_input_exits_2(args, message):
    r = run_cli("size-stack", "--paths", "100", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_text_on_the_bundled_deal_at_full_size():
    """The issue's command as given: importance sampling, 20,000 paths."""
    r = run_cli("size-stack", "--target", "A=AAA", "--curve", "0.0185")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    a = next(ln for ln in lines if ln.startswith("A "))
    assert "AAA" in a and "yes" in a
    assert any(ln.startswith("95% interval of each sized balance: A ") for ln in lines)


@pytest.mark.slow
def test_three_tranche_cli_on_a_deal_file(tmp_path):
    p = tmp_path / "three.json"
    p.write_text(json.dumps(three_tranche_doc(), default=str))  # dates as ISO text
    r = run_cli("size-stack", p, "-s", "huake_mc", "--target", "A=AAA", "--target", "B=A",
                "--curve", "0.0185", "--paths", "10000", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["all_targets_met"] and [t["tranche"] for t in doc["tranches"]] == ["A", "B", "Sub"]
    assert sum(t["balance"] for t in doc["tranches"]) == pytest.approx(100e6)
    assert all(math.isfinite(t["par_coupon"]) for t in doc["tranches"][:2])


def split_senior_doc() -> dict[str, Any]:
    """The bundled deal with A split into A1 60m and A2 35m, pro rata and pari passu (one
    class, the same terms), every reference to A made to both (a validator's ``hk_split2``)."""
    with open(ROOT / "waterfalls" / "huake_2025.toml", "rb") as fh:
        doc = tomllib.load(fh)

    def split(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: split(v) for k, v in node.items()}
        if isinstance(node, list):
            out: list[Any] = []
            for v in node:
                out += ["A1", "A2"] if v == "A" else [split(v)]
            return out
        return "A1" if node == "A" else node

    doc = split(doc)
    a, sub = doc["tranches"]
    a1 = {**a, "name": "A1", "balance": 60e6, "principal": "pro_rata", "pari_passu": "A"}
    doc["tranches"] = [a1, {**a1, "name": "A2", "balance": 35e6}, sub]
    return doc


def test_a_pro_rata_class_has_one_attachment_for_importance_sampling():
    """A1 and A2 lose together from 5m of pool loss: the importance sampling's attachment
    of each is 5m (A1's was 40m, as if A2 were junior to it, and the default run aimed at
    A1 sampled far past the class's losses: 53 effective paths of 20,000)."""
    from abs_engine.compile.sampling import _attachment

    cd = compile_deal(parse_deal(split_senior_doc()))
    assert _attachment(cd, 0) == pytest.approx(5e6) and _attachment(cd, 1) == pytest.approx(5e6)
    assert _attachment(cd, 2) == pytest.approx(0.0)


@pytest.mark.slow  # a few seconds: run by .ci/run and -m slow
def test_a_pro_rata_class_has_one_subordination():
    """Sized A1 of the class A1/A2: both have the subordination of Sub alone (A1's was
    reported as A2's and Sub's balances, 36% where 1%)."""
    deal = parse_deal(split_senior_doc())
    res = size_stack(deal, ae.load_scenario("huake_mc", deal), {"A1": "BBB"}, n_paths=2_000,
                     seed=5, sampling="crude", progress=False)  # fmt: skip
    rows = {r["tranche"]: r for r in res.tranches}
    sub_share = rows["Sub"]["balance"] / sum(r["balance"] for r in rows.values())
    assert rows["A1"]["subordination"] == pytest.approx(sub_share, abs=1e-12)
    assert rows["A2"]["subordination"] == pytest.approx(sub_share, abs=1e-12)
