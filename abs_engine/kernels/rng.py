"""Counter-based random numbers: every draw is a pure function of (seed, path, stream, counter).

No generator state is carried between paths, so a path's numbers do not depend on which
thread ran it, in which batch, or on which machine. The mixer is the SplitMix64 finaliser
(Steele, Lea & Flood 2014), which passes BigCrush as a counter-based generator:

    base(seed, path)        = mix(seed ^ mix(path + γ))             once a path
    key(seed, path, stream) = mix(base + (stream + 1) · γ)
    bits(key, counter)      = mix(key + (counter + 1) · γ)
    uniform                 = ((bits >> 11) + 0.5) · 2^-53        in (0, 1), never 0 or 1

Normals use the inverse CDF (Wichura's AS241, relative error about 1e-16), so one uniform
gives one normal and the mapping is monotone. Every function is written once and compiled
with ``njit``; the ``*_py`` names are the plain-Python twins used by the tests.
"""

from __future__ import annotations

import math

import numpy as np

from ._twin import jit_twin

__all__ = [
    "COUNTER_0",
    "STREAM_FACTORS",
    "STREAM_MIXING",
    "STREAM_OBLIGORS",
    "STREAM_PREPAY",
    "STREAM_PROVIDERS",
    "STREAM_PROVIDER_MIXING",
    "STREAM_RECOVERY",
    "STREAM_LAG",
    "STREAM_MIX_PICK",
    "gamma_variate",
    "ndtri",
    "normal",
    "path_base",
    "path_key",
    "stream_key",
    "uniform",
]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO_M53 = 2.0**-53

# stream numbers: each kind of draw has its own independent sequence within a path. Plain ints
# here; the compiled twins read them as int64 scalars (``jit_twin`` rebinds a module's
# all-caps ints), so path_key compiles once for every stream, not once per literal
STREAM_FACTORS = 0  # systematic factors (counter = factor index)
STREAM_MIXING = 1  # Student-t chi-square mixing variable
STREAM_PREPAY = 2  # stochastic prepayment multiplier
STREAM_PROVIDERS = 3  # support providers' idiosyncratic terms (counter = support index)
STREAM_OBLIGORS = 4  # one uniform per obligor (counter = obligor index)
STREAM_RECOVERY = 5  # IP value shock of a defaulted obligor (counter = obligor index)
STREAM_LAG = 6  # random disposal lag of a defaulted obligor (counter = obligor index)
STREAM_MIX_PICK = 7  # importance sampling: which part of the mixture a path's W is drawn from
#: counter 0 of a stream, named for the same reason: a literal 0 at a call compiled
#: ``uniform`` and ``normal`` once more each (0.2-0.3 s of the cold compile apiece)
COUNTER_0 = 0
STREAM_PROVIDER_MIXING = 16  # + support index: an independent provider's own chi-square draw


def _mix_py(z):
    z = np.uint64(z)  # numba types a key below 2**63 coming from Python as int64
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def path_base_py(seed, path):
    """The part of every stream key of a path that depends on (seed, global path index)
    alone, mix(seed ^ mix(path + γ)); ints in, np.uint64 out. A path's draws compute it
    once and finish each stream's key from it (:func:`stream_key_py`): two mixes fewer a
    stream, the same keys."""
    return _mix_py(np.uint64(seed) ^ _mix_py(np.uint64(path) + _GAMMA))


def stream_key_py(base, stream):
    """The key of one stream of a path from the path's :func:`path_base_py`:
    mix(base + (stream + 1)·γ)."""
    return _mix_py(np.uint64(base) + np.uint64(stream + 1) * _GAMMA)


def path_key_py(seed, path, stream):
    """64-bit key of one (seed, global path index, stream); ints in, np.uint64 out."""
    return stream_key_py(path_base_py(seed, path), stream)


def uniform_py(key, counter):
    """Uniform in (0, 1) for draw number ``counter`` of a key."""
    z = _mix_py(np.uint64(key) + (np.uint64(counter) + _ONE) * _GAMMA)
    return (float(z >> _S11) + 0.5) * _TWO_M53


# Wichura (1988) AS241 PPND16 coefficients, highest power first (numerator / denominator)
_CENTRAL_NUM = (2509.0809287301226727, 33430.575583588128105, 67265.770927008700853,
                45921.953931549871457, 13731.693765509461125, 1971.5909503065514427,
                133.14166789178437745, 3.387132872796366608)  # fmt: skip
