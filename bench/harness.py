"""Benchmark harness: each (workload, tool, size) runs in its own process, timed after warm-up.

A workload module in ``bench/workloads/`` defines

    NAME: str                      short label, e.g. "att_gt"
    SIZES: dict[str, int]          named sizes, e.g. {"mpdta": 500, "100k": 100_000}
    QUICK_SIZES: tuple[str, ...]   the sizes ``--quick`` runs
    TOOLS: dict[str, Callable[[Any], float]]
                                   tool name -> function(data) returning the headline estimate
    def make_data(size: str, seed: int) -> Any
    def versions() -> dict[str, str]     (optional) versions of the peers

``python bench/harness.py WORKLOAD TOOL SIZE --repeats R`` runs one cell and prints one JSON line:
median and min wall time over R timed repeats (fewer when ``--budget`` seconds would be exceeded)
after one warm-up call (which includes JAX compilation),
the estimate, and the process's peak resident memory. ``bench/run.py`` drives every cell.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent


def tool_version(tool: str) -> str:
    dist = "decrimkit" if tool.startswith("decrimkit") else {"pymc-default": "pymc"}.get(tool, tool)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def load(workload: str):
    sys.path.insert(0, str(HERE / "workloads"))
    return importlib.import_module(workload)


def run_cell(workload: str, tool: str, size: str, repeats: int, seed: int = 0,
             budget: float | None = None) -> dict:
    mod = load(workload)
    data = mod.make_data(size, seed)
    fn = mod.TOOLS[tool]
    repeats = min(repeats, getattr(mod, "MAX_REPEATS", repeats))  # minutes-long cells (MCMC) cap repeats
    t0 = time.perf_counter()
    estimate = fn(data)                      # warm-up: imports, JIT compilation, caches
    warm = time.perf_counter() - t0
    times = []
    while len(times) < repeats:
        t0 = time.perf_counter()
        estimate = fn(data)
        times.append(time.perf_counter() - t0)
        # a cell gets at most ``budget`` seconds of timed calls (at least one): the same rule for every
        # tool, so a peer that needs a minute per call is timed fewer times rather than dominating the run
        if len(times) == 1 and budget is not None:
            repeats = max(1, min(repeats, int(budget // max(times[0], 1e-9))))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    extra = mod.extra(data, estimate) if hasattr(mod, "extra") else {}
    if hasattr(mod, "stream_bytes"):
        extra["stream_bytes"] = int(mod.stream_bytes(data))
    return {
        "workload": workload, "tool": tool, "size": size, "n": mod.SIZES[size],
        "version": tool_version(tool), "repeats": len(times),
        "first_call_s": warm, "median_s": statistics.median(times), "min_s": min(times),
        "estimate": float(estimate) if not isinstance(estimate, dict) else estimate,
        "peak_mib": peak_kib / 1024, **extra,
    }


def profile_cell(workload: str, tool: str, size: str, top: int = 8, seed: int = 0) -> dict:
    """Where one warm call spends its time: the ``top`` functions by own time, as shares of the call."""
    import cProfile
    import pstats

    mod = load(workload)
    data = mod.make_data(size, seed)
    fn = mod.TOOLS[tool]
    fn(data)  # warm-up: compile outside the profile
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.runcall(fn, data)
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    rows = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({func})" if line else func
        rows.append({"function": where, "calls": ncalls, "own_s": tottime, "cum_s": cumtime})
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    for r in rows:
        r["own_share"] = r["own_s"] / total if total > 0 else float("nan")
    return {"workload": workload, "tool": tool, "size": size, "profiled_s": total, "top": rows[:top]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("workload")
    ap.add_argument("tool")
    ap.add_argument("size")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds of timed calls per cell; slow cells are timed fewer times (at least once)")
    ap.add_argument("--profile", action="store_true", help="profile one warm call instead of timing")
    args = ap.parse_args(argv)
    if args.profile:
        print(json.dumps(profile_cell(args.workload, args.tool, args.size, seed=args.seed)))
        return 0
    print(json.dumps(run_cell(args.workload, args.tool, args.size, args.repeats, args.seed, args.budget)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
