"""The placebo designs of the power grid: each policy model's adoption years placed on real untreated
state series, with an effect injected on the log-rate and count scales.

Shared by the frequentist grid (:mod:`.power`) and the Bayesian engine (:mod:`.bayes_power`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

__all__ = ["PowerDesign", "injected_frame", "placebo_draw", "power_designs"]


class PowerDesign(NamedTuple):
    """One model's placebo design: its cohort years and the real untreated series.

    ``y``: (n_pool, n_years) log overdose rates of the pool states; ``cohorts``: one year per adopter.
    """

    model: str
    model_index: int
    cohorts: tuple[int, ...]
    states: tuple[str, ...]
    years: tuple[int, ...]
    y: np.ndarray
    deaths: np.ndarray
    population: np.ndarray


def power_designs(
    cohorts: pd.DataFrame, rates: pd.DataFrame, pool: Sequence[str], models: Sequence[str]
) -> tuple[list[PowerDesign], pd.DataFrame]:
    """The placebo designs, one per model, and a table of adoptions left out (and why).

    Adoptions whose cohort year leaves fewer than two pre-periods in the panel (before 2017) or falls
    after its last year cannot be placed and are listed in the second frame.
    """
    years = tuple(sorted(int(y) for y in rates["year"].unique()))

    def wide(col: str) -> np.ndarray:
        return rates.pivot(index="state", columns="year", values=col).loc[list(pool), list(years)].to_numpy("float64")

    y, deaths, population = wide("log_rate"), wide("deaths"), wide("population")
    designs, dropped = [], []
    for i, m in enumerate(models):
        c = cohorts[cohorts["model"].astype("string") == m]
        ok = c["cohort"].between(years[0] + 2, years[-1]).to_numpy(dtype=bool)
        for r in c[~ok].itertuples(index=False):
            dropped.append(
                {
                    "model": m,
                    "jurisdiction": r.jurisdiction,
                    "cohort": int(r.cohort),
                    "reason": f"cohort outside {years[0] + 2}-{years[-1]} (needs two pre-years)",
                }
            )
        if ok.any():
            designs.append(
                PowerDesign(m, i, tuple(int(v) for v in c.loc[ok, "cohort"]), tuple(pool), years, y, deaths, population)
            )
    return designs, pd.DataFrame(dropped, columns=["model", "jurisdiction", "cohort", "reason"])


def injected_frame(design: PowerDesign, treated: np.ndarray, delta: float) -> pd.DataFrame:
    n, t = design.y.shape
    years = np.asarray(design.years)
    cohort = np.zeros(n, dtype="int64")
    cohort[treated] = design.cohorts
    post = (cohort[:, None] > 0) & (years[None, :] >= cohort[:, None])
    y = design.y + delta * post
    deaths = np.round(design.deaths * np.exp(delta * post))  # the same effect on the count scale
    return pd.DataFrame(
        {
            "state": np.repeat(np.asarray(design.states, dtype=object), t),
            "year": np.tile(years, n),
            "y": y.reshape(-1),
            "deaths": deaths.reshape(-1).astype("int64"),
            "population": design.population.reshape(-1),
            "cohort": np.repeat(cohort, t),
        }
    )


def placebo_draw(design: PowerDesign, rep: int, seed: int) -> tuple[np.ndarray, int]:
    """Replicate ``rep``'s placebo-treated pool indices and its estimator seed (scheduling-independent)."""
    rng = np.random.default_rng([seed, design.model_index, rep])
    treated = rng.choice(len(design.states), size=len(design.cohorts), replace=False)
    return treated, int(rng.integers(2**31 - 1))
