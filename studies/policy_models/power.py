"""Design-based power: known effects injected into real untreated state overdose series.

For one policy model with ``K`` adoption cohorts in the registry (years ``c_1..c_K``), one Monte
Carlo replicate

1. draws ``K`` distinct states at random from the pool of states with no registry row at all (their
   2015-2024 log overdose death rates are real series with real noise: fentanyl waves, the 2020
   jump, the population-vintage seam), and gives them the model's cohort years (placebo adoption);
2. for every effect size ``delta`` of the grid adds ``delta`` to the placebo-treated states' log rate
   from their cohort year on (an effect of ``exp(delta) - 1`` in relative terms, constant over
   event time), keeping the same placebo assignment across the grid (common random numbers);
3. runs the staggered estimators on the ``log_rate`` outcome with the remaining pool states as
   never-treated comparisons: Callaway-Sant'Anna (``did.att_gt``, outcome regression, never-treated
   comparisons, ``simple`` aggregation, analytic influence-function SE), imputation
   (``did.imputation``, overall ATT, BJS conservative SE) and synthetic DiD (``synth.sdid``;
   jackknife SE with two or more treated states, placebo SE with one, where the jackknife is undefined;
   the placebo SE uses only the comparison states, which carry no injected effect, so it is computed
   once per replicate and reused across effect sizes).

Because the injected effect is the same constant for every treated cell, every estimator's target is
``delta`` whatever its cell weights, so bias is ``mean(estimate) - delta``; coverage is the share of
95% normal intervals containing ``delta``; power is the share rejecting ``effect = 0`` at 5%
(two-sided). The minimum detectable effect (MDE) is the smallest ``delta`` with power >= 0.8,
interpolated linearly between grid points (NaN when the grid's largest effect is not detected at
80%). The rejection rate at ``delta = 0`` is the test's size under real noise: when it exceeds 5%,
the MDE is not size-adjusted and overstates what can be detected.

Every replicate draws its states from ``numpy.random.default_rng([seed, model_index, rep])``, so the
numbers do not depend on how the grid is scheduled. The grid runs as one task per (model, replicate)
on a Dask cluster: a ``LocalCluster`` (at most two worker processes, one thread each) unless a
scheduler address is given.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.errors import DecrimkitError, FewTreatedWarning, SpecificationError

from .placebo_design import PowerDesign, injected_frame, placebo_draw, power_designs

__all__ = [
    "PowerDesign",
    "GridPart",
    "power_designs",
    "simulate_rep",
    "simulate_bayes",
    "run_grid",
    "summarise",
    "mde_table",
    "cluster",
]

GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6)
ESTIMATORS = ("att_gt", "imputation", "sdid")
ESTIMATOR_LABELS = {
    "att_gt": "Callaway-Sant'Anna",
    "imputation": "Imputation (BJS)",
    "sdid": "Synthetic DiD",
    "hierarchical_did": "Bayesian hierarchical DiD",
}
Z = 1.959963984540054  # standard normal 0.975 quantile
TARGET_POWER = 0.8
SIZE_TOLERANCE = 0.1  # a 5% test rejecting more than 10% of null replicates is flagged
BAYES_SAMPLING = {"chains": 2, "draws": 300, "tune": 300}


def _normal(est: float, se: float) -> tuple[float, float, float, float]:
    return est, se, est - Z * se, est + Z * se


def _fit(
    estimator: str,
    frame: pd.DataFrame,
    *,
    seed: int,
    sdid_reps: int,
    model: str,
    bayes: dict[str, int],
    placebo_se: float | None = None,
) -> tuple[float, float, float, float]:
    """(estimate, se, lower, upper) of one estimator; 95% normal intervals, or the HDI for the Bayesian one."""
    from decrimkit import Panel
    from decrimkit.estimators import did, synth

    if estimator == "hierarchical_did":
        from decrimkit.estimators import bayes as bayes_family

        panel = Panel.from_frame(
            frame, unit="state", time="year", outcome="deaths", cohort="cohort", population="population"
        )
        post = bayes_family.hierarchical_did(
            panel, policy_model={u: model for u in panel.treated_units}, seed=seed, **bayes
        )
        row = post.effect("overall").set_index("term").loc["att"]
        return float(row["mean"]), float(row["sd"]), float(row["hdi_low"]), float(row["hdi_high"])
    panel = Panel.from_frame(frame, unit="state", time="year", outcome="y", cohort="cohort")
    # the power grid measures the size of the analytic (large-sample) tests with 1-4 treated states on
    # purpose, so their few-treated warning is expected here and not repeated for every replication
    if estimator == "att_gt":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewTreatedWarning)
            agg = did.att_gt(panel, control="never", method="reg", n_boot=0).aggregate("simple")
        return _normal(float(agg.overall[0]), float(agg.overall[1]))
    if estimator == "imputation":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewTreatedWarning)
            res = did.imputation(panel)
        return _normal(float(res.overall[0]), float(res.overall[1]))
    if estimator == "sdid":
        if len(panel.treated_units) >= 2:
            res = synth.sdid(panel, se_method="jackknife", seed=seed)
            return _normal(float(res.estimate), float(res.se))
        if placebo_se is None:  # placebo SE: comparison states only, so one per replicate serves every delta
            res = synth.sdid(panel, se_method="placebo", n_reps=sdid_reps, seed=seed)
            return _normal(float(res.estimate), float(res.se))
        res = synth.sdid(panel, se_method=None)
        return _normal(float(res.estimate), placebo_se)
    raise SpecificationError(f"unknown power estimator {estimator!r}; use one of {', '.join(ESTIMATORS)}.")


def simulate_rep(
    design: PowerDesign,
    rep: int,
    *,
    seed: int,
    deltas: Sequence[float],
    estimators: Sequence[str] = ESTIMATORS,
    sdid_reps: int = 50,
    bayes: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """One replicate: a placebo assignment, then every estimator at every effect size.

    Returns one record per (delta, estimator) with ``estimate``, ``se`` and ``error`` (the message of
    a ``DecrimkitError`` when an estimator refused the draw, else empty).
    """
    treated, rep_seed = placebo_draw(design, rep, seed)
    out: list[dict[str, Any]] = []
    placebo_se: float | None = None
    for delta in deltas:
        frame = injected_frame(design, treated, float(delta))
        for est in estimators:
            rec = {
                "model": design.model,
                "rep": rep,
                "delta": float(delta),
                "estimator": est,
                "estimate": np.nan,
                "se": np.nan,
                "conf_low": np.nan,
                "conf_high": np.nan,
                "error": "",
            }
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # short-chain convergence warnings inside a replicate
                    rec["estimate"], rec["se"], rec["conf_low"], rec["conf_high"] = _fit(
                        est,
                        frame,
                        seed=rep_seed,
                        sdid_reps=sdid_reps,
                        model=design.model,
                        bayes=bayes or BAYES_SAMPLING,
                        placebo_se=placebo_se,
                    )
                if est == "sdid" and len(design.cohorts) == 1:
                    placebo_se = rec["se"]
            except DecrimkitError as exc:
                rec["error"] = str(exc).split(". ")[0]
            out.append(rec)
    return out


def simulate_bayes(
    design: PowerDesign, reps: Sequence[int], *, seed: int, deltas: Sequence[float], bayes: dict[str, int], size: int
) -> list[dict[str, Any]]:
    """Bayesian hierarchical DiD on replicates ``reps`` (same placebo draws as :func:`simulate_rep`).

    Every (replicate, delta) is fitted in one vmapped call of a sampler compiled once per design
    (:class:`~decrimkit.studies.policy_models.bayes_power.BayesPowerEngine`); ``size`` is the padded
    batch length, fixed for the whole grid so the sampler compiles once per worker and design.
    """
    from .bayes_power import BayesPowerEngine

    base = {"model": design.model, "estimator": "hierarchical_did", "error": ""}
    batch, keys = [], []
    for r in reps:
        treated, rep_seed = placebo_draw(design, r, seed)
        for delta in deltas:
            batch.append((treated, float(delta), rep_seed))
            keys.append({"rep": r, "delta": float(delta)})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyMC/JAX informational warnings inside a replicate
            eng = BayesPowerEngine(design, **bayes)
            res = eng.fit(batch, size=size).to_dict("records")
    except DecrimkitError as exc:
        msg = str(exc).split(". ")[0]
        return [
            {**base, **k, "estimate": np.nan, "se": np.nan, "conf_low": np.nan, "conf_high": np.nan, "error": msg}
            for k in keys
        ]
    return [{**base, **k, **r} for k, r in zip(keys, res)]


def _run_chunk(design: PowerDesign, reps: Sequence[int], kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    import decrimkit  # noqa: F401  (worker processes: x64 on before any JAX array exists)

    if tuple(kwargs["estimators"]) == ("hierarchical_did",):
        return simulate_bayes(
            design, reps, seed=kwargs["seed"], deltas=kwargs["deltas"], bayes=kwargs["bayes"], size=kwargs["size"]
        )
    rows: list[dict[str, Any]] = []
    for r in reps:
        rows.extend(simulate_rep(design, r, **{k: v for k, v in kwargs.items() if k != "size"}))
    return rows


@contextlib.contextmanager
def cluster(scheduler: str | None = None, n_workers: int | None = None) -> Iterator[Any]:
    """A Dask ``Client``: to the ``scheduler`` address when given, else (``None`` or ``"local"``) to a new
    LocalCluster (<= 2 processes, 1 thread each)."""
    from decrimkit.extras import require

    require("dask", "the power grid's Dask cluster")
    from dask.distributed import Client, LocalCluster

    if scheduler is not None and scheduler != "local":
        with Client(scheduler) as client:
            yield client
        return
    workers = n_workers if n_workers is not None else max(1, min(2, os.cpu_count() or 1))
    if not 1 <= workers <= 2:
        raise SpecificationError(f"n_workers={workers!r}: the local cluster runs 1 or 2 worker processes.")
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
        ) as lc,
        Client(lc) as client,
    ):
        yield client


class GridPart(NamedTuple):
    """One block of the Monte Carlo grid: a design, its replicates, effect sizes and estimators."""

    design: PowerDesign
    n_reps: int
    deltas: tuple[float, ...]
    estimators: tuple[str, ...]
    chunk: int = 5


def run_grid(
    parts: Sequence[GridPart],
    *,
    seed: int,
    sdid_reps: int = 50,
    bayes: dict[str, int] | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
) -> pd.DataFrame:
    """Run the Monte Carlo grid: one task per (part, chunk of replicates).

    ``scheduler``: ``"synchronous"`` runs the tasks one after another in this process; ``None`` starts a
    local Dask cluster (:func:`cluster`), as does ``"local"``; any other value is the address of a running Dask scheduler.
    Each replicate is seeded by (seed, model, replicate), so every scheduler gives the same records.

    Returns the replicate records sorted by (model, estimator, delta, rep), so the frame does not
    depend on task scheduling.
    """
    from dask.distributed import as_completed

    from decrimkit.progress import track

    for p in parts:
        if p.n_reps < 1 or p.chunk < 1:
            raise SpecificationError(f"n_reps={p.n_reps!r} and chunk={p.chunk!r} must be positive integers.")
    tasks = []
    for p in parts:
        kwargs = {
            "seed": seed,
            "deltas": tuple(p.deltas),
            "estimators": tuple(p.estimators),
            "sdid_reps": sdid_reps,
            "bayes": bayes,
            "size": p.chunk * len(p.deltas),
        }
        for s in range(0, p.n_reps, p.chunk):
            tasks.append((p.design, tuple(range(s, min(s + p.chunk, p.n_reps))), kwargs))
    rows: list[dict[str, Any]] = []
    if scheduler == "synchronous":
        for t in track(tasks, description="power grid", total=len(tasks)):
            rows.extend(_run_chunk(*t))
    else:
        with cluster(scheduler, n_workers) as client:
            futures = [client.submit(_run_chunk, *t, pure=False) for t in tasks]
            for fut in track(as_completed(futures), description="power grid", total=len(futures)):
                rows.extend(fut.result())
    out = pd.DataFrame(rows)
    return out.sort_values(["model", "estimator", "delta", "rep"], kind="stable").reset_index(drop=True)


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE, coverage and power per (model, estimator, delta) over the replicates."""
    ok = records[np.isfinite(records["estimate"]) & np.isfinite(records["se"]) & (records["se"] > 0)]
    ok = ok.assign(
        err=ok["estimate"] - ok["delta"],
        reject=(ok["conf_low"] > 0) | (ok["conf_high"] < 0),
        cover=(ok["conf_low"] <= ok["delta"]) & (ok["delta"] <= ok["conf_high"]),
    )
    g = ok.groupby(["model", "estimator", "delta"], sort=True)
    n = g.size()
    cov, pw = g["cover"].mean(), g["reject"].mean()
    out = pd.DataFrame(
        {
            "reps_used": n,
            "bias": g["err"].mean(),
            "bias_mcse": g["err"].std(ddof=1) / np.sqrt(n),
            "rmse": np.sqrt(g["err"].apply(lambda e: float(np.mean(e**2)))),
            "mean_se": g["se"].mean(),
            "coverage": cov,
            "coverage_mcse": np.sqrt(cov * (1 - cov) / n),
            "power": pw,
            "power_mcse": np.sqrt(pw * (1 - pw) / n),
        }
    ).reset_index()
    if "converged" in ok.columns:  # Bayesian rows: share of fits passing the convergence gate
        conv = ok.assign(c=ok["converged"].astype("float64")).groupby(["model", "estimator", "delta"])["c"].mean()
        out = out.merge(conv.rename("share_converged").reset_index(), on=["model", "estimator", "delta"], how="left")
    tried = records.groupby(["model", "estimator", "delta"]).size().rename("reps_run").reset_index()
    return tried.merge(out, on=["model", "estimator", "delta"], how="left")


