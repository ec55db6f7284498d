"""Run every benchmark cell, check that the estimates agree, and write the results.

    python bench/run.py [--quick] [--only WORKLOAD ...] [--repeats R]

Writes ``bench/results/results.json`` and ``bench/results/results.md`` and regenerates the performance
section of README.md (between the ``bench:start`` and ``bench:end`` markers) from the results file.
Each cell runs in a fresh process (``bench/harness.py``), so peak memory is per tool and one tool's JIT
cache or thread pool cannot help another. A decrimkit estimate that disagrees with a peer beyond the
workload's tolerance is reported as a failure: a fast wrong answer is not a result.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WORKLOADS = ("att_gt", "twfe", "twfe_wild", "scm_placebo", "scm_adh", "sdid", "bayes_hier")


def cells(workload: str, quick: bool):
    sys.path.insert(0, str(HERE / "workloads"))
    mod = __import__(workload)
    sizes = mod.QUICK_SIZES if quick else tuple(getattr(mod, "FULL_SIZES", mod.SIZES))
    for size in sizes:
        for tool in mod.TOOLS:
            if quick and tool in getattr(mod, "SLOW_TOOLS", ()):
                continue
            yield mod, size, tool


def run_one(workload: str, tool: str, size: str, repeats: int, timeout: float, budget: float) -> dict:
    cmd = [sys.executable, str(HERE / "harness.py"), workload, tool, size, "--repeats", str(repeats),
           "--budget", str(budget)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"workload": workload, "tool": tool, "size": size, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"workload": workload, "tool": tool, "size": size, "error": " | ".join(tail)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def profile_missed(summary: list[dict], mods: dict, timeout: float) -> None:
    """Attach a profile of decrimkit's warm call to every cell whose target was missed.

    A workload with ``PROFILE = False`` (MCMC: one call is minutes inside a single compiled XLA
    program, where a Python profile sees one opaque call) gives its explanation in ``MISS_NOTE``.
    """
    for s in summary:
        if s["target"] is None or s["ratio"] is None or s["ratio"] >= s["target"]:
            continue
        if not getattr(mods[s["workload"]], "PROFILE", True):
            s["profile"] = None
            s["miss_note"] = getattr(mods[s["workload"]], "MISS_NOTE", None)
            continue
        cmd = [sys.executable, str(HERE / "harness.py"), s["workload"], "decrimkit", s["size"], "--profile"]
        print(f"[bench] profiling {s['workload']} {s['size']} (target missed) ...", file=sys.stderr, flush=True)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
            s["profile"] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
        except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError):
            s["profile"] = None


def scale_curves(rows: list[dict]) -> str:
    """Time against size for each workload and tool, with the growth exponent between the end sizes."""
    import math

    lines = ["", "Scale curves (median seconds by size; exponent b of time ~ size^b between the smallest and "
             "largest size run):", "", "| workload | tool | " + "sizes and times | b |", "|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        # sizes that measure a different task (e.g. one fit beside placebo loops) stay out of the curve
        sys.path.insert(0, str(HERE / "workloads"))
        if r.get("size") in getattr(__import__(r["workload"]), "NOT_ON_CURVE", ()):
            continue
        if "error" not in r:
            groups.setdefault((r["workload"], r["tool"]), []).append(r)
    for (w, tool), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["n"])
        pts = ", ".join(f"{r['size']}: {r['median_s']:.3g}" for r in rs)
        b = ""
        if len(rs) >= 2 and rs[-1]["n"] > rs[0]["n"] and rs[0]["median_s"] > 0:
            b = f"{math.log(rs[-1]['median_s'] / rs[0]['median_s']) / math.log(rs[-1]['n'] / rs[0]['n']):.2f}"
        lines.append(f"| {w} | {tool} | {pts} | {b} |")
    return "\n".join(lines) + "\n"


def missed_profiles(summary: list[dict], rows: list[dict] | None = None) -> str:
    """For every missed target: the measured ratio and where decrimkit's warm call spends its time."""
    missed = [s for s in summary if s.get("target") is not None and s["ratio"] is not None and s["ratio"] < s["target"]]
    if not missed:
        return "\nEvery target was met in this run.\n"
    lines = ["", "Targets missed in this run, with a profile of one warm decrimkit call (functions by own time):", ""]
    for s in missed:
        lines.append(f"- **{s['workload']} {s['size']}**: {s['ratio']:.2f}x against {s['fastest_peer']} "
                     f"(target {s['target']}x).")
        prof = s.get("profile")
        if not prof:
            lines.append(f"  {s['miss_note']}" if s.get("miss_note") else "  (profile not available)")
            mine = [r for r in rows or () if r["workload"] == s["workload"] and r["size"] == s["size"]
                    and r["tool"] == "decrimkit" and "gradient_us_jax" in r]
            if mine:
                g = mine[0]
                lines.append(f"  Measured in this run: one gradient {g['gradient_us_jax']:.0f} microseconds in JAX, "
                             f"{g['gradient_us_pytensor']:.0f} in PyTensor's C backend "
                             f"({g['gradient_us_pytensor'] / g['gradient_us_jax']:.2f}x).")
            continue
        top = "; ".join(f"`{t['function']}` {100 * t['own_share']:.0f}%" for t in prof["top"][:5])
        lines.append(f"  Profiled call {prof['profiled_s']:.2f} s: {top}.")
    return "\n".join(lines) + "\n"


