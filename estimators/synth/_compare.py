"""Run several synthetic-control-family estimators on the same data: one tidy table, one figure.

Published evaluations of a single-jurisdiction policy often disagree because of method choices;
``compare`` makes the choice visible by fitting each method to the same panel, treated unit and
start, and returning their estimates side by side with the gap paths drawn together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.panel import Panel
from decrimkit.progress import track
from decrimkit.results import TIDY_COLUMNS, Spec, Summarised

from .results import SynthResult

__all__ = ["compare", "Comparison"]

METHODS = ("scm", "augmented", "sdid", "sc", "did", "mc_nnm")


@dataclass(frozen=True, repr=False)
class Comparison(Summarised):
    """Results of several estimators. ``results``: name -> result; ``tidy()``: one row per method."""

    results: dict[str, SynthResult]
    spec: Spec
    title: str = "Synthetic-control family comparison"

    @property
    def estimate(self) -> np.ndarray:
        """Each method's estimate, in the order of ``results``."""
        return np.array([r.estimate for r in self.results.values()], dtype="float64")

    @property
    def se(self) -> np.ndarray:
        """Each method's standard error (NaN where the method has none)."""
        return np.array([r.se for r in self.results.values()], dtype="float64")

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per method (term = method name), each with its own method's interval and p-value (named in
        ``inference``); extra columns ``method``, ``se_method``, ``estimator``."""
        out = pd.concat([r.tidy(alpha) for r in self.results.values()], ignore_index=True)
        out["term"] = list(self.results)
        out["method"] = list(self.results)
        return out[[*TIDY_COLUMNS, "method", "se_method", "estimator"]]

    def summary(self) -> str:
        return super().summary() + "\n\neach row's p-value and interval come from the method named in its inference column"

    def plot_data(self, kind: str = "gap") -> pd.DataFrame:
        parts = [
            pd.DataFrame({"time": r.gap.index, "gap": r.gap.to_numpy(), "method": name})
            for name, r in self.results.items()
        ]
        return pd.concat(parts, ignore_index=True)

    def plot(self, kind: str = "gap", ax: Any = None) -> Any:
        from decrimkit.plotting import synth as sp

        start = next(iter(self.results.values())).start
        return sp.compare_plot(self.plot_data(kind), start=start, ax=ax, title=self.title)


def compare(
    panel: Panel,
    *,
    treated: Any,
    start: Any,
    methods: Sequence[str] = ("scm", "augmented", "sdid", "sc", "did"),
    seed: int = 0,
    n_reps: int = 50,
) -> Comparison:
    """Fit each of ``methods`` to the same design.

    Parameters
    ----------
    panel : Panel
        The treated unit must be the panel's only treated unit for the sdid-family and mc_nnm methods
        (they read treatment from the panel); scm and augmented use ``treated`` and ``start``.
    methods : names among "scm" (equal-start nested V on all pre-period outcomes), "augmented"
        (ridge ASCM), "sdid", "sc", "did" (synthdid machinery, placebo SEs) and "mc_nnm".
    seed, n_reps : seed and replications of the placebo standard errors.

    Returns
    -------
    Comparison
        ``tidy()`` one row per method; ``plot()`` the gap paths together.

    Raises
    ------
    SpecificationError
        An empty ``methods`` or a name outside ``scm, augmented, sdid, sc, did, mc_nnm``.
    DesignError
        ``sdid``, ``sc``, ``did`` or ``mc_nnm`` requested on a panel whose treatment is not ``treated`` alone
        from ``start`` (they read treatment from the panel); and any error of the methods themselves.

    Notes
    -----
    Each method keeps its own estimand and assumptions (see :func:`scm`, :func:`augmented`, :func:`sdid`,
    :func:`mc_nnm`); all target the effect on the treated unit(s) after ``start``. Differences between rows
    show how much the conclusion depends on the method choice.

    References
    ----------
    Arkhangelsky, D., Athey, S., Hirshberg, D. A., Imbens, G. W. and Wager, S. (2021). Synthetic
    difference-in-differences. *AER* 111(12), 4088-4118 (Table 1 compares these methods on Prop 99).

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import synth
    >>> df = load_dataset("prop99", file="california_prop99_long.csv")
    >>> panel = Panel.from_frame(df, unit="State", time="Year", outcome="PacksPerCapita", treated="treated")
    >>> comp = synth.compare(panel, treated="California", start=1989, methods=["did", "sdid", "augmented"])
    >>> table = comp.tidy()  # one row per method: estimate, se, conf_low, conf_high
    """
    from decrimkit.estimators import synth

    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise SpecificationError(f"methods {bad or methods} not allowed; choose from {', '.join(METHODS)}.")
    treated_units = list(panel.treated_units)
    if any(m in ("sdid", "sc", "did", "mc_nnm") for m in methods):
        if treated_units != [treated] or panel.times[int(panel.unit_cohort[treated])] != start:
            raise DesignError(
                f"sdid/sc/did/mc_nnm read treatment from the panel, whose treated units are {treated_units[:5]}; "
                f"build the panel so that only {treated!r} is treated from {start!r}, or drop those methods."
            )
    out: dict[str, SynthResult] = {}
    for m in track(methods, "synth.compare"):
        if m == "scm":
            out[m] = synth.scm(panel, treated=treated, start=start)
        elif m == "augmented":
            out[m] = synth.augmented(panel, treated=treated, start=start)
        elif m in ("sdid", "sc", "did"):
            out[m] = synth.sdid(panel, estimator=m, se_method="placebo", n_reps=n_reps, seed=seed)
        else:
            out[m] = synth.mc_nnm(panel, n_reps=n_reps, seed=seed)
    spec = Spec(
        "synth.compare",
        options={"treated": treated, "start": start, "methods": list(methods)},
        seed=seed,
        n_units=panel.n_units,
        n_periods=panel.n_periods,
        n_obs=panel.n_obs,
        excluded=tuple(panel.excluded),
    )
    return Comparison(results=out, spec=spec)
