"""Scale-out on Dask: a Monte Carlo run's path blocks (and the runs of a grid) as tasks on a
``distributed`` cluster, added back in block order, so a cluster run is bitwise identical to
a local one.

>>> from distributed import Client                              # doctest: +SKIP
>>> res = ae.simulate(n_paths=1_000_000, client=Client("tcp://host:8786"))  # doctest: +SKIP

or from the command line, ``abs-engine run --cluster local:2`` (two worker processes here) or
``--cluster tcp://HOST:PORT`` (a running scheduler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .cluster import ClusterError, ClusterSpec, connect, parse_cluster

if TYPE_CHECKING:
    from .runner import DaskRunner, run_range_task

__all__ = [
    "ClusterError",
    "ClusterSpec",
    "DaskRunner",
    "connect",
    "parse_cluster",
    "run_range_task",
    "runner_for",
]


def __getattr__(name: str) -> Any:
    # the runner imports the simulation (numba, pandas): loaded on first use, so that parsing
    # ``--cluster`` costs nothing
    if name in ("DaskRunner", "run_range_task", "default_threads"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def runner_for(client: Any, func: str = "simulate") -> DaskRunner | None:
    """The runner for a ``client=`` argument: None for None, a :class:`DaskRunner` as given,
    or one around a ``distributed.Client``; anything else is an ArgumentTypeError."""
    from distributed import Client

    from .runner import DaskRunner

    if client is None or isinstance(client, DaskRunner):
        return client

    from ..errors import ArgumentTypeError, short_repr

    if not isinstance(client, Client):
        raise ArgumentTypeError(
            f"{func}: client must be a distributed.Client or a DaskRunner, got "
            f"{short_repr(client)} ({type(client).__name__})"
        )
    return DaskRunner(client)
