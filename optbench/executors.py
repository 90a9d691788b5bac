"""Where a sweep's batches run: this process (over every local device), or Dask workers.

An executor is handed the batches of a sweep (:func:`optbench.engine.batch`: resolved specs
and numpy arrays, nothing compiled) and hands back each batch's outputs (numpy arrays) as
it finishes; the driver turns them into rows and alone writes the results folder.

- :class:`Local`, the default: the batches one after another in this process, each through
  :func:`run_batch`: the problem's program over the batch's runs, which shard over the local
  devices when JAX sees several (GPUs, or CPU devices forced with
  ``XLA_FLAGS=--xla_force_host_platform_device_count=N``): :func:`on_devices`.
- :class:`Dask`: one task per batch on a Dask cluster (``client.submit``, ``as_completed``),
  all submitted at once, so the scheduler keeps every worker busy (a task problem's groups,
  one program here, are a task each: :func:`optbench.engine.split_job`). A worker unpickles
  the batch (the problem rebuilds itself from the catalogue), compiles from its own
  compilation cache (``OPTBENCH_COMPILATION_CACHE`` in its environment: a shared folder can
  be given) and sends the arrays back. A training task's runs are split into the driver's
  shard count (:func:`optbench.problems.tasks.shards.fixed`), so the numbers do not depend
  on the machine that ran them. A worker that dies costs its running batch, which the
  scheduler runs again elsewhere; a batch that raises is re-raised on the driver with the
  worker's traceback; stopping (Ctrl-C, an error) cancels what is still queued.
:func:`connect` turns ``optbench.run(..., cluster=...)`` into an executor.

Example:
    >>> with connect(None) as executor:
    ...     type(executor).__name__
    'Local'
"""

from __future__ import annotations

import logging
import math
import pickle
import signal
import socket
import threading
import traceback
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from optbench._errors import ConfigError
from optbench.engine import execute, job_indices, split_job
from optbench.problems.base import Batch, Bundle, OnProgress, Outputs
from optbench.problems.tasks import shards

#: How to install what ``cluster=`` needs: the one-line fix of the missing-extra error.
INSTALL = 'pip install "optbench[dask]"'
#: Seconds to wait for a scheduler named by its address before giving up.
CONNECT_S = 20.0

#: ``(index, batch)``: a batch of a sweep and the index of its group; or ``(indices,
#: bundle)``: the groups of a problem that run together (:func:`optbench.engine.plan_jobs`),
#: whose outputs are a tuple, one per group.
Job = tuple[int | tuple[int, ...], Batch | Bundle]
#: ``(index, outputs)`` of a finished job (``(indices, tuple of outputs)`` for a bundle).
Done = tuple[int | tuple[int, ...], Outputs | tuple[Outputs, ...]]


def run_batch(
    batch: Batch | Bundle, on_progress: OnProgress | None = None
) -> Outputs | tuple[Outputs, ...]:
    """:func:`optbench.engine.execute` with the batch's runs over every local device (a
    bundle: each of its batches' runs)."""
    return execute(on_devices(batch), on_progress)


def on_devices(batch: Batch | Bundle) -> Batch | Bundle:
    """The batch with its per-run arrays (seeds, traced hyperparameters) sharded over the
    local devices along the run axis (``jax.sharding``), when JAX sees several; the program
    follows its inputs (each device runs its share of the runs). It uses the largest device
    count that divides the number of runs (all of them when it divides), and returns the
    batch itself with one device, or when no count above one divides it. The training tasks
    pad their runs to a multiple of the device count and split them themselves
    (:func:`optbench.problems.tasks.shards.layouts`)."""
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    if isinstance(batch, Bundle):
        return Bundle(tuple(on_devices(b) for b in batch.parts))
    devices = jax.local_devices()
    n = math.gcd(batch.size, len(devices))
    if n < 2:
        return batch
    runs = NamedSharding(Mesh(np.asarray(devices[:n]), ("runs",)), PartitionSpec("runs"))
    with jax.enable_x64(batch.settings.dtype == "float64"):  # keep float64 values float64
        hyperparameters = {k: jax.device_put(v, runs) for k, v in batch.hyperparameters.items()}
        seed = jax.device_put(batch.seed, runs)
    return replace(batch, seed=seed, hyperparameters=hyperparameters)


