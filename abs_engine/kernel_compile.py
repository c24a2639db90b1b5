"""The first compile of the block kernel, over two processes.

numba compiles under one global lock, so a cold compile of the block kernel
(:data:`~abs_engine.kernels.montecarlo.run_block`, or its conditional-Monte-Carlo sibling)
compiles everything it calls one function after the other: the draws' random-number
functions, the waterfall interpreter (the longest, 6-8 s on this project's 2-core VM), the
per-path metrics, cash flows and sums, then the kernel itself.

The generic block kernel calls the waterfall and its per-path helpers bound, not linked
(:mod:`abs_engine.kernels._link`): its compile needs only their return types, and sets the
calls' targets once its own code is done. So when such a kernel is not in numba's on-disk
cache and this process may use a second core, :func:`compile_callees` starts a second Python
process (``python -P -m abs_engine.kernel_compile``, the numba signatures to compile pickled
on its stdin) that compiles the waterfall and those helpers into the cache while this one
compiles the kernel and its linked callees; binding them waits for that process and loads
them from the cache. A deal-specialised kernel has its own
waterfall linked in: this process compiles that first, the other process the rest.
Whatever goes wrong on the other side (no process started, a crash, a cache it cannot write,
a timeout) costs only time: numba compiles here what it does not find.
``ABS_ENGINE_COMPILE_PROCESSES=1`` keeps the compile in one process. The other process is a
whole Python with numba: about 5 s and 200 MB at its peak, measured.
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

from .kernels import _link

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
#: other processes compiling a callee that a kernel binds, by the callee's (module name,
#: name) (:func:`compile_callees`)
_HELPERS: dict[tuple[str, str], subprocess.Popen[bytes]] = {}

__all__ = [
    "PROCESSES_ENV",
    "compile_callees",
    "is_cold",
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


def start_helper(
    signatures: Sequence[tuple[int, tuple[Any, ...]]],
) -> subprocess.Popen[bytes] | None:
    """Start ``python -P -m abs_engine.kernel_compile`` compiling
    :data:`~abs_engine.kernels.montecarlo.BLOCK_CALLEES` for ``signatures`` ((index, tuple of
    numba types) pairs), unless ``ABS_ENGINE_COMPILE_PROCESSES`` is 1 or 0, this
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


def compile_callees(
    kernel: Any,
    callees: Sequence[Any],
    args: Sequence[tuple[Any, ...]],
    kernel_call: tuple[Any, ...] | None = None,
) -> None:
    """Before ``kernel``'s first compile, when it is cold (:func:`is_cold`), over two
    processes where another can help (:func:`start_helper`); does nothing when ``kernel`` is
    cached.

    * ``kernel_call`` given (the generic block kernels, which call the waterfall and their
      per-path helpers bound, not linked: :mod:`abs_engine.kernels._link`): the other
      process compiles the callees ``kernel`` binds (:func:`_bound_apart`) while this one
      compiles ``kernel`` for the arguments ``kernel_call``, its linked callees with it;
      binding them, once the kernel's own code is done, waits for the other process and
      loads them from the cache.
    * otherwise (a deal-specialised kernel, its waterfall linked in): the first of
      ``callees`` here, the others there, for theirs."""
    with _LOCK:
        if id(kernel) in _DONE or not is_cold(kernel):
            return
        _DONE.add(id(kernel))
        signatures = [tuple(numba.typeof(a) for a in call) for call in args]
        if kernel_call is None:
            proc = start_helper(list(enumerate(signatures))[1:])
            here = lambda: callees[0].compile(signatures[0])  # noqa: E731
        else:
            there = _bound_apart(kernel, callees, signatures)
            proc = start_helper([(i, signatures[i]) for i in there]) if there else None
            here = lambda: kernel.compile(tuple(numba.typeof(a) for a in kernel_call))  # noqa: E731
            if proc is not None:
                for i in there:
                    _HELPERS[there[i]] = proc
                    _link.AWAITED.add(there[i])
        try:
            here()
        except BaseException:  # a failed compile or an interrupt: nothing to wait for
            _forget(proc)
            _stop(proc)
            raise
        _forget(proc)
        _finish(proc)


def _bound_apart(
    kernel: Any, callees: Sequence[Any], signatures: Sequence[tuple[Any, ...]]
) -> dict[int, tuple[str, str]]:
    """The callees ``kernel`` calls bound (by index, with the (module name, name) it binds
    them by) that are not compiled or loaded in this process yet for their signature: the
    other process compiles those."""
    targets = _link.bound_targets(getattr(kernel, "py_func", None))
    there: dict[int, tuple[str, str]] = {}
    for i, (callee, sig) in enumerate(zip(callees, signatures, strict=False)):
        where = _link.where(callee)
        if where is None or where not in targets or where in there.values():
            continue
        if sig not in getattr(callee, "overloads", {}):  # (another kernel's, already here)
            there[i] = where
    return there


def _forget(proc: subprocess.Popen[bytes] | None) -> None:
    """``proc`` no longer waited for when its callee is bound."""
    for where, other in list(_HELPERS.items()):
        if other is proc:
            del _HELPERS[where]
            _link.AWAITED.discard(where)


def _wait_for_helpers(module: str, name: str) -> None:
    """Before the bound callee ``module.name`` is compiled or loaded here: wait for the other
    process compiling it (:func:`compile_callees`), so that numba loads it from the cache."""
    proc = _HELPERS.pop((module, name), None)
    _link.AWAITED.discard((module, name))
    _finish(proc)


def main() -> int:
    """The other process: compile :data:`~abs_engine.kernels.montecarlo.BLOCK_CALLEES` for the
    (index, signature) pairs pickled on stdin (into numba's on-disk cache)."""
    from .kernels.montecarlo import BLOCK_CALLEES

    for i, sig in pickle.load(sys.stdin.buffer):
        BLOCK_CALLEES[i].compile(sig)
    return 0


_link.BEFORE_BIND.append(_wait_for_helpers)

if __name__ == "__main__":
    sys.exit(main())