def memory_bandwidth(mib: int = 256, repeats: int = 5) -> float:
    """Bytes per second of a numpy copy (read + write) of a ``mib`` MiB array: the streaming limit."""
    import numpy as np

    a = np.ones(mib * 2**20 // 8)
    b = np.empty_like(a)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best


def physical_limits(rows: list[dict], bandwidth: float) -> str:
    """Per (workload, size): the time to stream the estimator's input once through memory."""
    lines = ["", f"Physical limit: measured memory bandwidth (numpy copy, read + write) {bandwidth / 1e9:.1f} GB/s. "
             "Streaming the input once is a floor no tool can beat; bootstraps and placebos re-read "
             "their (much smaller) score or weight arrays once per draw.", "",
             "| workload | size | input MB | stream once (ms) | decrimkit median (ms) | decrimkit / floor |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("tool") != "decrimkit" or "error" in r or "stream_bytes" not in r:
            continue
        floor = r["stream_bytes"] / bandwidth
        lines.append(f"| {r['workload']} | {r['size']} | {r['stream_bytes'] / 1e6:.2f} | {floor * 1e3:.3f} | "
                     f"{r['median_s'] * 1e3:.1f} | {r['median_s'] / floor:.0f}x |")
    return "\n".join(lines) + "\n"


def ratios(rows: list[dict], mods: dict) -> list[dict]:
    """Per (workload, size): fastest peer median / decrimkit median, and estimate agreement."""
    out = []
    keys = sorted({(r["workload"], r["size"]) for r in rows})
    for w, s in keys:
        cell = [r for r in rows if r["workload"] == w and r["size"] == s and "error" not in r]
        ours = [r for r in cell if r["tool"] == "decrimkit"]
        peers = [r for r in cell if r["tool"] not in ("decrimkit",) and not r["tool"].startswith("decrimkit-")]
        if not ours:
            continue
        mine = ours[0]
        agree = {}
        compare = getattr(mods[w], "agree", None)
        for p in peers:
            if compare is not None:
                try:
                    ok = compare(mine["estimate"], p["estimate"], p["tool"])
                except TypeError:  # agree(ours, peer) without the peer's name
                    ok = compare(mine["estimate"], p["estimate"])
                agree[p["tool"]] = bool(ok)
        fastest = min(peers, key=lambda r: r["median_s"]) if peers else None
        ratio = (fastest["median_s"] / mine["median_s"]) if fastest else None
        speed = getattr(mods[w], "SPEED_KEY", None)  # a rate, higher is better (e.g. ESS per second)
        if speed and peers and all(speed in r for r in peers + [mine]):
            fastest = max(peers, key=lambda r: r[speed])
            ratio = mine[speed] / fastest[speed]
        out.append({
            "workload": w, "size": s,
            "decrimkit_median_s": mine["median_s"],
            "fastest_peer": fastest["tool"] if fastest else None,
            "fastest_peer_median_s": fastest["median_s"] if fastest else None,
            "ratio": ratio,
            "ratio_of": speed if speed and ratio is not None and fastest and speed in fastest else "time",
            "target": getattr(mods[w], "TARGETS", {}).get(s),
            "estimates_agree": agree,
        })
    return out


def markdown(rows: list[dict], summary: list[dict], meta: dict) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cores']} cores), Python {meta['python']}; "
        f"median and min of up to {meta['repeats']} timed runs after one warm-up run (which includes JIT compilation); "
        f"a cell whose first timed run is slow gets fewer, within {meta.get('budget_s', 'no')} s of timed runs "
        "(column `runs`).",
        "",
        "| workload | size | tool | version | runs | median s | min s | first call s | peak MiB | estimate | ratio to decrimkit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    mine = {(r["workload"], r["size"]): r["median_s"] for r in rows if r.get("tool") == "decrimkit" and "error" not in r}
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['workload']} | {r['size']} | {r['tool']} | | | failed: {r['error'][:80]} | | | | | |")
            continue
        base = mine.get((r["workload"], r["size"]))
        ratio = f"{r['median_s'] / base:.2f}x" if base else ""
        est = r["estimate"] if not isinstance(r["estimate"], float) else f"{r['estimate']:.6g}"
        lines.append(
            f"| {r['workload']} | {r['size']} | {r['tool']} | {r['version']} | {r.get('repeats', '')} | {r['median_s']:.4f} | {r['min_s']:.4f} | "
            f"{r['first_call_s']:.2f} | {r['peak_mib']:.0f} | {est} | {ratio} |"
        )
    lines += ["", "| workload | size | fastest peer | speed-up (peer time / decrimkit time) | target | estimates agree |",
              "|---|---|---|---|---|---|"]
    for s in summary:
        ratio = "" if s["ratio"] is None else f"{s['ratio']:.2f}x"
        if ratio and s.get("ratio_of", "time") != "time":
            ratio += f" (decrimkit / peer {s['ratio_of']})"
        target = "" if s["target"] is None else f">= {s['target']}x " + ("(met)" if s["ratio"] and s["ratio"] >= s["target"] else "(missed)")
        agree = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in s["estimates_agree"].items())
        lines.append(f"| {s['workload']} | {s['size']} | {s['fastest_peer'] or ''} | {ratio} | {target} | {agree} |")
    return "\n".join(lines) + "\n"


