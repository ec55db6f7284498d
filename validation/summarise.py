"""Turn replication records into the validation tables, results.json, README.md and figures.

Metrics per (cell, estimator, target): replications used, failures (a ``DecrimkitError`` on that
draw), bias and RMSE of the estimate against the DGP's truth, mean reported SE over the Monte Carlo
SD of the estimates, coverage of the nominal 95% interval (with its Monte Carlo standard error), and,
where the truth is zero, the size of the 5% test (share of p-values at or below 0.05). A frequentist
95% interval whose coverage falls outside 93-97% is flagged, never hidden, with a diagnosis; a test
reported without an interval (SCM placebo, the ASCM joint test) is flagged when its size falls
outside 3-7%, the same band for the rejection rate. The Bayesian SBC section reports the 90% HDI
coverage of each parameter and pooled over the model-level effects, against 85-95% (issue 6).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from validation import cells as grid  # type: ignore[import-not-found]

BAND = (0.93, 0.97)
SIZE_BAND = (round(1 - BAND[1], 10), round(1 - BAND[0], 10))  # (0.03, 0.07): rejection rate of a 5% test
SBC_BAND = (0.85, 0.95)  # 90% HDI coverage over >= 100 replications (issue 6)
COLUMNS = ("rep", "estimator", "target", "estimate", "se", "conf_low", "conf_high", "p_value", "truth")


def _clean(x: Any) -> Any:
    """JSON-safe values rounded to 12 significant digits (NaN -> null), for byte-stable output."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return None if not math.isfinite(x) else float(f"{x:.12g}")
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _diagnose(row: dict[str, Any], notes: Sequence[str]) -> str:
    reasons = list(notes)
    if row.get("coverage") is None:  # a test without an interval: only its size is judged
        if row.get("size_mcse"):
            k = abs(row["size_5pct"] - 0.05) / row["size_mcse"]
            reasons.append(f"size {row['size_5pct']:.3f} is {k:.1f} Monte Carlo SEs from 0.05")
        if row.get("p_missing"):
            reasons.append(f"{row['p_missing']} replications gave no p-value")
        return "; ".join(reasons)
    sd, bias = row["mc_sd"], row["bias"]
    if sd and bias is not None and abs(bias) > 0.25 * sd:
        reasons.append(f"bias {bias:+.3f} is {abs(bias) / sd:.2f} Monte Carlo SDs")
    if row.get("ci_missing"):
        reasons.append(f"{row['ci_missing']} replications gave no interval (counted as not covering)")
    ratio = row.get("se_ratio")
    if ratio is not None and math.isfinite(ratio) and abs(ratio - 1) > 0.1:
        reasons.append(f"mean SE / Monte Carlo SD = {ratio:.2f}")
    if not reasons and row.get("n"):
        nominal_se = math.sqrt(0.95 * 0.05 / row["n"])  # MC SE of a correctly calibrated interval's coverage
        k = abs(row["coverage"] - 0.95) / nominal_se
        reasons.append(f"no bias or SE-ratio problem detected; coverage is {k:.1f} nominal Monte Carlo SEs from 0.95")
    return "; ".join(reasons)