class Executor:
    """Runs the batches of a sweep (see the module docstring); a context manager that
    releases what it holds (a cluster it started, a connection it opened) on exit."""

    def results(
        self,
        jobs: Iterable[Job],
        on_progress: OnProgress | None = None,
        upcoming: Sequence[Batch | Bundle] = (),
    ) -> Iterator[Done]:
        """Run ``jobs`` and yield ``(index, outputs)`` as each batch finishes (a bundle's
        indices and the tuple of its outputs: :data:`Job`, :data:`Done`).
        ``on_progress(done, total)`` reports progress inside a batch, where there is any;
        ``upcoming``: the batches ``jobs`` will hold, in order (an executor may prepare them
        ahead)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what this executor holds."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Local(Executor):
    """The batches one after another in this process, over its devices (:func:`run_batch`)."""

    def results(
        self,
        jobs: Iterable[Job],
        on_progress: OnProgress | None = None,
        upcoming: Sequence[Batch | Bundle] = (),
    ) -> Iterator[Done]:
        """Run each job when it is asked for, in order (so a sweep's progress callback sees
        each group start, its chunks, and its end, one group at a time), while background
        threads compile the ``upcoming`` batches' programs in order: one fewer than the
        cores, at least one. Measured on 2 cores, cold ``optbench run digits``: 157 s one
        compile after another, 153 s with one thread ahead, 175 s with two (they took the
        running group's cores: its run time doubled)."""
        # This thread compiles the first program, the threads the next ones once it is
        # lowered (XLA then compiles or loads it without the GIL; tracing holds it). They
        # all waited on the first compile before: the quickstart's programs compiled in turn.
        ahead = _CompileAhead(upcoming[1:])
        try:
            for index, batch in jobs:
                outputs = run_batch(batch, on_progress)
                ahead.go.set()  # the first job may have lowered nothing (a reused program)
                yield index, outputs
        finally:
            ahead.stop()


class _CompileAhead:
    """Daemon threads that compile the programs of ``batches`` in order
    (:func:`optbench.compilation.prepare`), from when this process has lowered another
    program or ``go`` is set; :meth:`stop` lets them finish the compile at hand and take no
    more (a compile cannot be interrupted; a daemon thread does not hold up the exit)."""

    def __init__(self, batches: Sequence[Batch | Bundle]):
        from optbench import compilation

        self._todo = list(batches)[::-1]
        self._lock = threading.Lock()
        self._lowered = compilation.lowered()
        self.go = threading.Event()  # start even before the next program is lowered
        n = min(len(self._todo), max(1, shards.workers() - 1))
        for i in range(n):
            threading.Thread(target=self._work, name=f"optbench-compile-{i}", daemon=True).start()

    def _work(self) -> None:
        from optbench import compilation

        compilation.wait_lowered(self._lowered, self.go)
        while True:
            with self._lock:
                if not self._todo:
                    return
                batch = self._todo.pop()
            try:
                compilation.prepare(lambda b=batch: run_batch(b))
            except Exception:  # the batch's own run raises it again, shown once
                pass

    def stop(self) -> None:
        with self._lock:
            self._todo.clear()
        self.go.set()


class Dask(Executor):
    """One task per batch on the Dask cluster of ``client`` (see the module docstring).

    ``owned``: what :meth:`close` closes (the client, and a cluster started for this sweep);
    a client that was handed in stays open.
    """

    def __init__(self, client: Any, owned: tuple[Any, ...] = ()):
        self.client = client
        self.owned = owned

    def results(
        self,
        jobs: Iterable[Job],
        on_progress: OnProgress | None = None,
        upcoming: Sequence[Batch | Bundle] = (),
    ) -> Iterator[Done]:
        """Submit every job, then yield each batch's outputs as it finishes (the progress
        bar advances per finished batch; ``on_progress`` is not called). A batch that
        raised is re-raised here, after the batches that finished before it; whatever is
        still queued or running when this stops is cancelled."""
        from distributed import as_completed

        layout = shards.workers()  # the driver's: the workers split task runs the same way
        token = uuid.uuid4().hex[:8]
        pending: dict[str, tuple[int, Any]] = {}
        finished = as_completed()
        try:
            for job in jobs:
                for index, batch in split_job(*job):
                    ids = "_".join(map(str, job_indices(index)))
                    key = f"optbench-{token}-{ids}-{batch.label}"
                    future = self.client.submit(_work, batch, layout, key=key, pure=False)
                    pending[future.key] = (index, future)
                    finished.add(future)
            for future in finished:
                index, _ = pending.pop(future.key)
                outcome = future.result()
                future.release()
                if isinstance(outcome, _Failed):
                    outcome.reraise()
                yield index, outcome
        finally:
            if pending:
                self.client.cancel([f for _, f in pending.values()], force=True)

    def close(self) -> None:
        """Close the client and cluster this executor opened (in reverse order)."""
        for thing in reversed(self.owned):
            thing.close()


def connect(cluster: Any = None) -> Executor:
    """The executor for ``optbench.run(..., cluster=cluster)``.

    ``None``: :class:`Local`. An int N: a local Dask cluster of N single-threaded worker
    processes (spawned, not forked), closed with the executor. A string: the address of a
    running Dask scheduler (``"tcp://host:8786"``). A ``distributed.Client`` (left open), or
    a Dask cluster object (``LocalCluster``, ``dask_jobqueue.SLURMCluster``: anything with a
    ``scheduler_address``). Raises :class:`~optbench.ConfigError` (one line) when Dask is not
    installed, the value is none of these, or no scheduler answers at the address.
    """
    if cluster is None:
        return Local()
    check(cluster)
    import distributed

    if isinstance(cluster, distributed.Client):
        return Dask(cluster)
    if isinstance(cluster, str):
        client = _client(cluster)
        return Dask(client, (client,))
    if not isinstance(cluster, int | np.integer):  # a cluster object
        client = distributed.Client(cluster)
        return Dask(client, (client,))
    local = local_cluster(int(cluster))
    client = distributed.Client(local)
    return Dask(client, (local, client))


def check(cluster: Any, key: str = "cluster") -> None:
    """Raise the one-line :class:`~optbench.ConfigError` that :func:`connect` would for a
    missing dask extra, a value of the wrong kind or an address where nothing listens,
    without starting anything (an address is only probed with a TCP connection); ``key``
    names the option in the message."""
    if cluster is None:
        return
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"running on Dask needs the dask extra; {INSTALL}", key=key) from None
    if isinstance(cluster, bool) or not (
        isinstance(cluster, int | str | np.integer | distributed.Client)
        or hasattr(cluster, "scheduler_address")
    ):
        raise ConfigError(
            "expected a scheduler address, a number of local workers, a distributed.Client "
            f"or a Dask cluster, got {type(cluster).__name__}",
            key=key,
        )
    if isinstance(cluster, str):
        _reachable(cluster, key)
    if isinstance(cluster, int | np.integer) and cluster < 1:
        raise ConfigError(f"give at least 1 worker (got {cluster})", key=key)


