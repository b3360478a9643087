"""Scale-out on Ray: the chip model's batches run as tasks on a cluster, merged exactly.

A long evaluation (a real test set, several T) is many independent batches of exact
integer simulation. ``map_batches(graph, x, batch_size, work, ...)`` runs ``work(graph,
batch)`` for every batch of ``x`` — the same batches, in the same order, that a local run
cuts — as Ray tasks, and returns their results in batch order. Callers then reduce them
exactly as the local loop does (counts and sums in the same order, outputs concatenated),
so a run on Ray gives the same bytes as a run here: a rate-coded batch draws the same
spikes (the seed is per batch), and a batch's integers are exact whatever dtype its
worker proves.

The network travels once, as its ``.snn`` artifact bytes in Ray's object store (never a
pickled network); each worker decodes it once and keeps it by the bytes' SHA-256.

A task whose worker or node dies is submitted again (``RETRIES`` times, each logged as a
warning naming the samples); an error raised by the simulation itself (bad data) is not
retried but raised here as it was raised there. Ray is imported only when asked for (the
optional extra ``snnconv[ray]``): without it nothing here runs.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from snnconv import artifact
from snnconv.errors import SnnconvError
from snnconv.ir import Graph

__all__ = ["RETRIES", "map_batches"]

RETRIES = 3  # new submissions of a batch whose worker died, before the run fails
log = logging.getLogger("snnconv")
_NETWORKS: dict[str, Any] = {}  # on a worker: the graphs decoded so far, by their artifact's SHA-256


def map_batches(graph: Graph, x: np.ndarray, batch_size: int, work: Callable, device: str = "cpu",
                address: str | None = None, progress=None) -> list:
    """``[work(graph, x[i:i + batch_size], device) for each batch i]``, each call a Ray task.

    ``work`` must be a module-level function (Ray ships it by reference). ``address``: a
    running cluster (``"auto"``, ``"ray://host:10001"``, ...) or None to start one here.
    ``progress(done)`` is called with the samples finished so far, as batches finish.
    """
    ray = _ray(address)
    blob = _encode(graph)
    digest = hashlib.sha256(blob).hexdigest()
    stored = [ray.put(blob)]  # wrapped in a list: a task fetches it only when its worker lacks the network
    task = ray.remote(_run_batch).options(max_retries=0, num_gpus=1 if str(device).startswith("cuda") else 0)
    starts = list(range(0, len(x), batch_size))
    pending = {task.remote(digest, stored, work, x[s:s + batch_size], device): (s, 1) for s in starts}
    results, done = {}, 0
    while pending:
        finished, _ = ray.wait(list(pending), num_returns=1)
        start, attempt = pending.pop(finished[0])
        try:
            results[start] = ray.get(finished[0])
        except ray.exceptions.RayTaskError as exc:  # the simulation raised: the same error here, not a retry
            cause = getattr(exc, "cause", None)
            raise (cause if isinstance(cause, Exception) else exc) from None
        except ray.exceptions.RayError as exc:  # the worker or its node died: submit the batch again
            pending[_retry(task, digest, stored, work, x, start, batch_size, device, attempt, exc)] = (start,
                                                                                                    attempt + 1)
            continue
        done += min(batch_size, len(x) - start)
        if progress is not None:
            progress(done)
    return [results[s] for s in starts]


def _retry(task, digest, stored, work, x, start, batch_size, device, attempt, exc):
    stop = min(len(x), start + batch_size)
    reason = " ".join(str(exc).split())[:200]
    if attempt > RETRIES:
        raise SnnconvError(f"Ray: samples {start}..{stop - 1} failed {attempt} times, the last because a worker "
                           f"died ({type(exc).__name__}: {reason}); check the cluster's health and run again")
    log.warning("Ray: the worker running samples %d..%d died (%s); submitting them again (attempt %d of %d)",
                start, stop - 1, type(exc).__name__, attempt + 1, RETRIES + 1)
    return task.remote(digest, stored, work, x[start:stop], device)


def _run_batch(digest: str, stored: list, work: Callable, batch: np.ndarray, device: str):
    """On a worker: the network (decoded once per worker, by digest), then ``work`` on ``batch``."""
    if digest not in _NETWORKS:
        import ray

        _NETWORKS[digest] = artifact.decode(io.BytesIO(ray.get(stored[0])), f"artifact {digest[:12]}").graph
    return work(_NETWORKS[digest], batch, device)


def _encode(graph: Graph) -> bytes:
    """The network as artifact bytes (stored, not deflated: it only crosses the object store)."""
    stream = io.BytesIO()
    artifact.encode(graph, {}, stream, compress=False)
    return stream.getvalue()


def _ray(address: str | None):
    """Ray, connected: to ``address``, or a cluster started here; a clear error where Ray is not installed."""
    try:
        import ray
    except ImportError:
        raise SnnconvError("--ray needs Ray: pip install 'snnconv[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
            raise SnnconvError(f"could not reach {where}: {' '.join(str(exc).split())[:300]}") from None
    return ray
