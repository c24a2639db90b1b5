"""The block kernel specialised to a deal's structure (:mod:`abs_engine.kernels.specialise`):
bitwise the generic kernel's results, chosen as documented, keyed by everything it folds.
``test_properties.py`` runs the specialised waterfall against the interpreter on generated
deals (property 9)."""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pytest
from conftest import assert_same_run

import abs_engine as ae
from abs_engine import simulation as S
from abs_engine.compile.patch import with_tranche_terms
from abs_engine.kernels import _codecache as codecache
from abs_engine.kernels import specialise as SP
from abs_engine.kernels.waterfall import ledgers_py as wf_ledgers
from abs_engine.schema import parse_deal

ENV = S.SPECIALISE_ENV


def _memo_off(sc):
    """Every path computed: stochastic prepayment of negligible volatility."""
    return type(sc).model_validate(
        {**sc.model_dump(), "prepayment": {"cpr": 0.0, "volatility": 1e-9}}
    )


def _run(monkeypatch, flag: str, cd, sc, **kw):
    monkeypatch.setenv(ENV, flag)
    kw.setdefault("keep_paths", True)
    return ae.simulate(cd, sc, n_paths=4_000, seed=11, progress=False, **kw)


@pytest.mark.parametrize("variant", ["as shipped", "memo off", "importance"])
def test_the_specialised_kernel_gives_the_generic_kernels_results(monkeypatch, variant):
    """Every per-path metric, summary, cash-flow statistic and histogram bitwise equal, with
    the no-default memo and prefix restarts (as shipped), every path computed, and under
    importance sampling (weighted sums)."""
    cd, sc = ae.compile_deal(ae.load_deal()), ae.load_scenario("huake_mc")
    kw = {"sampling": "importance", "keep_paths": False} if variant == "importance" else {}
    if variant == "memo off":
        sc = _memo_off(sc)
    generic = _run(monkeypatch, "0", cd, sc, **kw)
    special = _run(monkeypatch, "1", cd, sc, **kw)
    assert_same_run(generic, special, paths=variant != "importance")
    # forced, the run compiled the specialisation (a failure raises) and ran it
    assert SP.is_specialised(cd.kernel, cd.n_periods)


def _bare() -> dict:
    """The bundled deal without fees, accounts, triggers or support, and one waterfall: the
    empty tables and the statuses without steps the rewrite must handle."""
    doc = ae.load_deal().model_dump(mode="json", exclude_none=True)
    doc.update(fees=[], accounts=[], triggers=[], support=[])
    doc["waterfalls"] = {"normal": [
        {"kind": "pay_interest", "tranches": ["A"], "mode": "pro_rata"},
        {"kind": "pay_principal", "tranches": ["A", "Sub"], "amount": "principal_due"},
        {"kind": "pay_residual", "tranche": "Sub"},
    ]}  # fmt: skip
    return doc


def test_a_bare_structure_compiles_and_gives_the_generic_results(monkeypatch):
    """Compiled by numba (not only run as Python, as property 9 runs it): a deal with empty
    fee, account, trigger and support tables and two statuses without steps."""
    cd, sc = ae.compile_deal(parse_deal(_bare())), ae.load_scenario("huake_mc")
    generic = _run(monkeypatch, "0", cd, sc)
    special = _run(monkeypatch, "1", cd, sc)
    assert SP.is_specialised(cd.kernel, cd.n_periods)
    assert_same_run(generic, special)


def test_a_deal_with_new_tranche_terms_runs_on_the_same_specialisation(monkeypatch):
    """The floating-point tables stay arguments: a solver's deal with another balance and
    coupon has the same structure key, and the specialised kernel gives the generic one's
    results on it."""
    cd, sc = ae.compile_deal(ae.load_deal()), ae.load_scenario("huake_mc")
    n_t = cd.n_periods
    new = with_tranche_terms(cd, {"A": {"balance": 80_000_000.0,
                                        "coupon": {"kind": "fixed", "rate": 0.031}}})  # fmt: skip
    assert SP.structure_key(new.kernel, n_t) == SP.structure_key(cd.kernel, n_t)
    assert not np.array_equal(new.kernel.tranche_f, cd.kernel.tranche_f)
    generic = _run(monkeypatch, "0", new, sc)
    special = _run(monkeypatch, "1", new, sc)
    assert_same_run(generic, special)