def _metrics(df: pd.DataFrame) -> dict[str, Any]:
    est, truth = df["estimate"].to_numpy(), df["truth"].to_numpy()
    err = est - truth
    se = df["se"].to_numpy()
    lo, hi = df["conf_low"].to_numpy(), df["conf_high"].to_numpy()
    n = len(df)
    out: dict[str, Any] = {"n": n, "truth": float(np.mean(truth)), "bias": float(np.mean(err)),
                           "rmse": float(np.sqrt(np.mean(err**2))), "mc_sd": float(np.std(est, ddof=1)) if n > 1 else None}
    ok_se = np.isfinite(se)
    out["mean_se"] = float(np.mean(se[ok_se])) if ok_se.any() else None
    out["se_ratio"] = float(out["mean_se"] / out["mc_sd"]) if out["mean_se"] is not None and out["mc_sd"] else None
    ok_ci = ~np.isnan(lo) & ~np.isnan(hi)  # an infinite bound is a valid (unbounded) interval
    out["ci_missing"] = int(n - ok_ci.sum())
    if ok_ci.any():
        # a replication without an interval (NaN bound) counts as not covering: never hidden
        cov = float(np.mean(ok_ci & (lo <= truth) & (truth <= hi)))
        width = (hi - lo)[ok_ci]
        out["mean_width"] = float(np.mean(width)) if np.isfinite(width).all() else None
        out["coverage"] = cov
        out["coverage_mcse"] = float(math.sqrt(max(cov * (1 - cov), 1e-12) / n))
    else:  # the estimator reports no interval at all (a test only)
        out["coverage"] = out["coverage_mcse"] = None
        out["ci_missing"] = 0
    p = df["p_value"].to_numpy()
    ok_p = np.isfinite(p)
    out["p_missing"] = int(n - ok_p.sum())
    if np.allclose(truth, 0) and ok_p.any():
        out["size_5pct"] = float(np.mean(p[ok_p] <= 0.05))
        out["size_mcse"] = float(math.sqrt(0.05 * 0.95 / int(ok_p.sum())))
    else:
        out["size_5pct"] = out["size_mcse"] = None
    return out


def summarise(chunks: list[dict[str, Any]], names: Sequence[str], sbc: dict[str, Any] | None, *, quick: bool,
              seed: int, reps: int | None, sbc_reps: int, estimators: Sequence[str] | None = None) -> dict[str, Any]:
    """Aggregate chunk outputs into the results dictionary written to results.json."""
    failures: dict[tuple[str, str], list[str]] = {}
    warned: dict[tuple[str, str], int] = {}
    rows = []
    for ch in chunks:
        rows.extend((ch["cell"], *rec) for rec in ch["records"])
        for est, msgs in ch["failures"].items():
            failures.setdefault((ch["cell"], est), []).extend(msgs)
        for est, k in ch["warnings"].items():
            warned[(ch["cell"], est)] = warned.get((ch["cell"], est), 0) + k
    # chunks finish in any order: sort by replication for an order-free aggregation
    recs = pd.DataFrame(rows, columns=["cell", *COLUMNS]).sort_values(["cell", "estimator", "target", "rep"],
                                                                       kind="mergesort")
    for v in failures.values():
        v.sort(key=lambda m: int(m.split(":")[0].split()[1]))
    table = []
    for name in names:
        cell = grid.CELL_BY_NAME[name]
        n_reps = reps if reps is not None else (cell.quick_reps if quick else cell.reps)
        for est in grid.cell_estimators(name, estimators):
            sub = recs[(recs["cell"] == name) & (recs["estimator"] == est)]
            fails = failures.get((name, est), [])
            for target, df in sub.groupby("target", sort=True):
                row = {"cell": name, "estimator": est, "target": target, "reps": n_reps, "failures": len(fails),
                       "warnings": warned.get((name, est), 0), **_metrics(df)}
                cov, size = row["coverage"], row["size_5pct"]
                row["flag"] = None
                if quick:
                    pass
                elif cov is not None and not (BAND[0] <= cov <= BAND[1]):
                    row["flag"] = _diagnose(row, cell.notes)
                elif cov is None and size is not None and not (SIZE_BAND[0] <= size <= SIZE_BAND[1]):
                    row["flag"] = _diagnose(row, cell.notes)
                table.append(row)
            if sub.empty:
                table.append({"cell": name, "estimator": est, "target": None, "reps": n_reps, "failures": len(fails),
                              "warnings": warned.get((name, est), 0), "n": 0})
    return _clean({
        "seed": seed,
        "quick": quick,
        "reps_override": reps,
        "band": list(BAND),
        "cells": [{"name": c.name, "dgp": c.dgp, "params": c.params, "estimators": list(c.estimators),
                   "reps": reps if reps is not None else (c.quick_reps if quick else c.reps),
                   "description": c.description, "notes": list(c.notes)}
                  for c in grid.CELLS if c.name in names],
        "table": table,
        "failures": {f"{c}/{e}": msgs[:5] for (c, e), msgs in sorted(failures.items())},
        "sbc": None if sbc is None else _sbc(sbc, sbc_reps, quick),
    })


