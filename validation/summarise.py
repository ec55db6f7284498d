"""Turn replication records into the validation tables, results.json, README.md and figures.

Metrics per (cell, estimator, target): replications used, failures (a ``DecrimkitError`` on that
draw), bias and RMSE of the estimate against the DGP's truth, mean reported SE over the Monte Carlo
SD of the estimates, coverage of the nominal 95% interval (with its Monte Carlo standard error), and,
where the truth is zero, the size of the 5% test (share of p-values at or below 0.05). A frequentist
95% interval whose coverage falls outside 93-97% is flagged, never hidden, with a diagnosis.
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
    sd, bias = row["mc_sd"], row["bias"]
    if sd and bias is not None and abs(bias) > 0.25 * sd:
        reasons.append(f"bias {bias:+.3f} is {abs(bias) / sd:.2f} Monte Carlo SDs")
    ratio = row.get("se_ratio")
    if ratio is not None and math.isfinite(ratio) and abs(ratio - 1) > 0.1:
        reasons.append(f"mean SE / Monte Carlo SD = {ratio:.2f}")
    if not reasons and row["coverage_mcse"]:
        k = abs(row["coverage"] - 0.95) / row["coverage_mcse"]
        reasons.append(f"no bias or SE-ratio problem detected; coverage is {k:.1f} Monte Carlo SEs from 0.95")
    return "; ".join(reasons)


def _metrics(df: pd.DataFrame) -> dict[str, Any]:
    est, truth = df["estimate"].to_numpy(), df["truth"].to_numpy()
    err = est - truth
    se = df["se"].to_numpy()
    lo, hi = df["conf_low"].to_numpy(), df["conf_high"].to_numpy()
    n = len(df)
    out: dict[str, Any] = {"n": n, "truth": float(np.mean(truth)), "bias": float(np.mean(err)),
                           "rmse": float(np.sqrt(np.mean(err**2))), "mc_sd": float(np.std(est, ddof=1)) if n > 1 else None}
    has_se = np.isfinite(se).all()
    out["mean_se"] = float(np.mean(se)) if has_se else None
    out["se_ratio"] = float(np.mean(se) / out["mc_sd"]) if has_se and out["mc_sd"] else None
    has_ci = np.isfinite(lo).all() and np.isfinite(hi).all()
    if has_ci:
        cov = float(np.mean((lo <= truth) & (truth <= hi)))
        out["coverage"] = cov
        out["coverage_mcse"] = float(math.sqrt(max(cov * (1 - cov), 1e-12) / n))
    else:
        out["coverage"] = out["coverage_mcse"] = None
    p = df["p_value"].to_numpy()
    if np.allclose(truth, 0) and np.isfinite(p).all():
        out["size_5pct"] = float(np.mean(p <= 0.05))
        out["size_mcse"] = float(math.sqrt(0.05 * 0.95 / n))
    else:
        out["size_5pct"] = out["size_mcse"] = None
    return out


def summarise(chunks: list[dict[str, Any]], names: Sequence[str], sbc: dict[str, Any] | None, *, quick: bool,
              seed: int, reps: int | None, sbc_reps: int) -> dict[str, Any]:
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
        for est in cell.estimators:
            sub = recs[(recs["cell"] == name) & (recs["estimator"] == est)]
            fails = failures.get((name, est), [])
            for target, df in sub.groupby("target", sort=True):
                row = {"cell": name, "estimator": est, "target": target, "reps": n_reps, "failures": len(fails),
                       "warnings": warned.get((name, est), 0), **_metrics(df)}
                cov = row["coverage"]
                row["flag"] = None
                if cov is not None and not quick and not (BAND[0] <= cov <= BAND[1]):
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
        "sbc": None if sbc is None else {**sbc, "n_reps": sbc_reps},
    })


# ------------------------------------------------------------------ outputs
def _fmt(x: Any, spec: str = ".3f") -> str:
    return "" if x is None else format(x, spec)


def _markdown(results: dict[str, Any], wall_s: float, workers: int | None) -> str:
    mode = "quick" if results["quick"] else "full"
    lines = [
        "# Monte Carlo validation",
        "",
        f"Generated by `python validation/run.py{' --quick' if results['quick'] else ''}` "
        f"(seed {results['seed']}; {mode} run; {wall_s / 60:.1f} min wall-clock on "
        f"{f'{workers} local Dask workers' if workers else 'a Dask cluster'}). DGPs: `validation/dgp.py`; grid: "
        "`validation/cells.py`; method notes: `docs/validation.md`.",
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
              f"Flags: coverage outside {results['band'][0]:.0%}-{results['band'][1]:.0%}.", "",
              "| cell | estimator | target | n | fail | truth | bias | RMSE | SE ratio | coverage | size 5% | flag |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results["table"]:
        if not r.get("n"):
            lines.append(f"| {r['cell']} | {r['estimator']} | - | 0 | {r['failures']} | | | | | | | every replication failed |")
            continue
        cov = "" if r["coverage"] is None else f"{r['coverage']:.3f} ({r['coverage_mcse']:.3f})"
        size = "" if r["size_5pct"] is None else f"{r['size_5pct']:.3f}"
        lines.append(f"| {r['cell']} | {r['estimator']} | {r['target']} | {r['n']} | {r['failures']} | "
                     f"{_fmt(r['truth'])} | {_fmt(r['bias'])} | {_fmt(r['rmse'])} | {_fmt(r['se_ratio'], '.2f')} | "
                     f"{cov} | {size} | {r['flag'] or ''} |")
    flagged = [r for r in results["table"] if r.get("flag")]
    lines += ["", "## Intervals outside the 93-97% band", ""]
    if results["quick"]:
        lines.append("Not assessed in a quick run.")
    elif not flagged:
        lines.append("None.")
    else:
        for r in flagged:
            lines.append(f"- **{r['cell']} / {r['estimator']} / {r['target']}**: coverage {r['coverage']:.3f}: {r['flag']}")
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
    lines += ["", "## Figures", "", "![coverage](figures/coverage.png)", "", "![bias](figures/bias.png)", ""]
    return "\n".join(lines)


def _figures(results: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from decrimkit.plotting import PALETTE, style

    rows = [r for r in results["table"] if r.get("coverage") is not None]
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
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(folder / f"coverage.{ext}", dpi=150, metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)
        brows = [r for r in results["table"] if r.get("n") and r.get("rmse") is not None]
        fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.24 * len(brows) + 1)))
        ax.axvline(0, color="0.3", lw=0.8)
        ax.barh(range(len(brows)), [r["rmse"] for r in brows], color=PALETTE[5], alpha=0.5, label="RMSE")
        ax.plot([r["bias"] for r in brows], range(len(brows)), "o", color=PALETTE[1], ms=4, label="bias")
        ax.set_yticks(range(len(brows)), [f"{r['cell']} | {r['estimator']} | {r['target']}" for r in brows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("estimate - truth")
        ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        for ext in ("png", "svg"):
            fig.savefig(folder / f"bias.{ext}", dpi=150, metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)


def write_outputs(results: dict[str, Any], out: Path, *, wall_s: float, workers: int | None) -> Path:
    """Write results.json (sorted keys, no timestamps), README.md and figures/ under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_markdown(results, wall_s, workers), encoding="utf-8")
    _figures(results, out / "figures")
    return path