_CENTRAL_DEN = (5226.495278852545925, 28729.085735721942674, 39307.89580009271061,
                21213.794301586595867, 5394.1960214247511077, 687.1870074920579083,
                42.313330701600911252, 1.0)  # fmt: skip
_NEAR_NUM = (0.00077454501427834140764, 0.0227238449892691845833, 0.24178072517745061177,
             1.27045825245236838258, 3.64784832476320460504, 5.7694972214606914055,
             4.6303378461565452959, 1.42343711074968357734)  # fmt: skip
_NEAR_DEN = (1.05075007164441684324e-9, 0.0005475938084995344946, 0.0151986665636164571966,
             0.14810397642748007459, 0.68976733498510000455, 1.6763848301838038494,
             2.05319162663775882187, 1.0)  # fmt: skip
_FAR_NUM = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 0.0012426609473880784386,
            0.026532189526576123093, 0.29656057182850489123, 1.7848265399172913358,
            5.4637849111641143699, 6.6579046435011037772)  # fmt: skip
_FAR_DEN = (2.04426310338993978564e-15, 1.4215117583164458887e-7, 1.8463183175100546818e-5,
            0.0007868691311456132591, 0.0148753612908506148525, 0.13692988092273580531,
            0.59983220655588793769, 1.0)  # fmt: skip


def _poly_py(c, r):
    """Horner: c[0]·r^(n-1) + ... + c[n-1], evaluated as ((c[0]·r + c[1])·r + ...)."""
    v = c[0]
    for k in range(1, len(c)):
        v = v * r + c[k]
    return v


def ndtri_py(p):
    """Inverse standard normal CDF, Wichura (1988) AS241 PPND16; p in (0, 1)."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _poly_py(_CENTRAL_NUM, r) / _poly_py(_CENTRAL_DEN, r)
    r = p if q < 0.0 else 1.0 - p
    r = math.sqrt(-math.log(r))
    if r <= 5.0:
        r -= 1.6
        val = _poly_py(_NEAR_NUM, r) / _poly_py(_NEAR_DEN, r)
    else:
        r -= 5.0
        val = _poly_py(_FAR_NUM, r) / _poly_py(_FAR_DEN, r)
    return -val if q < 0.0 else val


def normal_py(key, counter):
    """Standard normal for draw number ``counter`` of a key (inverse CDF of one uniform)."""
    return ndtri_py(uniform_py(key, counter))


def gamma_variate_py(key, shape):
    """Gamma(shape, 1) variate from one path key (chi-square(nu) = 2 · Gamma(nu / 2)).

    Marsaglia & Tsang (2000) for shape >= 1; shape < 1 via the x·U^(1/shape) boost. Draws use
    counters 0, 1, 2, ... of the key; rejection makes their number vary, which is fine: the
    key belongs to this path and stream alone."""
    boost = 1.0
    a = shape
    c_idx = COUNTER_0
    if a < 1.0:
        boost = uniform_py(key, c_idx) ** (1.0 / a)
        c_idx += 1
        a += 1.0
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = normal_py(key, c_idx)
        c_idx += 1
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = uniform_py(key, c_idx)
        c_idx += 1
        if u < 1.0 - 0.0331 * x * x * x * x:
            return d * v * boost
        if math.log(u) < 0.5 * x * x + d * (1.0 - v + math.log(v)):
            return d * v * boost


_mix = jit_twin(_mix_py, cache=True, inline="always")
path_base = jit_twin(
    path_base_py, {"_mix_py": _mix}, cache=True, inline="always", no_cpython_wrapper=False
)
stream_key = jit_twin(
    stream_key_py, {"_mix_py": _mix}, cache=True, inline="always", no_cpython_wrapper=False
)
path_key = jit_twin(
    path_key_py,
    {"path_base_py": path_base, "stream_key_py": stream_key},
    cache=True,
    no_cpython_wrapper=False,
)
uniform = jit_twin(uniform_py, {"_mix_py": _mix}, cache=True, no_cpython_wrapper=False)
_poly = jit_twin(_poly_py, cache=True, inline="always")
ndtri = jit_twin(ndtri_py, {"_poly_py": _poly}, cache=True)  # for kernels: 0.3 s less to compile
normal = jit_twin(
    normal_py, {"uniform_py": uniform, "ndtri_py": ndtri}, cache=True, no_cpython_wrapper=False
)
gamma_variate = jit_twin(
    gamma_variate_py,
    {"uniform_py": uniform, "normal_py": normal},
    cache=True,
    no_cpython_wrapper=False,
)
