"""The first compile of the block kernel, over two processes.

numba compiles under one global lock, so a cold compile of the block kernel
(:data:`~abs_engine.kernels.montecarlo.run_block`, or its conditional-Monte-Carlo sibling)
compiles everything it calls one function after the other: the draws' random-number
functions, the waterfall interpreter (the longest, about 8 s on this project's 2-core VM),
the per-path metrics, cash flows and sums, then the kernel itself, which links them all.
Only the kernel waits on the others; the waterfall and the rest
(:data:`~abs_engine.kernels.montecarlo.BLOCK_CALLEES`) wait on nothing.

So when the kernel is not in numba's on-disk cache and this process may use a second core,
:func:`compile_callees` starts a second Python process (``python -P -m
abs_engine.kernel_compile``, the callees' numba signatures pickled on its stdin) that compiles
all but the waterfall into the cache, while this one compiles the waterfall; the kernel's
compile then loads them from the cache. Whatever goes wrong on the other side (no process
started, a crash, a cache it cannot write, a timeout) costs only time: numba compiles here
what it does not find. ``ABS_ENGINE_COMPILE_PROCESSES=1`` keeps the compile in one process.
The other process is a whole Python with numba: about 5 s and 200 MB at its peak, measured.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numba

#: environment variable: "1" (or "0") compiles in this process alone
PROCESSES_ENV = "ABS_ENGINE_COMPILE_PROCESSES"


def _wait_s(default: float = 120.0) -> float:
    """``ABS_ENGINE_COMPILE_WAIT_S`` as seconds; the default for anything but a positive
    finite number, as the other variables fall back to theirs (text stopped ``import
    abs_engine``'s commands with a traceback)."""
    try:
        v = float(os.environ.get("ABS_ENGINE_COMPILE_WAIT_S", "").strip() or default)
    except ValueError:
        return default
    return v if math.isfinite(v) and v > 0 else default


#: the longest this process waits for the other once its own part is compiled (seconds;
#: ``ABS_ENGINE_COMPILE_WAIT_S`` sets it): normally a few seconds, the waterfall taking longer
WAIT_S = _wait_s()
#: kernels whose callees this process has compiled apart already (two threads starting cold
#: runs at once start one other process, not two)
_DONE: set[int] = set()
_LOCK = threading.Lock()

__all__ = [
    "PROCESSES_ENV",
    "compile_callees",
    "is_cold",
    "load_waterfall_first",
    "main",
    "start_helper",
]


def _one_process() -> bool:
    """``ABS_ENGINE_COMPILE_PROCESSES`` set to 1 or 0 (other values: the default, two)."""
    try:
        return int(os.environ.get(PROCESSES_ENV, "2").strip() or "2") <= 1
    except ValueError:
        return False


def _python() -> str | None:
    """The interpreter to start: this one, where it is a Python (an embedding host's
    ``sys.executable`` may be something else, which ``-m`` would not run)."""
    exe = sys.executable
    if exe and Path(exe).name.lower().startswith(("python", "pypy")):
        return exe
    return None


def _cores() -> int:
    """The cores this process may run on (numba's count, from the affinity mask)."""
    return int(getattr(numba.config, "NUMBA_DEFAULT_NUM_THREADS", 1))


def is_cold(kernel: Any) -> bool:
    """Whether numba is about to compile ``kernel`` from scratch: it caches it on disk, and
    its cache folder holds no index for it (numba names an index ``<module>.<function>-<line>
    .py<version>.nbi``; :mod:`abs_engine.kernels` drops those of edited kernel sources). False
    when unsure."""
    try:
        folder = kernel.stats.cache_path
        if not folder:
            return False  # not cached on disk: nothing another process compiles would reach here
        prefix = f"{kernel.py_func.__module__.rsplit('.', 1)[-1]}.{kernel.py_func.__qualname__}-"
        path = Path(folder)
        return not path.is_dir() or not any(
            f.name.startswith(prefix) and f.suffix == ".nbi" for f in path.iterdir()
        )
    except Exception:  # numba internals moved: compile as before
        return False


def start_helper(signatures: Sequence[tuple[Any, ...]]) -> subprocess.Popen[bytes] | None:
    """Start ``python -P -m abs_engine.kernel_compile`` compiling the callees after the first
    of :data:`~abs_engine.kernels.montecarlo.BLOCK_CALLEES` for ``signatures`` (one tuple of
    numba types each, in that order), unless ``ABS_ENGINE_COMPILE_PROCESSES`` is 1 or 0, this
    process has one core, or ``sys.executable`` is no Python; None when it was not started."""
    python = _python()
    if _one_process() or _cores() < 2 or python is None:
        return None
    env = dict(os.environ)
    # the other process imports this very package (by this module's name, whatever the
    # package is called), installed or not; an installed one it finds where this one did
    root = Path(__file__).resolve().parent.parent
    if root.name not in ("site-packages", "dist-packages"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    try:
        payload = pickle.dumps(list(signatures))
        # -P: not the working folder first on its path, where another checkout may be
        proc = subprocess.Popen(
            [python, "-P", "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except Exception:  # cannot pickle, cannot start: compile here
        return None
    try:
        if proc.stdin is None:  # pragma: no cover - Popen with stdin=PIPE sets it
            raise OSError("no pipe to the other process")
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:  # it died before reading: compile here
        _stop(proc)
        return None
    except BaseException:
        _stop(proc)
        raise
    return proc


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop the other process, if any (what it cached stays: numba writes a temporary file and
    renames it, so a file is whole or absent; a killed save may leave the temporary one)."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def _finish(proc: subprocess.Popen[bytes] | None) -> None:
    """Wait for the other process (at most :data:`WAIT_S`); stop it when it takes longer, or
    when the wait is interrupted (Ctrl-C, a signal turned into an exception)."""
    if proc is None:
        return
    try:
        proc.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        _stop(proc)
    except BaseException:
        _stop(proc)
        raise


def compile_callees(kernel: Any, callees: Sequence[Any], args: Sequence[tuple[Any, ...]]) -> None:
    """Before ``kernel``'s first compile: when it is cold (:func:`is_cold`), compile the
    first of ``callees`` (the waterfall) here for ``args[0]``, and the others in another
    process (:func:`start_helper`) for theirs, and wait for it. Does nothing when ``kernel``
    is cached, and compiles only here when another process cannot help."""
    with _LOCK:
        if id(kernel) in _DONE or not is_cold(kernel):
            return
        _DONE.add(id(kernel))
        signatures = [tuple(numba.typeof(a) for a in call) for call in args]
        proc = start_helper(signatures[1:])
        try:
            callees[0].compile(signatures[0])
        except BaseException:  # a failed compile or an interrupt: nothing to wait for
            _stop(proc)
            raise
        _finish(proc)


def load_waterfall_first(
    kernel: Any, callees: Sequence[Any], args: Sequence[tuple[Any, ...]]
) -> None:
    """Before ``kernel`` is first loaded from numba's cache in this process, load the first of
    ``callees`` (its waterfall) from the cache for ``args[0]``: about 12 ms.

    numba links the code of a kernel's callees into the kernel's own (a copy of each,
    optimised once more with the kernel), and where the process has loaded the callee itself
    already, the kernel's calls run that one instead. The generic waterfall's own compile runs
    faster than its copy in the generic block kernel: about 8% less time a path of the bundled
    deal as shipped and 11% with every path computed, one thread (``benchmarks/HISTORY.md``).
    A cold compile always compiled the waterfall first (:func:`compile_callees`), so only a
    process's first run got it, and every later process, which loaded the kernel alone, did
    not. The driver calls it for the generic kernels only: the specialised one ran the same
    either way. Does nothing when ``kernel`` is loaded or compiled already, or the waterfall
    is not in the cache (loading it would then be a compile of several seconds:
    :func:`compile_callees` does that for a cold kernel)."""
    if not callees or getattr(kernel, "signatures", True):
        return
    waterfall = callees[0]
    if not hasattr(waterfall, "compile") or is_cold(waterfall):
        return
    waterfall.compile(tuple(numba.typeof(a) for a in args[0]))


def main() -> int:
    """The other process: compile :data:`~abs_engine.kernels.montecarlo.BLOCK_CALLEES` after
    the first for the signatures pickled on stdin (into numba's on-disk cache)."""
    from .kernels.montecarlo import BLOCK_CALLEES

    signatures = pickle.load(sys.stdin.buffer)
    for dispatcher, sig in zip(BLOCK_CALLEES[1:], signatures, strict=True):
        dispatcher.compile(sig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