def _sbc(sbc: dict[str, Any], n_reps: int, quick: bool) -> dict[str, Any]:
    """The SBC block of results.json: the task's table and pooled model-level coverage (no timings), with
    ``band`` and, in a full run, ``flags`` for parameters whose coverage falls outside it."""
    out = {k: v for k, v in sbc.items() if k not in ("cpu", "pid")}
    out.update(n_reps=n_reps, band=list(SBC_BAND))
    out["flags"] = [] if quick else [
        f"{r['parameter']}: coverage {r['coverage']:.3f} outside {SBC_BAND[0]:.2f}-{SBC_BAND[1]:.2f}"
        for r in sbc["table"] if not SBC_BAND[0] <= r["coverage"] <= SBC_BAND[1]]
    return out


def merge(old: dict[str, Any], new: dict[str, Any], estimators: Sequence[str] | None = None) -> dict[str, Any]:
    """``old`` results with the cells of ``new`` replaced or added (grid order); the SBC block of ``new`` if it ran.

    Lets the expensive cells run one process at a time (``run.py --merge``) into one results.json. With
    ``estimators``, only those estimators' rows of the cells run are replaced (the others keep their own
    replications; each table row states its ``reps``). A merge of a full and a quick run, or of two seeds,
    is refused: their flags would not mean the same thing.
    """
    if bool(old.get("quick")) != bool(new.get("quick")) or old.get("seed") != new.get("seed"):
        raise SystemExit("--merge: the existing results.json has another seed or run mode; run without --merge")
    names = {c["name"] for c in new["cells"]}
    order = {c.name: i for i, c in enumerate(grid.CELLS)}

    def replaced(cell: str, est: str) -> bool:
        return cell in names and (estimators is None or est in set(estimators))

    new_cells = {c["name"]: c for c in new["cells"]}
    cells = []
    for c in old["cells"]:
        if c["name"] in order and c["name"] not in names:
            cells.append(c)
        elif c["name"] in names and estimators is not None:  # a partial rerun: the cell keeps its largest reps
            new_cells[c["name"]] = dict(new_cells[c["name"]], reps=max(c["reps"], new_cells[c["name"]]["reps"]))
    cells = sorted(cells + list(new_cells.values()), key=lambda c: order[c["name"]])
    table = [r for r in old["table"] if r["cell"] in order and not replaced(r["cell"], r["estimator"])] + new["table"]

    def rank(r: dict[str, Any]) -> tuple[int, int, str]:
        ests = grid.CELL_BY_NAME[r["cell"]].estimators
        return order[r["cell"]], ests.index(r["estimator"]) if r["estimator"] in ests else len(ests), str(r["target"])

    table.sort(key=rank)
    failures = {}
    for k, v in old.get("failures", {}).items():
        cell, _, est = k.partition("/")
        if cell in order and not replaced(cell, est):
            failures[k] = v
    failures.update(new.get("failures", {}))
    out = dict(old, cells=cells, table=table, failures=dict(sorted(failures.items())))
    out["reps_override"] = None  # per-cell replications are in cells[].reps, per method in table[].reps
    if new.get("sbc") is not None:
        out["sbc"] = new["sbc"]
    return out


