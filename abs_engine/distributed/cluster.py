"""Opening a Dask cluster for a command: ``local:N`` starts a ``LocalCluster`` of N worker
processes on this machine, ``tcp://HOST:PORT`` connects to a running scheduler.
:func:`connect` yields a :class:`~abs_engine.distributed.runner.DaskRunner` and closes what
it opened when the block ends, also after an error or Ctrl-C.

Worker processes are started with *spawn*, not fork: a forked child of a process that runs
threads (the kernel threads, Dask's own) inherits locks held by threads it does not have.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AbsEngineError, InputError

if TYPE_CHECKING:
    from .runner import DaskRunner

__all__ = ["ClusterError", "ClusterSpec", "MAX_LOCAL_WORKERS", "connect", "parse_cluster"]

#: the most worker processes ``local:N`` starts
MAX_LOCAL_WORKERS = 256
#: seconds to wait for a remote scheduler before giving up with a clear error
CONNECT_TIMEOUT_S = 10
#: seconds to wait for a local cluster's workers to start
START_TIMEOUT_S = 120

_ADDRESS = re.compile(r"^tcp://[^\s/:]+:\d{1,5}$")


class ClusterError(AbsEngineError):
    """The Dask cluster could not be started or reached, or was lost during a run."""


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster to run on: ``n_workers`` local worker processes, or a scheduler ``address``."""

    text: str
    n_workers: int | None = None
    address: str | None = None


def parse_cluster(text: str) -> ClusterSpec:
    """``local:N`` (1 <= N <= :data:`MAX_LOCAL_WORKERS`) or ``tcp://HOST:PORT``; anything
    else is an :class:`~abs_engine.errors.InputError` naming the value and the accepted forms.
    (``tls://`` needs a security configuration: connect a ``distributed.Client`` yourself and
    pass it to :func:`abs_engine.simulate`.)"""
    if not isinstance(text, str):
        raise InputError(f"cluster must be a string like 'local:2', got {text!r}")
    t = text.strip()
    m = re.fullmatch(r"local:(\d{1,6})", t)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= MAX_LOCAL_WORKERS:
            raise InputError(
                f"cluster {text!r}: local workers must be 1 .. {MAX_LOCAL_WORKERS}, got {n}"
            )
        return ClusterSpec(t, n_workers=n)
    if _ADDRESS.match(t) and 0 < int(t.rsplit(":", 1)[1]) < 65536:
        return ClusterSpec(t, address=t)
    raise InputError(
        f"cluster {text!r} is not 'local:N' (N worker processes on this machine) or "
        "'tcp://HOST:PORT' (a running Dask scheduler)"
    )


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Dask's own log lines (worker restarts, connection retries) kept off the console; the
    command reports what matters itself."""
    import distributed  # noqa: F401  (its logging set-up gives its loggers their own levels)

    # tornado.application: the client's event loop logs each message it could not send to a
    # scheduler that died mid-run, with a traceback; the run's own error line says it once
    names = ["distributed", "tornado.application"] + [
        n for n in logging.root.manager.loggerDict if n.startswith("distributed.")
    ]
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            # the scheduler's HTTP endpoint moves to a free port when 8787 is taken: no news
            warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
            # a large pool's model travels in its holding task's spec (runner.scattered)
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            yield
    finally:
        for lg, level in zip(loggers, old, strict=True):
            lg.setLevel(level)


@contextmanager
def _local_cluster(spec: ClusterSpec) -> Iterator[Any]:
    """A client of a new ``LocalCluster`` of ``spec.n_workers`` spawned worker processes (one
    Dask thread each), every worker started; closed when the block ends."""
    from distributed import Client, LocalCluster

    stack = contextlib.ExitStack()
    try:
        local = stack.enter_context(
            LocalCluster(
                n_workers=spec.n_workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.CRITICAL,
            )
        )  # fmt: skip
        client = stack.enter_context(Client(local, timeout=START_TIMEOUT_S))
        client.wait_for_workers(spec.n_workers, timeout=START_TIMEOUT_S)
    except (OSError, RuntimeError) as exc:  # TimeoutError is an OSError
        stack.close()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterError(f"could not start the local cluster {spec.text}: {text}") from None
    with stack:
        yield client


@contextmanager
def connect(
    cluster: str | ClusterSpec, threads: int | None = None, task_blocks: int | None = None
) -> Iterator[DaskRunner]:
    """A :class:`DaskRunner` on the cluster ``cluster`` (see :func:`parse_cluster`) for the
    duration of the block. ``threads``: kernel threads per task (default: on a local cluster
    the machine's cores shared among the workers; on a remote one the worker's default)."""
    spec = cluster if isinstance(cluster, ClusterSpec) else parse_cluster(cluster)
    import dask
    from distributed import Client

    from .runner import DaskRunner, default_threads

    with _quiet_logs(), dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}):
        if spec.n_workers is not None:
            with _local_cluster(spec) as client:
                yield DaskRunner(client, threads or default_threads(spec.n_workers), task_blocks)
            return
        try:
            client = Client(spec.address, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {spec.address} (waited up to "
                f"{CONNECT_TIMEOUT_S} s): {exc}"
            ) from exc
        except Exception as exc:  # something answered, not as a scheduler (a worker's port)
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ClusterError(
                f"{spec.address} did not answer as a Dask scheduler ({type(exc).__name__}: "
                f"{first}): is it a worker's address? give the scheduler's"
            ) from exc
        with client:
            yield DaskRunner(client, threads, task_blocks)