def _swapped_steps() -> dict:
    """The bundled deal with its normal waterfall's first two steps swapped."""
    doc = ae.load_deal().model_dump(mode="json", exclude_none=True)
    normal = doc["waterfalls"]["normal"]
    doc["waterfalls"] = {**doc["waterfalls"], "normal": [normal[1], normal[0], *normal[2:]]}
    return doc


def test_the_structure_key_changes_with_anything_folded():
    """Another step order, another period count, another fee count: another key."""
    doc = ae.load_deal().model_dump(mode="json", exclude_none=True)
    base = SP.structure_key(ae.compile_deal(ae.load_deal()).kernel, 12)
    assert SP.structure_key(ae.compile_deal(ae.load_deal()).kernel, 12) == base
    assert SP.structure_key(ae.compile_deal(ae.load_deal()).kernel, 13) != base
    swapped = _swapped_steps()
    assert SP.structure_key(ae.compile_deal(parse_deal(swapped)).kernel, 12) != base
    fewer = {**doc, "fees": doc["fees"][:-1],
             "waterfalls": {k: [s for s in v if s.get("fee") != doc["fees"][-1]["name"]]
                            for k, v in doc["waterfalls"].items()}}  # fmt: skip
    assert SP.structure_key(ae.compile_deal(parse_deal(fewer)).kernel, 12) != base


def test_which_runs_specialise(monkeypatch):
    """ABS_ENGINE_SPECIALISE=0 never, 1 always; by default runs of SPECIALISE_MIN_PATHS paths
    or more, and smaller ones once the specialisation is compiled."""
    cd = ae.compile_deal(ae.load_deal())
    fresh = ae.compile_deal(parse_deal(_swapped_steps()))  # not compiled by another test here
    n_t, big = fresh.n_periods, S.SPECIALISE_MIN_PATHS
    monkeypatch.setenv(ENV, "0")
    assert not S.specialises(cd.kernel, cd.n_periods, 10**9)
    monkeypatch.setenv(ENV, "1")
    assert S.specialises(fresh.kernel, n_t, 1)
    monkeypatch.delenv(ENV)
    if not SP.is_specialised(fresh.kernel, n_t):  # another process may have compiled it
        assert not S.specialises(fresh.kernel, n_t, big - 1)
    assert S.specialises(fresh.kernel, n_t, big)
    monkeypatch.setenv(ENV, "1")
    ae.simulate(cd, ae.load_scenario("huake_mc"), n_paths=100, progress=False)
    monkeypatch.delenv(ENV)
    assert SP.is_specialised(cd.kernel, cd.n_periods)
    assert S.specialises(cd.kernel, cd.n_periods, 1)


def _specialised_source(fn, deal, roots_extra=None) -> str:
    """``fn``'s definition rewritten by the specialisation for ``deal``, as source."""
    node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    roots = {"deal": deal, **(roots_extra or {})}
    sp = SP._Specialise(node, roots, {"OPC_CODE": 0, "OPC_A": 1, "OP_X": 1, "OP_Y": 2})
    return ast.unparse(sp.visit(node))


def _bound(deal, led, x):
    a = deal.tranche_i
    b = a
    c = deal.tranche_i
    c = deal.fee_i
    e, f = deal.fee_i, deal.ops
    tr, fee, acc, sup, per, sum_tr, sum_pool = led
    a[0, 0] += 1
    x += 1
    for d in range(3):
        f = d
    n1 = b.shape[0]
    n2 = c.shape[0]
    n3 = e.shape[1]
    n4 = x.shape[0]
    n5 = f.shape[0]
    n6 = deal.tranche_f.shape[1]
    n7 = tr.shape[1]
    n8 = fee.shape[0]
    return n1 + n2 + n3 + n4 + n5 + n6 + n7 + n8 + deal.original_pool