def _reachable(address: str, key: str) -> None:
    """A one-line error unless something listens at a TCP address (``tcp://host:port`` or
    ``host:port``; other protocols are left to Dask): a mistyped address or a scheduler that
    is not running is caught before anything is written."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    try:
        protocol, location = parse_address(address.strip())
        if protocol != "tcp":
            return
        host, port = parse_host_port(location)
        socket.create_connection((host, port), timeout=CONNECT_S).close()
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(
            f"no Dask scheduler answers at {address!r} ({err}); start one "
            "(`dask scheduler`) or check the address",
            key=key,
        ) from None


def local_cluster(n_workers: int) -> Any:
    """A ``distributed.LocalCluster`` of ``n_workers`` spawned, single-threaded worker
    processes (no dashboard, no memory limit: JAX's own allocations are not spill-able data),
    quiet below errors, that leave Ctrl-C to this process (:func:`dask_setup`). What
    ``--workers N`` starts."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
            silence_logs=logging.ERROR,
            preload=[__name__],  # dask_setup below, in every worker (restarted ones too)
        )


def _client(address: str) -> Any:
    """A client of the scheduler at ``address``, or a one-line error."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_S)
    except (OSError, ValueError) as err:  # TimeoutError is an OSError
        raise ConfigError(
            f"no Dask scheduler answered at {address!r} ({err}); start one "
            "(`dask scheduler`) or check the address",
            key="cluster",
        ) from None
    return client


# --------------------------------------------------------------------------- on a worker


def dask_setup(worker: Any) -> None:
    """Run by each worker of :func:`local_cluster` as it starts (a Dask preload): ignore
    SIGINT. A Ctrl-C in the terminal reaches every process of its group; the driver alone
    answers it (it cancels the queue and closes the cluster), instead of each worker dying
    with a traceback of its own."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


_WORKER_READY = False


def _work(batch: Batch | Bundle, layout: int) -> Outputs | tuple[Outputs, ...] | _Failed:
    """A Dask task: one batch on this worker, its runs in the driver's shard ``layout``.
    An exception comes back as a value (:class:`_Failed`), so the worker logs nothing and
    the driver shows the traceback once."""
    global _WORKER_READY
    try:
        if not _WORKER_READY:
            from optbench import compilation

            compilation.enable_default_cache()  # the worker's environment decides
            _WORKER_READY = True
        with shards.fixed(layout):
            return run_batch(batch)
    except Exception as err:
        return _Failed(err)


class _Failed:
    """A batch's exception with its traceback from the worker (pickled with tblib, as Dask
    sends its own), or its text when the exception cannot be pickled."""

    def __init__(self, err: BaseException):
        from tblib import pickling_support

        pickling_support.install(err)  # the exception pickles with its traceback and causes
        self.text = "".join(traceback.format_exception(err))
        self.error: BaseException | None = err
        try:
            pickle.loads(pickle.dumps(err))
        except Exception:
            self.error = None

    def reraise(self) -> None:
        """Raise the worker's exception here, its traceback continuing into the worker."""
        if self.error is not None:
            raise self.error
        raise RuntimeError(f"a batch failed on a Dask worker:\n{self.text}")