def _mde(delta: np.ndarray, power: np.ndarray, target: float = TARGET_POWER) -> float:
    hit = np.flatnonzero(power >= target)
    if hit.size == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0:  # rejects at the smallest effect: detectable at any size, or (delta 0) an invalid test
        return float(delta[0]) if delta[0] > 0 else float("nan")
    d0, d1, p0, p1 = delta[i - 1], delta[i], power[i - 1], power[i]
    return float(d0 + (target - p0) * (d1 - d0) / (p1 - p0)) if p1 > p0 else float(d1)


def mde_table(summary: pd.DataFrame, designs: Sequence[PowerDesign]) -> pd.DataFrame:
    """Minimum detectable effect per (model, estimator) at 80% power, with size and coverage at the MDE grid."""
    adopters = {d.model: len(d.cohorts) for d in designs}
    rows = []
    for (m, e), s in summary.groupby(["model", "estimator"], sort=True):
        s = s.sort_values("delta")
        d, p = s["delta"].to_numpy(dtype=float), s["power"].to_numpy(dtype=float)
        mde = _mde(d, p)
        size = float(p[d == 0][0]) if (d == 0).any() else float("nan")
        rows.append(
            {
                "model": m,
                "estimator": e,
                "adopters": adopters.get(m, 0),
                "reps": int(s["reps_run"].max()),
                "size": size,
                "mean_coverage": float(s["coverage"].mean()),
                "mean_abs_bias": float(np.abs(s["bias"]).mean()),
                "mde_log": mde,
                "mde_pct": float(np.expm1(mde) * 100) if np.isfinite(mde) else float("nan"),
                "max_delta": float(d.max()),
                "note": _mde_note(size, int(s["reps_run"].max()), len(d)),
            }
        )
    return pd.DataFrame(rows)


def _mde_note(size: float, reps: int, n_grid: int) -> str:
    """Why an MDE should be read with care (empty when it can be read as it stands)."""
    notes = []
    if np.isfinite(size) and size > SIZE_TOLERANCE:
        notes.append(f"size {size:.2f} > {SIZE_TOLERANCE}: the test over-rejects, MDE not size-adjusted")
    if reps < 10 or n_grid < 4:
        notes.append(f"{reps} replicates on a {n_grid}-point grid: indicative only")
    return "; ".join(notes)