def _starred(deal, led):
    tr, *mid, sum_pool = led
    shapes = [x.shape[0] for x in (led.tr, led.fee)]
    x = deal.tranche_f
    return sum_pool.shape[0] + tr.shape[1] + x.shape[1] + shapes[0]


def test_names_after_a_star_or_bound_in_a_comprehension_are_not_folded():
    """``a, *b, c = bundle`` binds ``c`` to the bundle's last field, not its third: such names
    are left alone, and so are a comprehension's (``x`` there is not ``deal.tranche_f``)."""
    deal = ae.compile_deal(ae.load_deal()).kernel
    led = wf_ledgers(12, 2, 4, 1, 1)
    src = _specialised_source(_starred, deal, {"led": led})
    assert "sum_pool.shape[0]" in src and "tr.shape[1]" in src
    assert "x.shape[0] for x in" in src
    assert "x.shape[1]" in src  # x is also the comprehension's


def test_only_names_bound_to_one_array_have_their_shapes_folded():
    """A shape is folded where the name is one array everywhere (aliases, tuple unpacking, a
    bundle's fields, an element written in place); not for a name assigned two arrays, a
    loop variable or an augmented assignment. Integer fields become constants, floats stay."""
    deal = ae.compile_deal(ae.load_deal()).kernel
    led = wf_ledgers(12, 2, 4, 1, 1)
    src = _specialised_source(_bound, deal, {"led": led})
    n_j = deal.tranche_i.shape[0]
    assert f"n1 = {n_j}" in src  # b is a, is deal.tranche_i
    assert "n2 = c.shape[0]" in src  # c is two arrays
    assert f"n3 = {deal.fee_i.shape[1]}" in src
    assert "n4 = x.shape[0]" in src  # x += 1
    assert "n5 = f.shape[0]" in src  # f is also the loop's
    assert f"n6 = {deal.tranche_f.shape[1]}" in src
    assert "n7 = 2" in src and "n8 = 12" in src  # the fields of the bundle led, unpacked
    assert "a = _K_tranche_i" in src and "deal.original_pool" in src
    assert "deal.tranche_f" not in src.replace("deal.tranche_f.shape", "")


def test_the_bundled_deals_waterfall_is_unrolled_and_folded():
    """On the bundled deal the step loop is unrolled and the integer tables folded."""
    deal = ae.compile_deal(ae.load_deal()).kernel
    fn = SP.specialised_waterfall_py(deal, 12)
    assert fn.step_loops_unrolled == 1
    consts = {k for k in fn.__globals__ if k.startswith("_K_")}
    assert {"_K_ops", "_K_n_steps", "_K_tranche_i", "_K_groups"} <= consts


def _loops(xs):
    total = 0.0
    for j in range(3):
        total += xs[j]
    for k in range(3):
        if xs[k] > 1.0:
            break
    for m in range(9):
        total += xs[m % 3]
    for z in range(0):
        last = z
    if total < 0.0:
        total = last
    return total


def test_short_literal_loops_are_unrolled():
    """A loop over a literal count from 1 to UNROLL_MAX becomes its body once per value (the
    loop variable assigned first); one with a ``break``, longer, or empty (numba types what
    its body assigns, which a branch never taken may read) stays a loop."""
    deal = ae.compile_deal(ae.load_deal()).kernel
    src = _specialised_source(_loops, deal)
    assert "for j in" not in src and src.count("total += xs[j]") == 3
    assert "j = 2" in src
    assert "for k in range(3)" in src and "for m in range(9)" in src
    assert "for z in range(0)" in src
    ns: dict = {}
    exec(compile(ast.parse(src), "<unrolled>", "exec"), ns)
    xs = np.array([0.5, 2.0, 0.25])
    assert ns["_loops"](xs) == _loops(xs)