def update_readme(table: str) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n" + table + end + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--budget", type=float, default=10.0,
                    help="seconds of timed calls per cell after the first (slow cells get fewer repeats)")
    ap.add_argument("--render", action="store_true",
                    help="only re-render results.md (and README for a full run) from results.json")
    args = ap.parse_args(argv)
    if args.render:
        saved = json.loads((RESULTS / "results.json").read_text())
        meta, rows, summary = saved["meta"], saved["cells"], saved["summary"]
        meta.setdefault("memory_bandwidth_bytes_per_s", memory_bandwidth())
        table = (markdown(rows, summary, meta) + missed_profiles(summary, rows) + scale_curves(rows)
                 + physical_limits(rows, meta["memory_bandwidth_bytes_per_s"]))
        (RESULTS / "results.md").write_text(table)
        if not meta.get("quick"):
            update_readme(table)
        print(table)
        return 0
    repeats = args.repeats or (2 if args.quick else 5)
    rows, mods = [], {}
    for w in args.only or WORKLOADS:
        if not (HERE / "workloads" / f"{w}.py").exists():
            print(f"[bench] {w}: no workload file, skipped", file=sys.stderr)
            continue
        for mod, size, tool in cells(w, args.quick):
            mods[w] = mod
            print(f"[bench] {w} {size} {tool} ...", file=sys.stderr, flush=True, end=" ")
            t_cell = time.perf_counter()
            rows.append(run_one(w, tool, size, repeats, args.timeout, args.budget))
            print(f"{time.perf_counter() - t_cell:.0f} s", file=sys.stderr, flush=True)
    summary = ratios(rows, mods)
    if not args.quick:
        profile_missed(summary, mods, args.timeout)
    import os

    meta = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": platform.machine(),
            "cores": os.cpu_count(), "python": platform.python_version(), "repeats": repeats, "quick": args.quick,
            "budget_s": args.budget}
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta["memory_bandwidth_bytes_per_s"] = memory_bandwidth()
    (RESULTS / "results.json").write_text(json.dumps({"meta": meta, "cells": rows, "summary": summary}, indent=1))
    table = (markdown(rows, summary, meta) + missed_profiles(summary, rows) + scale_curves(rows)
             + physical_limits(rows, meta["memory_bandwidth_bytes_per_s"]))
    (RESULTS / "results.md").write_text(table)
    if not args.quick:
        update_readme(table)
    print(table)
    disagree = [s for s in summary if not all(s["estimates_agree"].values())]
    return 1 if disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
