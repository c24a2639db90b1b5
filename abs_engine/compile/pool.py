"""Obligor schedules on the deal's period grid, cumulative PD curves and IP values."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa

from ..errors import ProblemCollector
from ..kernels import layout as L
from ..schema.pool import (
    KIND_BULLET,
    KIND_EQUAL_PRINCIPAL,
    KIND_LEVEL_PAY,
    Bullet,
    EqualPrincipal,
    FlatPd,
    Labels,
    LevelPay,
    LicenseFeeSchedule,
    Obligor,
    ObligorTable,
    PdTermStructure,
    Pool,
    RatingClass,
    RatingClassPd,
    Recovery,
)
from ..schema.tape import MAX_TAPE_PROBLEMS, first_rows
from .schedule import PeriodSchedule
from .valuation import ip_base_value

__all__ = ["CompiledPool", "compile_pool", "cumulative_pd"]


@dataclass(frozen=True)
class CompiledPool:
    """Scheduled (no default, no prepayment) cash flows of every obligor, in yuan.

    Obligors in pool order: the inline ones, then the rows of a tape. The N×T arrays
    (``sched_*``, ``cum_pd``) are built on first use and then kept (read-only): checking a deal
    (``abs-engine validate``) never needs them, and for a large tape on a long monthly schedule
    they are most of the memory a run takes.

    Attributes
    ----------
    ids, names : Labels  (N)    a sequence of str (equal to the tuple of the same strings)
    balance : float64[N]        balance at closing
    rate : float64[N]           annual obligor rate (decimal)
    sched_principal : float64[N, T]
    sched_interest : float64[N, T]
    sched_balance_start : float64[N, T]   scheduled balance at the start of each period
    cum_pd : float64[N, T]      cumulative PD at each payment date
    recovery_rate : float64[N]
    recovery_lag : int64[N]     periods
    ip_value : float64[N]       base IP value (NaN: no IP pledged)
    sector : int64[N]           index into ``sectors``
    sectors : tuple[str, ...]
    """

    ids: Labels
    names: Labels
    balance: np.ndarray
    rate: np.ndarray
    recovery_rate: np.ndarray
    recovery_lag: np.ndarray
    ip_value: np.ndarray
    sector: np.ndarray
    sectors: tuple[str, ...]
    _parts: _Parts = field(repr=False, compare=False)

    @cached_property
    def _flows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q = self._parts
        n, n_in, n_t = len(self.balance), len(q.inline_principal), len(q.accrual)
        prin = np.zeros((n, n_t))
        intr = np.zeros((n, n_t))
        prin[:n_in] = q.inline_principal
        intr[:n_in] = q.inline_interest
        if q.table is not None:
            _tape_schedules(q.table, q.periods_per_year, q.accrual, prin[n_in:], intr[n_in:])
        start = _balance_start(self.balance, prin)
        return _frozen(prin), _frozen(intr), _frozen(start)

    @property
    def sched_principal(self) -> np.ndarray:
        return self._flows[0]

    @property
    def sched_interest(self) -> np.ndarray:
        return self._flows[1]

    @property
    def sched_balance_start(self) -> np.ndarray:
        return self._flows[2]

    @cached_property
    def schedule_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(obligor_sched int64[N], sched float64[K, T, N_SC]): the schedules as the
        collateral kernel reads them (:func:`schedule_table`), built once per pool."""
        obligor_sched, sched = schedule_table(self.sched_interest, self.sched_principal,
                                              self.sched_balance_start)  # fmt: skip
        return _frozen(obligor_sched), _frozen(sched)

    @cached_property
    def cum_pd(self) -> np.ndarray:
        q = self._parts
        n, n_in = len(self.balance), len(q.inline_cum_pd)
        out = np.zeros((n, len(q.years)))
        out[:n_in] = q.inline_cum_pd
        if q.table is not None:
            _flat_pd(q.table.annual_pd, q.years, out[n_in:])
        return _frozen(out)

    @cached_property
    def pd_1y(self) -> np.ndarray:
        """Each obligor's cumulative PD at exactly one year from closing, float64[N] (the
        Basel correlation's PD), from its own curve, whatever the payment dates."""
        q = self._parts
        n, n_in = len(self.balance), len(q.inline_pd_1y)
        out = np.zeros((n, 1))
        out[:n_in, 0] = q.inline_pd_1y
        if q.table is not None:
            _flat_pd(q.table.annual_pd, np.ones(1), out[n_in:])
        return _frozen(out[:, 0].copy())