@pytest.mark.slow  # a failed numba compile each, 4-5 s: the fallback's rare path
def test_a_specialisation_numba_cannot_compile_falls_back_to_the_generic_kernel(monkeypatch):
    """Chosen automatically, a specialised waterfall numba refuses to compile (here the rewrite
    made to read an undefined name; the cold compile's own path, the waterfall first) costs
    the run its speed, not its result: a warning, the generic kernel's results, and the
    generic kernel for that structure from then on. Forced (ABS_ENGINE_SPECIALISE=1), the
    error is raised."""
    import numba

    cd, sc = ae.compile_deal(parse_deal(_swapped_steps())), ae.load_scenario("huake_mc")
    _broken_rewrite(monkeypatch)
    monkeypatch.setenv(ENV, "0")
    generic = ae.simulate(cd, sc, n_paths=3_000, seed=5, keep_paths=True, progress=False)
    monkeypatch.delenv(ENV)
    monkeypatch.setattr(S, "SPECIALISE_MIN_PATHS", 1_000)
    with pytest.warns(RuntimeWarning, match="did not compile"):
        fell = ae.simulate(cd, sc, n_paths=3_000, seed=5, keep_paths=True, progress=False)
    assert_same_run(generic, fell)
    assert SP.failed(cd.kernel, cd.n_periods)
    assert not S.specialises(cd.kernel, cd.n_periods, 10**9)
    monkeypatch.setattr(SP, "_FAILED", set())
    monkeypatch.setattr(SP, "_KERNELS", {})
    monkeypatch.setenv(ENV, "1")
    with pytest.raises(numba.core.errors.TypingError):
        ae.simulate(cd, sc, n_paths=3_000, seed=5, progress=False)


def test_with_numbas_jit_disabled_nothing_is_specialised():
    """NUMBA_DISABLE_JIT=1 runs the Python twins: no specialisation is chosen, whatever the
    path count, and a run works."""
    import os
    import subprocess
    import sys

    code = (
        "import abs_engine as ae, abs_engine.simulation as S\n"
        "cd = ae.compile_deal(ae.load_deal())\n"
        "assert not S.specialises(cd.kernel, cd.n_periods, 10**9)\n"
        "r = ae.simulate(cd, ae.load_scenario('huake_mc'), n_paths=40, progress=False)\n"
        "print('ok', len(r.tranches))\n"
    )
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-2000:]


def test_a_run_decides_once_for_its_batches_and_tasks(monkeypatch):
    """The choice is made where the run starts and carried in its job: each local batch's
    run_range receives it, and a given choice overrides the environment where a batch or a
    Dask task runs."""
    from abs_engine.compile.model import compile_model
    from abs_engine.kernels import montecarlo as mc

    cd, sc = ae.compile_deal(ae.load_deal()), ae.load_scenario("huake_mc")
    model = compile_model(cd, sc).kernel
    seen = []
    real = S.run_range

    def spy(*args, **kw):
        seen.append(args[8] if len(args) > 8 else kw.get("specialise"))
        return real(*args, **kw)

    monkeypatch.setattr(S, "run_range", spy)
    for flag, expected in (("1", True), ("0", False)):
        monkeypatch.setenv(ENV, flag)
        seen.clear()
        ae.simulate(cd, sc, n_paths=3_000, seed=1, progress=False, batch_blocks=1)
        assert seen and all(x is expected for x in seen), (flag, seen)
    monkeypatch.setenv(ENV, "1")
    assert S.block_kernel(model, True, cd.kernel, 10**7, False) is mc.run_block
    monkeypatch.setenv(ENV, "0")
    special = SP.specialised_kernel(cd.kernel, cd.n_periods)[0]
    assert S.block_kernel(model, True, cd.kernel, 1, True) is special


