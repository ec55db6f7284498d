"""Monte Carlo validation of decrimkit's estimators: bias, RMSE, 95% interval coverage and test size.

Usage::

    python validation/run.py                  # full grid (make validate; about an hour on 2 cores)
    python validation/run.py --quick          # a few replications per cell (make validate-quick, < 5 min)
    python validation/run.py --scheduler tcp://host:8786   # run the replications on an existing Dask cluster

Inputs: the DGPs in ``validation/dgp.py`` and the grid in ``validation/cells.py``; seed ``--seed``
(default 20240501). Outputs (``--out``, default ``validation/``): ``results.json`` (byte-identical
for the same seed, grid and reps), ``README.md`` and ``figures/coverage.png|svg``,
``figures/bias.png|svg``.

Replications run on Dask: a ``LocalCluster`` of ``--workers`` single-threaded worker processes
(default 2), or the cluster at ``--scheduler``. The work is split into chunks of replications; a
replication's data and seeds depend only on ``(seed, cell, rep)``, so the results do not depend on
the chunking, the number of workers or the order in which chunks finish.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from validation import cells as grid  # noqa: E402
from validation.summarise import summarise, write_outputs  # noqa: E402

DEFAULT_SEED = 20240501
SBC_REPS = {"full": 100, "quick": 6}


def _tasks(names: Sequence[str], quick: bool, reps: int | None) -> list[tuple[str, list[int]]]:
    tasks = []
    for name in names:
        cell = grid.CELL_BY_NAME[name]
        n = reps if reps is not None else (cell.quick_reps if quick else cell.reps)
        size = max(1, min(cell.chunk, -(-n // 4)))  # at least 4 chunks per cell so small runs balance
        tasks.extend((name, list(range(i, min(i + size, n)))) for i in range(0, n, size))
    return tasks


def _client(scheduler: str | None, workers: int) -> Any:
    import cloudpickle
    from dask.distributed import Client, LocalCluster

    import validation.cells
    import validation.dgp

    # ship the validation code by value so that a remote cluster needs only decrimkit installed
    cloudpickle.register_pickle_by_value(validation.dgp)
    cloudpickle.register_pickle_by_value(validation.cells)
    if scheduler:
        return Client(scheduler)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    os.environ.setdefault("DECRIMKIT_PROGRESS", "0")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster)


def run(
    out: str | Path = ROOT / "validation",
    *,
    quick: bool = False,
    reps: int | None = None,
    cells: Sequence[str] | None = None,
    sbc: bool = True,
    sbc_reps: int | None = None,
    seed: int = DEFAULT_SEED,
    scheduler: str | None = None,
    workers: int = 2,
) -> Path:
    """Run the grid (or the named ``cells``) on Dask and write results.json, README.md and figures to ``out``."""
    from dask.distributed import as_completed

    names = list(cells) if cells is not None else [c.name for c in grid.CELLS]
    unknown = sorted(set(names) - set(grid.CELL_BY_NAME))
    if unknown:
        raise SystemExit(f"unknown cells {unknown}; choose from {sorted(grid.CELL_BY_NAME)}")
    tasks = _tasks(names, quick, reps)
    n_sbc = sbc_reps if sbc_reps is not None else SBC_REPS["quick" if quick else "full"]
    began = time.perf_counter()
    client = _client(scheduler, workers)
    try:
        futures = [client.submit(grid.run_chunk, name, chunk, seed, pure=False) for name, chunk in tasks]
        sbc_future = client.submit(grid.run_sbc_task, n_sbc, seed, quick, pure=False) if sbc else None
        chunks = []
        done = 0
        for fut in as_completed(futures):
            chunks.append(fut.result())
            done += 1
            if done % max(1, len(futures) // 20) == 0 or done == len(futures):
                print(f"[validate] {done}/{len(futures)} chunks ({time.perf_counter() - began:.0f} s)", flush=True)
        sbc_out = sbc_future.result() if sbc_future is not None else None
        results = summarise(chunks, names, sbc_out, quick=quick, seed=seed, reps=reps, sbc_reps=n_sbc if sbc else 0)
        wall = time.perf_counter() - began
        path = write_outputs(results, Path(out), wall_s=wall, workers=workers if not scheduler else None)
        print(f"[validate] wrote {path} in {wall:.0f} s", flush=True)
    finally:
        _close(client)
    return path


def _close(client: Any) -> None:
    """Shut the client (and a local cluster) down; on a saturated machine a slow shutdown is only reported."""
    cluster = getattr(client, "cluster", None)
    try:
        client.close(timeout=60)
        if cluster is not None:
            cluster.close(timeout=60)
    except (TimeoutError, OSError) as exc:  # the results are already written
        print(f"[validate] Dask shutdown did not finish cleanly: {type(exc).__name__}: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few replications per cell (< 5 minutes)")
    ap.add_argument("--reps", type=int, default=None, help="replications per cell (overrides the grid's)")
    ap.add_argument("--cells", default=None, help="comma-separated cell names (default: all)")
    ap.add_argument("--no-sbc", action="store_true", help="skip the Bayesian simulation-based calibration")
    ap.add_argument("--sbc-reps", type=int, default=None, help="SBC replications (default 100; quick 6)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes (without --scheduler)")
    ap.add_argument("--out", default=str(ROOT / "validation"))
    a = ap.parse_args(argv)
    if a.reps is not None and a.reps < 2:
        ap.error("--reps must be at least 2")
    cells = [c.strip() for c in a.cells.split(",") if c.strip()] if a.cells else None
    run(a.out, quick=a.quick, reps=a.reps, cells=cells, sbc=not a.no_sbc, sbc_reps=a.sbc_reps, seed=a.seed,
        scheduler=a.scheduler, workers=a.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