def merge_costs(old: dict[str, Any] | None, new: dict[str, Any] | None, names: Sequence[str],
                wall_s: float) -> dict[str, Any] | None:
    """The run-cost rows of ``old`` with those of the cells just run replaced; each run's wall-clock kept."""
    if new is None:
        return old
    if not old:
        return dict(new, runs=[{"cells": sorted(names), "wall_s": wall_s}])
    ran = {(r["cell"], r["estimator"]) for r in new["rows"]}
    rows = [r for r in old["rows"] if (r["cell"], r["estimator"]) not in ran] + new["rows"]
    rows.sort(key=lambda r: (r["cell"], r["estimator"]))
    runs = list(old.get("runs", []))
    runs.append({"cells": sorted(names), "wall_s": wall_s})
    return {"rows": rows, "chunks_cpu_s": sum(r["total_cpu_s"] for r in rows),
            "sbc_cpu_s": new["sbc_cpu_s"] if new.get("sbc_cpu_s") is not None else old.get("sbc_cpu_s"),
            "projected_full_cpu_s": sum(r["projected_full_cpu_s"] for r in rows),
            "compile_per_worker_s": sum(max(0.0, r["first_call_extra_s"]) for r in rows),
            "workers_seen": new.get("workers_seen"), "runs": runs}


# ------------------------------------------------------------------ outputs
def _fmt(x: Any, spec: str = ".3f") -> str:
    return "" if x is None else format(x, spec)