def _broken_rewrite(monkeypatch):
    """Make every specialisation built from here on read an undefined name (numba refuses
    it), under a key nothing is cached under."""
    import uuid

    key = f"t{uuid.uuid4().hex[:15]}"
    real = SP._transform

    def broken(deal, n_t, state):
        rewrite = real(deal, n_t, state)

        def transform(fn):
            out = rewrite(fn)
            bad = ast.Expr(value=ast.Name(id="no_such_name", ctx=ast.Load()))
            out.body.insert(0, ast.copy_location(bad, out.body[0]))
            return out

        return transform

    monkeypatch.setattr(SP, "structure_key", lambda deal, n_t: key)
    monkeypatch.setattr(SP, "_transform", broken)
    monkeypatch.setattr(codecache, "_folders", list)  # its code kept nowhere
    monkeypatch.setattr(SP, "_KERNELS", {})
    monkeypatch.setattr(SP, "_FAILED", set())


@pytest.mark.slow  # a failed numba compile each, 4-5 s: the fallback's rare path
def test_a_task_told_to_specialise_falls_back_where_it_cannot_compile(monkeypatch):
    """run_range given the run's choice (as a Dask task is) falls back to the generic kernel
    where the specialisation does not compile there: a warning once, the same sums."""
    from abs_engine.compile.model import compile_model

    cd, sc = ae.compile_deal(ae.load_deal()), ae.load_scenario("huake_mc")
    model, shape = compile_model(cd, sc).kernel, S.OutputShape.of(cd)
    spec = S.frozen(S.RunSpec(S.BLOCK_SIZE, 4 * S.BLOCK_SIZE, 9, *S.hist_ranges(cd), 0))
    generic = S.run_range(0, 4, spec, model, cd.kernel, shape, True, 1, False)
    _broken_rewrite(monkeypatch)
    monkeypatch.delenv(ENV, raising=False)
    with pytest.warns(RuntimeWarning, match="did not compile"):
        fell = S.run_range(0, 4, spec, model, cd.kernel, shape, True, 1, True)
    for a, b in zip(generic, fell, strict=True):
        assert np.array_equal(a, b, equal_nan=True)
    assert SP.failed(cd.kernel, cd.n_periods)


def _steps(deal, status, avail):
    ops, n_steps = deal.ops, deal.n_steps
    for k in range(n_steps[status]):
        op = ops[status, k, OPC_CODE]  # noqa: F821 - parsed only
        pa = ops[status, k, OPC_A]  # noqa: F821
        if op == OP_X:  # noqa: F821
            avail += pa
        elif op == OP_Y:  # noqa: F821
            avail -= pa
    return avail


def _steps_operand_first(deal, status, avail):
    ops, n_steps = deal.ops, deal.n_steps
    for k in range(n_steps[status]):
        pa = ops[status, k, OPC_A]  # noqa: F821
        op = ops[status, k, OPC_CODE]  # noqa: F821
        if op == OP_X:  # noqa: F821
            avail += pa
    return avail


def _steps_status_assigned(deal, status, avail):
    ops, n_steps = deal.ops, deal.n_steps
    for k in range(n_steps[status]):
        op = ops[status, k, OPC_CODE]  # noqa: F821
        if op == OP_X:  # noqa: F821
            status = 0
    return avail


def _steps_other_status(deal, status, other, avail):
    ops, n_steps = deal.ops, deal.n_steps
    for k in range(n_steps[status]):
        op = ops[other, k, OPC_CODE]  # noqa: F821
        if op == OP_X:  # noqa: F821
            avail += 1.0
    return avail


def _steps_status_in_array(deal, st, avail):
    ops, n_steps = deal.ops, deal.n_steps
    for k in range(n_steps[st[0]]):
        op = ops[st[0], k, OPC_CODE]  # noqa: F821
        if op == OP_X:  # noqa: F821
            avail += 1.0
    return avail


def test_the_step_loop_is_unrolled_only_in_the_interpreters_own_form():
    """Unrolled: ops read at the loop's own status, the opcode first, branches on it that
    assign neither the status nor an operand. Otherwise the loop stays."""
    deal = ae.compile_deal(ae.load_deal()).kernel
    assert "for k in" not in _specialised_source(_steps, deal)
    for fn in (_steps_operand_first, _steps_status_assigned, _steps_other_status,
               _steps_status_in_array):  # fmt: skip
        assert "for k in" in _specialised_source(fn, deal), fn.__name__


