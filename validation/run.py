"""Monte Carlo validation of decrimkit's estimators: bias, RMSE, 95% interval coverage and test size.

Usage::

    python validation/run.py                  # full grid (make validate; about 15 min on 2 idle cores)
    python validation/run.py --quick          # a few replications per cell (make validate-quick, about 3 min)
    python validation/run.py --scheduler tcp://host:8786   # run the replications on an existing Dask cluster
    python validation/run.py --cells placebo_county_1 --reps 200 --no-sbc --merge   # one cell into results.json
    python validation/run.py --cells placebo_state_annual_4 --estimators twfe/cluster,twfe/wild --reps 500 --merge

Inputs: the DGPs in ``validation/dgp.py`` and the grid in ``validation/cells.py``; seed ``--seed``
(default 20240501). Outputs (``--out``, default ``validation/``): ``results.json`` (byte-identical
for the same seed, grid and reps), ``README.md`` and ``figures/coverage.png|svg``,
``figures/bias.png|svg``.

Replications run on Dask: a ``LocalCluster`` of ``--workers`` single-threaded worker processes
(default 2), or the cluster at ``--scheduler``. The work is split into chunks of replications; a
replication's data and seeds depend only on ``(seed, cell, rep)``, so the results do not depend on
the chunking, the number of workers or the order in which chunks finish. Each chunk also reports the
CPU seconds of every replication; the run prints the steady cost per replication, the first-call
(compilation) cost per worker and the full grid's projected CPU time, and writes them to the README
(never to ``results.json``, which stays byte-identical).
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


Item = tuple[str, list[int], "tuple[str, ...] | None"]  # (cell, replications, its estimators to run; None: all)

# quick run: a cell whose replication takes minutes (the Bayesian placebo cell, chunk 2) runs one task per
# estimator, so that its two fits (about 60 and 150 CPU s) go to both workers instead of queueing on one
SPLIT_CHUNK = 2


def _tasks(names: Sequence[str], quick: bool, reps: int | None) -> list[list[Item]]:
    """Dask tasks, each a list of ``(cell, replications, estimators)`` chunks (estimators None: all the cell's).

    Full run: chunks of at most ``cell.chunk`` replications (at least 4 per cell so that small runs
    balance), the expensive cells (small chunks) first so that cheap DiD chunks fill the tail. Quick run:
    cells that share an estimator go whole into one task, so each kernel is compiled by one worker only
    (compilation, not replication, is most of a quick run's cost); a cell with ``chunk <= SPLIT_CHUNK``
    is split into one task per estimator, first, since each of its fits is the longest task of the run.
    """
    order = sorted(names, key=lambda n: grid.CELL_BY_NAME[n].chunk)  # stable: grid order within a chunk size
    n_reps = {n: reps if reps is not None else (grid.CELL_BY_NAME[n].quick_reps if quick else grid.CELL_BY_NAME[n].reps)
              for n in order}
    if quick:
        split = [[(name, list(range(n_reps[name])), (est,))] for name in order
                 if grid.CELL_BY_NAME[name].chunk <= SPLIT_CHUNK for est in grid.CELL_BY_NAME[name].estimators]
        groups: list[tuple[set[str], list[Item]]] = []
        for name in order:
            if grid.CELL_BY_NAME[name].chunk <= SPLIT_CHUNK:
                continue
            ests = set(grid.CELL_BY_NAME[name].estimators)
            item: Item = (name, list(range(n_reps[name])), None)
            hit = [g for g in groups if g[0] & ests]
            if hit:
                keep = hit[0]
                for other in hit[1:]:  # a cell bridging two groups merges them
                    keep[0].update(other[0])
                    keep[1].extend(other[1])
                    groups.remove(other)
                keep[0].update(ests)
                keep[1].append(item)
            else:
                groups.append((ests, [item]))
        return split + [items for _, items in groups]
    tasks: list[list[Item]] = []
    for name in order:
        n = n_reps[name]
        size = max(1, min(grid.CELL_BY_NAME[name].chunk, -(-n // 4)))
        tasks.extend([(name, list(range(i, min(i + size, n))), None)] for i in range(0, n, size))
    return tasks


def _costs(chunks: list[dict[str, Any]], sbc: dict[str, Any] | None) -> dict[str, Any]:
    """CPU seconds by cell and estimator: steady cost per replication and first-call (compilation) overhead.

    An estimator's first call on a cell in a worker process pays for tracing and XLA compilation (the
    shapes, and so the compiled programs, differ between cells); the steady cost is the mean over the
    other calls. ``projected_full_cpu_s`` scales the steady costs to the full grid's replications.
    """
    import numpy as np

    per: dict[tuple[str, str], list[float]] = {}
    first: dict[tuple[str, str], list[float]] = {}
    seen: set[tuple[int, str, str]] = set()
    for ch in chunks:  # per worker, the chunks arrive in the order that worker ran them
        for est, times in ch.get("cpu", {}).items():
            for k, t in enumerate(times):
                key = (ch["pid"], ch["cell"], est)
                if k == 0 and key not in seen:
                    seen.add(key)
                    first.setdefault((ch["cell"], est), []).append(t)
                else:
                    per.setdefault((ch["cell"], est), []).append(t)
    rows = []
    for cell, est in sorted(set(per) | set(first)):
        times = per.get((cell, est)) or first[(cell, est)]  # a one-replication chunk: no steady calls
        steady = float(np.mean(times))
        full = grid.CELL_BY_NAME[cell].reps
        firsts = first.get((cell, est), [])
        rows.append({"cell": cell, "estimator": est, "calls": len(per.get((cell, est), [])) + len(firsts),
                     "cpu_per_rep_s": steady, "first_call_extra_s": float(np.mean(firsts)) - steady if firsts else 0.0,
                     "total_cpu_s": float(np.sum(per.get((cell, est), [])) + np.sum(firsts)),
                     "full_reps": full, "projected_full_cpu_s": steady * full})
    return {"rows": rows, "chunks_cpu_s": sum(r["total_cpu_s"] for r in rows),
            "sbc_cpu_s": None if sbc is None else sbc.get("cpu"),
            "projected_full_cpu_s": sum(r["projected_full_cpu_s"] for r in rows),
            "compile_per_worker_s": sum(max(0.0, r["first_call_extra_s"]) for r in rows),
            "workers_seen": len({ch["pid"] for ch in chunks})}


def _print_costs(costs: dict[str, Any]) -> None:
    print("[validate] CPU s per replication (steady), extra CPU s of the first call in a worker (compilation):",
          flush=True)
    for r in costs["rows"]:
        print(f"  {r['cell']:26s} {r['estimator']:15s} {r['cpu_per_rep_s']:8.4f} s/rep x {r['calls']:5d}  first "
              f"+{max(0.0, r['first_call_extra_s']):5.1f} s  -> {r['full_reps']} reps: {r['projected_full_cpu_s']:7.1f} s")
    sbc = costs["sbc_cpu_s"]
    print(f"[validate] chunks: {costs['chunks_cpu_s']:.0f} CPU s; SBC task: {'-' if sbc is None else f'{sbc:.0f}'} CPU s; "
          f"compilation: about {costs['compile_per_worker_s']:.0f} CPU s per worker; the full grid's replications "
          f"at these steady costs: {costs['projected_full_cpu_s']:.0f} CPU s", flush=True)


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
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")  # any free port: a busy 8787 would warn
    return Client(cluster)


def _gather(future: Any) -> Any:
    """A finished task's result, its copy on the cluster released."""
    out = future.result()
    future.release()
    return out


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
    merge: bool = False,
    estimators: Sequence[str] | None = None,
) -> Path:
    """Run the grid (or the named ``cells``) on Dask and write results.json, README.md and figures to ``out``."""
    from dask.distributed import as_completed

    names = list(cells) if cells is not None else [c.name for c in grid.CELLS if c.quick_reps > 0 or not quick]
    unknown = sorted(set(names) - set(grid.CELL_BY_NAME))
    if unknown:
        raise SystemExit(f"unknown cells {unknown}; choose from {sorted(grid.CELL_BY_NAME)}")
    if estimators is not None:
        known = {e for n in names for e in grid.CELL_BY_NAME[n].estimators}
        if set(estimators) - known:
            raise SystemExit(f"unknown estimators {sorted(set(estimators) - known)} for cells {names}")
    tasks = _tasks(names, quick, reps)
    n_sbc = sbc_reps if sbc_reps is not None else SBC_REPS["quick" if quick else "full"]
    began = time.perf_counter()
    client = _client(scheduler, workers)
    try:
        # the SBC task first: it is one long task, the chunks fill the other worker meanwhile
        sbc_future = client.submit(grid.run_sbc_task, n_sbc, seed, quick, pure=False) if sbc else None
        futures = [client.submit(grid.run_group, items, seed, estimators, pure=False) for items in tasks]
        n_tasks, pending = len(futures), as_completed(futures)
        del futures
        chunks = []
        done = 0
        sbc_out = None
        for fut in pending:
            # released once gathered: a worker that dies later (a full run once lost both, at 52 min, to XLA
            # running out of memory maps) then costs only its running tasks, not the recomputation of every
            # result it still held (the SBC result too, gathered as soon as it is done)
            chunks.extend(_gather(fut))
            if sbc_future is not None and sbc_future.done():
                sbc_out, sbc_future = _gather(sbc_future), None
            done += 1
            if done % max(1, n_tasks // 20) == 0 or done == n_tasks:
                print(f"[validate] {done}/{n_tasks} tasks ({time.perf_counter() - began:.0f} s)", flush=True)
        if sbc_future is not None:
            sbc_out = _gather(sbc_future)
        costs = _costs(chunks, sbc_out)
        _print_costs(costs)
        results = summarise(chunks, names, sbc_out, quick=quick, seed=seed, reps=reps, sbc_reps=n_sbc if sbc else 0,
                            estimators=estimators)
        wall = time.perf_counter() - began
        path = write_outputs(results, Path(out), wall_s=wall, workers=workers if not scheduler else None, costs=costs,
                             merge_into=merge, estimators=estimators)
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
    ap.add_argument("--estimators", default=None,
                    help="comma-separated estimators of the chosen cells to run (with --merge: replaces only their rows)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other cells of an existing results.json (run expensive cells one at a time)")
    a = ap.parse_args(argv)
    if a.reps is not None and a.reps < 2:
        ap.error("--reps must be at least 2")
    cells = [c.strip() for c in a.cells.split(",") if c.strip()] if a.cells else None
    run(a.out, quick=a.quick, reps=a.reps, cells=cells, sbc=not a.no_sbc, sbc_reps=a.sbc_reps, seed=a.seed,
        scheduler=a.scheduler, workers=a.workers, merge=a.merge,
        estimators=[e.strip() for e in a.estimators.split(",") if e.strip()] if a.estimators else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