@dataclass(frozen=True)
class _Parts:
    """What the N×T arrays of a :class:`CompiledPool` are built from: the inline obligors'
    rows (computed when compiled, with their checks) and the tape's columns."""

    inline_principal: np.ndarray
    inline_interest: np.ndarray
    inline_cum_pd: np.ndarray
    inline_pd_1y: np.ndarray
    table: ObligorTable | None
    years: np.ndarray
    accrual: np.ndarray
    periods_per_year: int


def schedule_table(
    interest: np.ndarray, principal: np.ndarray, balance: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The obligors' schedules (float64[N, T] each: interest, principal, balance at the
    start of each period) as the collateral kernel reads them: a table of the distinct rows,
    float64[K, T, N_SC] (``SC_*``: interest, principal, balance after principal, balance), in
    order of first appearance, and each obligor's row, int64[N].

    Rows are the same when their bits are (so the kernel adds exactly the numbers it would
    read from the per-obligor arrays, and results do not change); a pool of obligors on the
    same terms then has a table that stays in the cache, however many obligors it has. A
    defaulter's rows are read in the default booking (measured on a 10,000-obligor pool with
    about 600 defaults a path: reading three [N, T] arrays there took half the collateral
    time). With every row distinct, K = N and the table is the per-obligor schedules, one
    obligor's periods and items next to each other."""
    n, n_t = interest.shape
    table = np.empty((n, n_t, L.N_SC))
    table[:, :, L.SC_INTEREST] = interest
    table[:, :, L.SC_PRINCIPAL] = principal
    table[:, :, L.SC_AFTER] = balance - principal
    table[:, :, L.SC_BALANCE] = balance
    if n == 0:
        return np.zeros(0, dtype=np.int64), table
    bits = table.reshape(n, -1).view(np.uint64)
    # rows grouped by a 64-bit hash of their bits (np.unique over whole rows took 28 ms for
    # 10,000 obligors), then checked bit for bit: a collision keeps every row apart
    _, first, inverse = np.unique(_row_hashes(bits), return_index=True, return_inverse=True)
    if first.size == n:
        return np.arange(n, dtype=np.int64), table
    for a in range(0, n, _CHUNK_ROWS):  # in chunks: no second copy of the table at once
        rows = bits[a : a + _CHUNK_ROWS]
        if not np.array_equal(rows, bits[first[inverse[a : a + _CHUNK_ROWS]]]):
            return np.arange(n, dtype=np.int64), table
    order = np.argsort(first)  # distinct rows in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse].astype(np.int64), np.ascontiguousarray(table[first[order]])


#: rows of the schedule table compared at a time in :func:`schedule_table`
_CHUNK_ROWS = 65_536