def test_a_long_body_is_not_unrolled(monkeypatch):
    """Loops whose copies would exceed UNROLL_NODES_MAX nodes stay loops."""
    deal = ae.compile_deal(ae.load_deal()).kernel
    monkeypatch.setattr(SP, "UNROLL_NODES_MAX", 10)
    src = _specialised_source(_loops, deal)
    assert "for j in range(3)" in src


@pytest.mark.parametrize("budget", ["STEP_NODES_MAX", "TOTAL_NODES_MAX"])
def test_a_waterfall_too_long_to_unroll_keeps_its_step_loop(monkeypatch, budget):
    """Past STEP_NODES_MAX the step loop stays a loop (the other folds are made); past
    TOTAL_NODES_MAX, the whole waterfall unrolled, every loop does (a deal within the other
    budgets compiled for 56 s in 2.9 GB); either way the rewritten waterfall still leaves
    bitwise the interpreter's ledgers."""
    from abs_engine.compile import deterministic_flows
    from abs_engine.kernels import waterfall as wf

    cd = ae.compile_deal(ae.load_deal())
    unrolled = SP.specialised_waterfall_py(cd.kernel, cd.n_periods)
    monkeypatch.setattr(SP, budget, 100 if budget == "STEP_NODES_MAX" else 10_000)
    special = SP.specialised_waterfall_py(cd.kernel, cd.n_periods)
    assert unrolled.step_loops_unrolled == 1 and special.step_loops_unrolled == 0
    if budget == "TOTAL_NODES_MAX":  # about 16,200 nodes unrolled, fewer than 10,000 kept
        assert special.nodes <= 10_000 < unrolled.nodes
    fl = deterministic_flows(cd, [ae.load_scenario("cdr_stress")])
    n_t = cd.n_periods
    shape = (len(cd.tranche_names), len(cd.fee_names), len(cd.account_names),
             len(cd.support_names), len(cd.trigger_names), n_t)  # fmt: skip
    runs = []
    for waterfall in (wf.waterfall_path_py, special):
        led = wf.ledgers_py(n_t, *shape[:4])
        scratch = wf.waterfall_scratch_py(*shape, checkpoints=True)
        waterfall(fl.flows[0], fl.support_default_period[0], fl.base_rate[0], cd.kernel, led,
                  scratch, 0, n_t + 1)  # fmt: skip
        runs.append(led)
    for a, b in zip(*runs, strict=True):
        assert np.array_equal(a.view(np.int64), b.view(np.int64))


def test_the_specialised_waterfall_stays_within_its_unrolling_budget():
    """The bundled deal's rewrite holds about 16,200 syntax-tree nodes, its steps unrolled,
    well within ``TOTAL_NODES_MAX``; so does the bundled deal with a mezzanine B and a
    guarantee on it (the pari-passu class's pays and draws inlined into every step had
    taken the bundled deal to 20,400 and that deal past the budget, its steps a loop)."""
    from abs_engine.schema import parse_deal
    from tests.test_size_stack import three_tranche_doc

    cd = ae.compile_deal(ae.load_deal())
    fn = SP.specialised_waterfall_py(cd.kernel, cd.n_periods)
    assert fn.step_loops_unrolled == 1 and fn.nodes <= 18_000
    doc = three_tranche_doc()
    for steps in doc["waterfalls"].values():
        steps.insert(len(steps) - 1, {"kind": "draw_support", "support": "g"})
    doc["support"].append({"kind": "guarantee", "name": "g", "tranches": ["B"], "cap": 5e6,
                           "provider": {"name": "G", "annual_pd": 0.005}})  # fmt: skip
    cd3 = ae.compile_deal(parse_deal(doc))
    fn3 = SP.specialised_waterfall_py(cd3.kernel, cd3.n_periods)
    assert fn3.step_loops_unrolled == 1 and fn3.nodes <= SP.TOTAL_NODES_MAX