def _cost_lines(costs: dict[str, Any] | None) -> list[str]:
    """The README's run-cost table (process CPU seconds measured in the workers during this run)."""
    if not costs:
        return []
    lines = ["", "## Run cost", "",
             "Process CPU seconds measured in the Dask workers during this run (they vary with the machine and its "
             "load). Steady: mean over replications, excluding an estimator's first call on a cell in each worker; "
             "first call: the extra seconds that call took (tracing and XLA compilation). Full grid: the steady "
             "cost times the full run's replications.", "",
             "| cell | estimator | CPU s / rep | first call + s | reps timed | full-grid reps | full-grid CPU s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in costs["rows"]:
        lines.append(f"| {r['cell']} | {r['estimator']} | {r['cpu_per_rep_s']:.4f} | {max(0.0, r['first_call_extra_s']):.1f} | "
                     f"{r['calls']} | {r['full_reps']} | {r['projected_full_cpu_s']:.0f} |")
    sbc = costs.get("sbc_cpu_s")
    lines += ["", f"All chunks: {costs['chunks_cpu_s']:.0f} CPU s; SBC task: "
              f"{'not run' if sbc is None else f'{sbc:.0f} CPU s'}; compilation about "
              f"{costs['compile_per_worker_s']:.0f} CPU s per worker; the full grid's replications at these steady "
              f"costs: {costs['projected_full_cpu_s']:.0f} CPU s."]
    return lines


def _simulated(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows of the simulated cells (the real-data placebo cells have their own section)."""
    placebo = {c["name"] for c in results["cells"] if c["dgp"] == "placebo"}
    return [r for r in results["table"] if r["cell"] not in placebo]


PLACEBO_BAYES_BAND = (0.90, 0.99)  # issue 21: the Bayesian DiD's 95% intervals cover 90-99% on the placebo design


def verdict(row: dict[str, Any]) -> str:
    """A method's verdict in a placebo design: refused, valid (size 3-7%), conservative (< 3%), over-rejects
    (> 7%); a method without a p-value (the Bayesian DiD) by its interval's coverage of 0 (90-99%)."""
    if not row.get("n"):
        return "refused"
    size, cov = row.get("size_5pct"), row.get("coverage")
    if size is not None:
        if size > SIZE_BAND[1]:
            return "over-rejects"
        return "conservative" if size < SIZE_BAND[0] else "valid"
    if cov is not None:
        lo, hi = PLACEBO_BAYES_BAND
        return "calibrated" if lo <= cov <= hi else ("under-covers" if cov < lo else "over-covers")
    return "no p-value or interval"


def _placebo_lines(results: dict[str, Any]) -> list[str]:
    """The real-data placebo section: size and coverage of every method per design, with verdicts."""
    cells = [c for c in results["cells"] if c["dgp"] == "placebo"]
    if not cells:
        return []
    lines = ["", "## Real-data placebo laws (Bertrand, Duflo and Mullainathan 2004)", "",
             "Placebo laws assigned at random to jurisdictions that adopted no policy, on real overdose series "
             "(`validation/realdata.py`): the true effect is zero, so a valid 5% test rejects about 5% of the time "
             "and a 95% interval covers zero about 95% of the time. Size: share of p-values at or below 0.05 "
             "(MC SE in brackets, sqrt(0.05 x 0.95 / n)); coverage: share of 95% intervals containing 0 (MC SE). "
             "Verdict: **valid** size 3-7%; **conservative** size below 3%; **over-rejects** above 7%; "
             "**refused**: the estimator raised a `DecrimkitError` in every replication (no p-value printed); "
             "the Bayesian DiD, which reports no p-value, is judged on its 95% HDI's coverage (90-99%: "
             "calibrated). reps: replications run for that method; n: those with a result; warn: warnings raised (for the Bayesian DiD, "
             "fits that failed the package's convergence gate).", ""]
    for c in cells:
        rows = [r for r in results["table"] if r["cell"] == c["name"]]
        every = (f" Every one of the {c['reps']} distinct one-unit laws is run once (an exact enumeration of the "
                 "placebo distribution; the MC SEs treat the laws as draws)." if c["params"].get("exhaustive") else "")
        notes = [n for n in c.get("notes", []) if n not in grid._PLACEBO_NOTE]
        lines += [f"### {c['name']}", "", f"{c['description']}.{every}", ""]
        lines += [f"Note: {n}." for n in notes] + ([""] if notes else [])
        lines += [
                  "| method | reps | n | warn | size 5% | coverage | mean interval width | verdict |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            if not r.get("n"):
                lines.append(f"| {r['estimator']} | {r['reps']} | 0 | {r['warnings']} | | | | refused ({r['failures']} of "
                             f"{r['reps']}) |")
                continue
            size = "" if r["size_5pct"] is None else f"{r['size_5pct']:.3f} ({r['size_mcse']:.3f})"
            cov = "" if r["coverage"] is None else f"{r['coverage']:.3f} ({r['coverage_mcse']:.3f})"
            width = _fmt(r.get("mean_width"), ".3g")
            extra = f"; {r['failures']} failed" if r["failures"] else ""
            lines.append(f"| {r['estimator']} | {r['reps']} | {r['n']} | {r['warnings']} | {size} | {cov} | {width} | "
                         f"{verdict(r)}{extra} |")
        lines.append("")
    lines += ["### Verdicts by design", ""]
    for c in cells:
        rows = [r for r in results["table"] if r["cell"] == c["name"]]
        by: dict[str, list[str]] = {}
        for r in rows:
            v = verdict(r)
            what = (f"{r['estimator']} {r['size_5pct']:.3f}" if r.get("size_5pct") is not None
                    else f"{r['estimator']} coverage {r['coverage']:.3f}" if r.get("coverage") is not None
                    else r["estimator"])
            by.setdefault(v, []).append(what)
        parts = [f"{v}: {', '.join(ms)}" for v, ms in sorted(by.items())]
        reps = sorted({r["reps"] for r in rows})
        lines.append(f"- **{c['name']}** ({'/'.join(map(str, reps))} reps): " + "; ".join(parts))
    return lines + _headline_lines(results)


FULL_PLACEBO_REPS = 500  # issue 21: at least 500 replications for a frequentist method (or every distinct law)


def _headline_lines(results: dict[str, Any]) -> list[str]:
    """The inference each study reports, checked against its matching placebo cell (grid.HEADLINES)."""
    cells = {c["name"]: c for c in results["cells"]}
    rows = {(r["cell"], r["estimator"]): r for r in results["table"]}
    lines = ["", "### Inference reported by the studies, on the matching placebo design", "",
             f"Backed: the method's row rests on at least {FULL_PLACEBO_REPS} replications, or on every distinct "
             "law of the design (the exhaustive one-state cell).", "",
             "| study | reported inference | cell | method | reps | size 5% | coverage | verdict | backed |",
             "|---|---|---|---|---:|---:|---:|---|---|"]
    for study, what, cell, method in grid.HEADLINES:
        r = rows.get((cell, method))
        if r is None or cell not in cells:
            lines.append(f"| {study} | {what} | {cell} | {method} | 0 | | | not run | no |")
            continue
        exhaustive = bool(cells[cell]["params"].get("exhaustive"))
        backed = r["reps"] >= FULL_PLACEBO_REPS or (exhaustive and r["reps"] >= grid.N_STATE_YEAR_LAWS)
        size = "" if r.get("size_5pct") is None else f"{r['size_5pct']:.3f} ({r['size_mcse']:.3f})"
        cov = "" if r.get("coverage") is None else f"{r['coverage']:.3f} ({r['coverage_mcse']:.3f})"
        v = verdict(r)
        v = f"**{v}**" if v in ("over-rejects", "refused", "under-covers") else v
        lines.append(f"| {study} | {what} | {cell} | {method} | {r['reps']} | {size} | {cov} | {v} | "
                     f"{'yes' + (' (all laws)' if exhaustive else '') if backed else 'no'} |")
    return lines


def _wall_text(wall_s: float, workers: int | None, costs: dict[str, Any] | None) -> str:
    where = f"{workers} local Dask workers" if workers else "a Dask cluster"
    runs = (costs or {}).get("runs", [])
    if len(runs) <= 1:
        return f"{wall_s / 60:.1f} min wall-clock on {where}"
    def what(cells: list[str]) -> str:
        return ", ".join(cells) if len(cells) <= 3 else f"{len(cells)} cells"

    parts = "; ".join(f"{what(r['cells'])}: {r['wall_s'] / 60:.1f} min" for r in runs)
    return f"assembled from {len(runs)} runs (`--merge`), one at a time: {parts}"


def _markdown(results: dict[str, Any], wall_s: float, workers: int | None,
              costs: dict[str, Any] | None = None) -> str:
    mode = "quick" if results["quick"] else "full"
    lines = [
        "# Monte Carlo validation",
        "",
        f"Generated by `python validation/run.py{' --quick' if results['quick'] else ''}` "
        f"(seed {results['seed']}; {mode} run; " + _wall_text(wall_s, workers, costs) + "). DGPs: "
        "`validation/dgp.py` and `validation/realdata.py`; grid: `validation/cells.py`; method notes: "
        "`docs/validation.md`.",
        "",
    ]
    if results["quick"]:
        lines += ["**Quick run**: a handful of replications per cell checks that the pipeline works; its coverage "
                  "numbers are too noisy to judge calibration (run `make validate` for the full grid).", ""]
    lines += ["## Cells", "", "| cell | reps | design |", "|---|---:|---|"]
    for c in results["cells"]:
        lines.append(f"| {c['name']} | {c['reps']} | {c['description']} |")
    lines += ["", "## Bias, RMSE, coverage and size", "",
              "Coverage: share of nominal 95% intervals containing the truth (MC SE in brackets). Size: share of "
              "5% tests rejecting a true null. SE ratio: mean reported SE / Monte Carlo SD of the estimates. "
              f"Flags: coverage outside {results['band'][0]:.0%}-{results['band'][1]:.0%} or, for a test reported "
              f"without an interval, size outside {SIZE_BAND[0]:.0%}-{SIZE_BAND[1]:.0%}. n: replications with a "
              "result; fail: replications where the estimator raised a `DecrimkitError`; warn: warnings raised.", "",
              "| cell | estimator | target | n | fail | warn | truth | bias | RMSE | SE ratio | coverage | size 5% | flag |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in _simulated(results):
        if not r.get("n"):
            lines.append(f"| {r['cell']} | {r['estimator']} | - | 0 | {r['failures']} | {r['warnings']} | | | | | | | "
                         "every replication failed |")
            continue
        cov = "" if r["coverage"] is None else f"{r['coverage']:.3f} ({r['coverage_mcse']:.3f})"
        size = "" if r["size_5pct"] is None else f"{r['size_5pct']:.3f}"
        lines.append(f"| {r['cell']} | {r['estimator']} | {r['target']} | {r['n']} | {r['failures']} | {r['warnings']} | "
                     f"{_fmt(r['truth'])} | {_fmt(r['bias'])} | {_fmt(r['rmse'])} | {_fmt(r['se_ratio'], '.2f')} | "
                     f"{cov} | {size} | {r['flag'] or ''} |")
    flagged = [r for r in _simulated(results) if r.get("flag")]
    lines += ["", "## Intervals outside the 93-97% band (tests outside 3-7% size)", ""]
    if results["quick"]:
        lines.append("Not assessed in a quick run.")
    elif not flagged:
        lines.append("None.")
    else:
        for r in flagged:
            what = (f"coverage {r['coverage']:.3f}" if r["coverage"] is not None else f"size {r['size_5pct']:.3f}")
            lines.append(f"- **{r['cell']} / {r['estimator']} / {r['target']}**: {what}: {r['flag']}")
    if results["failures"]:
        lines += ["", "## Failed replications (first messages)", ""]
        for k, msgs in results["failures"].items():
            lines.append(f"- {k}: " + " | ".join(msgs[:2]))
    sbc = results.get("sbc")
    if sbc:
        lines += ["", "## Bayesian hierarchical pooling model: simulation-based calibration", "",
                  f"`bayes.calibration.run_sbc`, {sbc['n_reps']} replications, {sbc['prob']:.0%} HDIs "
                  f"(tune/draws {sbc['options'].get('tune')}/{sbc['options'].get('draws')}). "
                  "Coverage should be near the HDI mass; the rank chi-square p-value tests rank uniformity.", "",
                  "| parameter | reps | coverage | rank chi2 p | mean divergences |", "|---|---:|---:|---:|---:|"]
        for r in sbc["table"]:
            lines.append(f"| {r['parameter']} | {r['n_reps']} | {_fmt(r['coverage'])} | {_fmt(r['rank_chi2_p'])} | "
                         f"{_fmt(r['mean_divergences'], '.2f')} |")
        lo, hi = sbc["band"]
        cov = sbc["model_coverage"]
        n_model = sum(r["parameter"].startswith("mu_model") for r in sbc["table"])
        mcse = math.sqrt(max(cov * (1 - cov), 1e-12) / max(1, sbc["n_reps"] * n_model))
        lines += ["", f"Coverage pooled over the {n_model} model-level effects `mu_model`: **{cov:.3f}** "
                  f"(MC SE about {mcse:.3f}, ignoring the correlation between effects); target {lo:.0%}-{hi:.0%} over "
                  "at least 100 replications (issue 6)."]
        if results["quick"] or sbc["n_reps"] < 100:
            lines.append(f"Not judged: {sbc['n_reps']} replications are too few.")
        else:
            lines.append("Pooled model-level coverage within the band (the issue's criterion)." if sbc["passes"]
                         else "**Pooled model-level coverage outside the band.**")
            if sbc["flags"]:
                per = math.sqrt(sbc["prob"] * (1 - sbc["prob"]) / sbc["n_reps"])
                lines += ["", f"Single parameters outside {lo:.0%}-{hi:.0%} (MC SE of one parameter's coverage about "
                          f"{per:.3f} at {sbc['n_reps']} replications), reported, not hidden:", ""]
                lines += [f"- {f}" for f in sbc["flags"]]
    lines += _placebo_lines(results)
    lines += _cost_lines(costs)
    lines += ["", "## Figures", "", "![coverage](figures/coverage.png)", "", "![bias](figures/bias.png)", ""]
    return "\n".join(lines)


def _figures(results: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from decrimkit.plotting import PALETTE, style

    rows = [r for r in _simulated(results) if r.get("coverage") is not None]
    folder.mkdir(parents=True, exist_ok=True)
    with style():
        fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.24 * len(rows) + 1)))
        ax.axvspan(*results["band"], color=PALETTE[2], alpha=0.15, label="93-97%")
        ax.axvline(0.95, color="0.3", lw=0.8)
        for i, r in enumerate(rows):
            col = PALETTE[1] if r.get("flag") else PALETTE[0]
            ax.errorbar(r["coverage"], i, xerr=1.96 * r["coverage_mcse"], fmt="o", color=col, ms=4, capsize=2)
        ax.set_yticks(range(len(rows)), [f"{r['cell']} | {r['estimator']} | {r['target']}" for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("coverage of nominal 95% intervals (bars: +-1.96 MC SE)")
        ax.legend(loc="lower left", fontsize=7)
        _save(fig, folder, "coverage")
        brows = [r for r in _simulated(results) if r.get("n") and r.get("rmse") is not None]
        fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.24 * len(brows) + 1)))
        ax.axvline(0, color="0.3", lw=0.8)
        ax.barh(range(len(brows)), [r["rmse"] for r in brows], color=PALETTE[5], alpha=0.5, label="RMSE")
        ax.plot([r["bias"] for r in brows], range(len(brows)), "o", color=PALETTE[1], ms=4, label="bias")
        ax.set_yticks(range(len(brows)), [f"{r['cell']} | {r['estimator']} | {r['target']}" for r in brows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("estimate - truth")
        ax.legend(loc="lower right", fontsize=7)
        _save(fig, folder, "bias")


def _save(fig: Any, folder: Path, name: str) -> None:
    """``name``.png and .svg (no date in the svg, so the same run writes the same bytes), then close."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(folder / f"{name}.{ext}", dpi=150, metadata={"Date": None} if ext == "svg" else None)
    plt.close(fig)


def _write(path: Path, text: str) -> None:
    """Atomic write: a temporary file beside ``path``, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_outputs(results: dict[str, Any], out: Path, *, wall_s: float, workers: int | None,
                  costs: dict[str, Any] | None = None, merge_into: bool = False,
                  estimators: Sequence[str] | None = None) -> Path:
    """Write results.json (sorted keys, no timestamps), README.md (with the run cost) and figures/ under ``out``.

    ``merge_into``: keep the other cells of an existing ``results.json`` (see :func:`merge`) and of its run
    costs (``costs.json``, which holds the CPU seconds and wall-clock of each run and is not byte-stable).
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    cost_path = out / "costs.json"
    names = [c["name"] for c in results["cells"]]
    if merge_into and path.exists():
        results = merge(json.loads(path.read_text(encoding="utf-8")), results, estimators)
        old_costs = json.loads(cost_path.read_text(encoding="utf-8")) if cost_path.exists() else None
        costs = merge_costs(old_costs, costs, names, wall_s)
    elif costs is not None:
        costs = dict(costs, runs=[{"cells": sorted(names), "wall_s": wall_s}])
    _write(path, json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n")
    if costs is not None:
        _write(cost_path, json.dumps(_clean(costs), indent=2, sort_keys=True) + "\n")
    _write(out / "README.md", _markdown(results, wall_s, workers, costs))
    _figures(results, out / "figures")
    return path


def regenerate(out: Path) -> Path:
    """Rewrite README.md and the figures from ``out``/results.json and costs.json (no replication is rerun)."""
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    cost_path = out / "costs.json"
    costs = json.loads(cost_path.read_text(encoding="utf-8")) if cost_path.exists() else None
    wall = sum(r["wall_s"] for r in (costs or {}).get("runs", [])) or 0.0
    _write(out / "README.md", _markdown(results, wall, 1, costs))
    _figures(results, out / "figures")
    return out / "README.md"


if __name__ == "__main__":  # python validation/summarise.py [folder]: regenerate the README from the stored results
    import sys

    print(regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent))