def _row_hashes(bits: np.ndarray) -> np.ndarray:
    """uint64[N]: a hash of each row of ``bits`` (uint64[N, M]), column by column (no
    temporary the size of ``bits``)."""
    odd = np.random.default_rng(0).integers(0, 2**62, size=bits.shape[1], dtype=np.uint64)
    mult = np.asarray(odd * np.uint64(2) + np.uint64(1), dtype=np.uint64)  # odd multipliers
    h = np.zeros(bits.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(bits.shape[1]):
            h = (h ^ bits[:, k]) * mult[k]
    return h


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def cumulative_pd(horizons: list[float], cumulative: list[float], years: np.ndarray) -> np.ndarray:
    """Cumulative PD at ``years`` from knots (horizon, cumulative PD), flat hazard between knots
    and after the last one (log-survival linear in time)."""
    h = np.concatenate([[0.0], np.asarray(horizons, dtype=float)])
    log_s = np.concatenate([[0.0], np.log1p(-np.asarray(cumulative, dtype=float))])
    out = np.empty_like(years)
    for k, y in enumerate(years):
        if y <= h[-1]:
            ls = np.interp(y, h, log_s)
        else:
            slope = (log_s[-1] - log_s[-2]) / (h[-1] - h[-2])
            ls = log_s[-1] + slope * (y - h[-1])
        out[k] = -math.expm1(ls)
    return out


def _amortize(
    o: Obligor, sched: PeriodSchedule, n_t: int, report: Callable[..., None], accrual: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    prin = np.zeros(n_t)
    intr = np.zeros(n_t)
    am = o.amortization
    r = o.rate / sched.periods_per_year
    bal = o.balance
    if isinstance(am, LicenseFeeSchedule):
        total = sum(p.principal for p in am.payments)
        if abs(total - o.balance) > L.FEN:
            report(
                "amortization.payments",
                f"license-fee principal sums to {total:,.2f} but the balance is "
                f"{o.balance:,.2f}; they must agree to the fen",
                total,
            )
        for k, p in enumerate(am.payments):
            t = sched.period_of(p.date)
            if t < 0 or t >= n_t:
                report(
                    f"amortization.payments[{k}].date",
                    "payment date outside the deal's periods (after closing, up to legal_final)",
                    p.date.isoformat(),
                )
                continue
            prin[t] += p.principal
            intr[t] += p.interest
        return prin, intr
    assert isinstance(am, Bullet | LevelPay | EqualPrincipal)
    f0 = am.first_period - 1
    last = f0 + am.n_periods - 1
    if last >= n_t:
        report(
            "amortization",
            f"schedule runs to period {last + 1} but the deal has {n_t} periods up to legal_final",
            {"first_period": am.first_period, "n_periods": am.n_periods},
        )
        return prin, intr
    n = am.n_periods
    if isinstance(am, LevelPay):
        # annuity r·B / (1 - (1 + r)^-n), written to stay exact for tiny r
        annuity = -math.expm1(-n * math.log1p(r))
        pay = bal / n if annuity <= n * 1e-15 else bal * r / annuity
    for t in range(last + 1):
        intr[t] = bal * (o.rate * accrual[t] if o.interest_basis == "accrual" else r)
        if t < f0:
            continue
        if isinstance(am, Bullet):
            amount = bal if t == last else 0.0
        elif isinstance(am, EqualPrincipal):
            amount = o.balance / n if t < last else bal
        else:
            amount = pay - bal * r if t < last else bal
        prin[t] = amount
        bal -= amount
    return prin, intr


def _rating_classes(pool: Pool, pc: ProblemCollector) -> dict[str, RatingClass]:
    """``pool.pd_classes`` by name; a name given twice is an error (which curve was meant?)."""
    classes: dict[str, RatingClass] = {}
    first: dict[str, int] = {}
    for k, c in enumerate(pool.pd_classes):
        if c.name in first:
            pc.add(
                f"pool.pd_classes[{k}].name",
                f"duplicate rating class name (also pool.pd_classes[{first[c.name]}])",
                c.name,
            )
            continue
        first[c.name] = k
        classes[c.name] = c
    return classes


def _labels(inline: list[str], tape: Labels | None) -> Labels:
    """The inline obligors' labels (ids or names), then the tape's rows'."""
    arr = pa.array(inline, type=pa.string())
    return Labels(arr if tape is None else pa.concat_arrays([arr, tape.arrow]))


def _inline_cum_pd(
    o: Obligor,
    classes: dict[str, RatingClass],
    years: np.ndarray,
    report: Callable[..., None],
) -> np.ndarray | None:
    """Cumulative PD float64[T] of an inline obligor at each payment date (``years`` from
    closing); None, reported, for an unknown rating class."""
    pd = o.pd
    if isinstance(pd, FlatPd):
        return 1.0 - (1.0 - pd.annual) ** years
    if isinstance(pd, PdTermStructure):
        return cumulative_pd(pd.horizons_years, pd.cumulative, years)
    if isinstance(pd, RatingClassPd):
        rc = classes.get(pd.rating_class)
        if rc is None:
            report(
                "pd.rating_class",
                f"unknown rating class; known: {sorted(classes)}",
                pd.rating_class,
            )
            return None
        return cumulative_pd(rc.horizons_years, rc.cumulative, years)
    return None


def _inline_flows(
    obligors: list[Obligor],
    sched: PeriodSchedule,
    classes: dict[str, RatingClass],
    years: np.ndarray,
    accrual: np.ndarray,
    pc: ProblemCollector,
    locate: Callable[[int, str], tuple[str, str]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scheduled principal and interest (yuan) and cumulative PD of the inline obligors,
    float64[N_inline, T] each (rows of obligors with problems, reported, stay 0)."""
    n_t = len(sched)
    n_in = len(obligors)
    prin = np.zeros((n_in, n_t))
    intr = np.zeros((n_in, n_t))
    # the curve at each payment date, and then at exactly one year (the Basel correlation's
    # PD, whatever the dates: interpolated between them, it was the PD to legal final for a
    # six-month deal, and off on a long first stub)
    cum_pd = np.zeros((n_in, n_t + 1))
    at = np.append(years, 1.0)
    for i, o in enumerate(obligors):

        def report(field: str, msg: str, value: object, i: int = i) -> None:
            pc.add_at(*locate(i, field), msg, value)

        prin[i], intr[i] = _amortize(o, sched, n_t, report, accrual)
        curve = _inline_cum_pd(o, classes, at, report)
        if curve is not None:
            cum_pd[i] = curve
    return prin, intr, cum_pd


def _obligor_terms(
    obligors: list[Obligor], table: ObligorTable | None, default_rec: Recovery, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Balance (yuan), rate (decimal), recovery rate (decimal), recovery lag (periods, int64)
    and base IP value (yuan, NaN: none), [N] each: the inline obligors, then the tape's rows;
    the pool's recovery where an obligor has none of its own."""
    n_in = len(obligors)
    balance = np.empty(n)
    rate = np.empty(n)
    rec_rate = np.empty(n)
    rec_lag = np.empty(n, dtype=np.int64)
    ip_value = np.empty(n)
    for i, o in enumerate(obligors):
        balance[i] = o.balance
        rate[i] = o.rate
        rec_rate[i] = (o.recovery or default_rec).rate
        rec_lag[i] = (o.recovery or default_rec).lag_periods
        ip_value[i] = ip_base_value(o.collateral)
    if table is not None:
        rows = slice(n_in, n)
        balance[rows] = table.balance
        rate[rows] = table.rate
        own = table.recovery_lag >= 0
        rec_rate[rows] = np.where(own, table.recovery_rate, default_rec.rate)
        rec_lag[rows] = np.where(own, table.recovery_lag, default_rec.lag_periods)
        ip_value[rows] = table.ip_values()
    return balance, rate, rec_rate, rec_lag, ip_value


def _sector_index(
    obligors: list[Obligor], table: ObligorTable | None, n: int
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each obligor's sector as int64[N] into the sector names, in order of first appearance
    (the inline obligors', then the tape's)."""
    sectors: list[str] = []
    sector_idx = np.zeros(n, dtype=np.int64)
    for i, o in enumerate(obligors):
        if o.sector not in sectors:
            sectors.append(o.sector)
        sector_idx[i] = sectors.index(o.sector)
    if table is not None:
        code = np.empty(len(table.sectors), dtype=np.int64)
        for k, name in enumerate(table.sectors):  # merged in order of first appearance
            if name not in sectors:
                sectors.append(name)
            code[k] = sectors.index(name)
        sector_idx[len(obligors) : n] = code[table.sector_code]
    return sector_idx, tuple(sectors)


def compile_pool(
    pool: Pool,
    sched: PeriodSchedule,
    pc: ProblemCollector,
    locate: Callable[[int, str], tuple[str, str]] | None = None,
) -> CompiledPool:
    """Build the pool arrays; problems (schedule beyond legal final, unknown PD class, duplicate
    ids, empty pool) go to ``pc``. ``locate(k, field)`` gives the (file, path) of obligor k's
    field — the deal file or a row of the pool tape.

    Inline obligors are compiled one by one; the rows of a tape (``pool.table``) as columns, with
    the same arithmetic in the same order, so that the arrays are bitwise those the obligors'
    models would give. Problems in tape rows are listed up to ``MAX_TAPE_PROBLEMS`` per kind,
    then counted."""
    if locate is None:
        locate = lambda k, field: (pc.file, f"pool.obligors[{k}]" + (f".{field}" if field else ""))  # noqa: E731
    obligors = pool.obligors
    table = pool.table
    n_in = len(obligors)
    n = n_in + (len(table) if table is not None else 0)
    if not n:
        pc.add("pool.obligors", "the pool is empty: give obligors or a tape with rows", [])
    ids = _labels([o.id for o in obligors], None if table is None else table.ids)
    _check_duplicates(ids, n_in, pc, locate)
    classes = _rating_classes(pool, pc)
    years = sched.years_from_closing()
    accrual = sched.accruals()
    prin, intr, cum_pd_1y = _inline_flows(obligors, sched, classes, years, accrual, pc, locate)
    cum_pd, pd_1y = cum_pd_1y[:, :-1].copy(), cum_pd_1y[:, -1].copy()
    balance, rate, rec_rate, rec_lag, ip_value = _obligor_terms(obligors, table, pool.recovery, n)
    if table is not None:
        _check_tape_schedules(table, len(sched), pc, n_in, locate)
    sector_idx, sectors = _sector_index(obligors, table, n)
    parts = _Parts(
        inline_principal=_frozen(prin),
        inline_interest=_frozen(intr),
        inline_cum_pd=_frozen(cum_pd),
        inline_pd_1y=_frozen(pd_1y),
        table=table,
        years=_frozen(years),
        accrual=_frozen(accrual),
        periods_per_year=sched.periods_per_year,
    )
    return CompiledPool(
        ids=ids,
        names=_labels([o.name for o in obligors], None if table is None else table.names),
        balance=balance,
        rate=rate,
        recovery_rate=rec_rate,
        recovery_lag=rec_lag,
        ip_value=ip_value,
        sector=sector_idx,
        sectors=sectors,
        _parts=parts,
    )


def _balance_start(balance: np.ndarray, prin: np.ndarray) -> np.ndarray:
    """Scheduled balance at the start of each period, floored at 0: balance less the principal
    of the periods before (a running sum along each row, computed in place)."""
    n, n_t = prin.shape
    out = np.empty((n, n_t))
    out[:, 0] = 0.0
    if n_t > 1:
        np.cumsum(prin[:, :-1], axis=1, out=out[:, 1:])
    np.subtract(balance[:, None], out, out=out)
    np.maximum(out, 0.0, out=out)
    return out


def _check_duplicates(
    ids: Labels, n_in: int, pc: ProblemCollector, locate: Callable[[int, str], tuple[str, str]]
) -> None:
    """Every repeat of an id, at the repeat, naming the first one (tape rows: the first
    ``MAX_TAPE_PROBLEMS``, then a count)."""
    first = first_rows(ids.arrow)
    if first is None:
        return
    repeats = np.flatnonzero(first != np.arange(len(first)))
    capped = _Capped(pc, "duplicate obligor ids")
    for n_seen, i in enumerate(repeats.tolist()):
        if i >= n_in and capped.listed >= MAX_TAPE_PROBLEMS:
            # past the cap: the rest (all tape rows, after the deal file's) only counted
            capped.count_more(len(repeats) - n_seen, locate(i, "id")[0])
            break
        first_file, first_path = locate(int(first[i]), "")
        file, path = locate(i, "id")
        also = first_path if first_file == file else f"{first_file}: {first_path}"
        capped.add(i >= n_in, file, path, f"duplicate obligor id (also {also})", ids[i])
    capped.close()


class _Capped:
    """Problems of one kind: all of those in the deal file, the first ``MAX_TAPE_PROBLEMS``
    of those in a tape, then one line counting the rest."""

    def __init__(self, pc: ProblemCollector, what: str):
        self.pc, self.what, self.listed, self.more = pc, what, 0, 0
        self.file = ""

    def count_more(self, n: int, file: str) -> None:
        """``n`` more problems in the tape ``file``, past the cap (counted, not listed)."""
        self.more += n
        self.file = file

    def add(self, in_tape: bool, file: str, path: str, msg: str, value: object) -> None:
        """One problem, listed (the caller stops at the cap and counts the rest)."""
        self.listed += in_tape
        self.pc.add_at(file, path, msg, value)

    def close(self) -> None:
        if self.more:
            self.pc.add_at(self.file, "<rows>", f"{self.more:,} more {self.what} not listed")


def _check_tape_schedules(
    t: ObligorTable,
    n_t: int,
    pc: ProblemCollector,
    offset: int,
    locate: Callable[[int, str], tuple[str, str]],
) -> None:
    """Schedules that run past legal final, as :func:`_amortize` reports them."""
    last = t.first_period + t.n_periods - 1  # 1-based; both at most MAX_COUNT: no overflow
    beyond = np.flatnonzero(last > n_t)
    if not len(beyond):
        return
    capped = _Capped(pc, "schedules beyond legal_final")
    for k in beyond[:MAX_TAPE_PROBLEMS].tolist():
        capped.add(
            True,
            *locate(offset + k, "amortization"),
            f"schedule runs to period {int(last[k])} but the deal has {n_t} periods up "
            "to legal_final",
            {"first_period": int(t.first_period[k]), "n_periods": int(t.n_periods[k])},
        )
    if len(beyond) > MAX_TAPE_PROBLEMS:
        capped.count_more(len(beyond) - MAX_TAPE_PROBLEMS, t.file)
    capped.close()


def _tape_schedules(
    t: ObligorTable,
    periods_per_year: int,
    accrual: np.ndarray,
    prin: np.ndarray,
    intr: np.ndarray,
) -> None:
    """Fill ``prin`` and ``intr`` (the tape's rows) as :func:`_amortize` does obligor by
    obligor: the same operations in the same order, one period at a time over all rows. Rows
    whose schedule runs past legal final stay zero (the compile reported them)."""
    n_t = len(accrual)
    first0 = t.first_period - 1
    last = first0 + t.n_periods - 1
    within = last < n_t
    bal0 = t.balance
    per_period = t.rate / periods_per_year
    pay = _level_payment(t, per_period)
    bullet = t.kind == KIND_BULLET
    equal = t.kind == KIND_EQUAL_PRINCIPAL
    instalment = bal0 / t.n_periods
    bal = bal0.copy()
    for p in range(n_t):
        alive = within & (p <= last)
        if not alive.any():
            break
        intr[:, p] = np.where(alive, bal * (t.rate * accrual[p]), 0.0)
        paying = alive & (p >= first0)
        before_last = p < last
        amount = np.where(
            bullet,
            np.where(before_last, 0.0, bal),
            np.where(
                equal,
                np.where(before_last, instalment, bal),
                np.where(before_last, pay - bal * per_period, bal),
            ),
        )
        prin[:, p] = np.where(paying, amount, 0.0)
        bal = np.where(paying, bal - amount, bal)


def _level_payment(t: ObligorTable, per_period: np.ndarray) -> np.ndarray:
    """The level payment of each level-pay row (0 elsewhere), as :func:`_amortize` computes
    it: the annuity factor with ``math.log1p``/``math.expm1`` once per distinct (n, rate)."""
    pay = np.zeros(len(t))
    rows = np.flatnonzero(t.kind == KIND_LEVEL_PAY)
    if not len(rows):
        return pay
    n = t.n_periods[rows]
    r = per_period[rows]
    keys, inverse = np.unique(np.stack([n.astype(np.float64), r]), axis=1, return_inverse=True)
    annuity = np.array(
        [-math.expm1(-int(kn) * math.log1p(kr)) for kn, kr in keys.T.tolist()], dtype=np.float64
    )[inverse.reshape(-1)]
    bal = t.balance[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        pay[rows] = np.where(annuity <= n * 1e-15, bal / n, bal * r / annuity)
    return pay


#: distinct flat PDs of a tape computed one by one, exactly as an inline obligor's (beyond this
#: many, all at once: the same power function)
_PD_ONE_BY_ONE = 10_000


def _flat_pd(annual: np.ndarray, years: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = 1 - (1 - annual[k]) ** years``, once per distinct PD."""
    values, inverse = np.unique(annual, return_inverse=True)
    if len(values) <= _PD_ONE_BY_ONE:
        curves = np.empty((len(values), len(years)))
        for k, a in enumerate(values.tolist()):
            curves[k] = 1.0 - (1.0 - a) ** years
    else:
        curves = 1.0 - (1.0 - values)[:, None] ** years[None, :]
    np.take(curves, inverse.reshape(-1), axis=0, out=out)
