"""Result classes of the synthetic-control family.

:class:`SynthResult` holds one effect estimate with the donor weights, the treated and synthetic
paths and the gap between them; :class:`SDIDResult` adds ``unit_weights`` and ``time_weights``.
Placebo and conformal output live in :class:`PlaceboResult` and :class:`ConformalResult`.
Results whose methods run an estimator's inference sit beside that estimator, so this module imports
none: ``SCMResult`` (``placebo``) in :mod:`.scm`, ``AugmentedResult`` (``conformal``) in :mod:`.augmented`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from decrimkit.results import Spec, Summarised, check_alpha, tidy_frame

__all__ = ["SynthResult", "SDIDResult", "PlaceboResult", "ConformalResult"]  # SCMResult, AugmentedResult: beside their estimators

PLOT_KINDS = ("trajectory", "gap", "weights", "placebo")


def _series(values: Any, index: Any, name: str, index_name: str) -> pd.Series:
    s = pd.Series(np.array(values, dtype="float64", copy=True), index=pd.Index(list(index), name=index_name), name=name)
    return s


@dataclass(frozen=True, repr=False)
class SynthResult(Summarised):
    """A synthetic-control-type effect estimate for one treated unit (or one treated block).

    Attributes
    ----------
    estimate : float
        Average post-period effect on the treated (the mean post-period gap for SCM-type estimators).
    se : float
        Standard error (NaN when the estimator has none; see ``se_method``).
    weights : Series
        Donor (unit) weights indexed by unit label.
    gap : Series
        Treated minus synthetic outcome by period.
    observed, synthetic : Series
        Treated and synthetic outcome paths by period.
    start : period label of the first treated period.
    spec : Spec
    """

    estimate: float
    se: float
    weights: pd.Series
    gap: pd.Series
    observed: pd.Series
    synthetic: pd.Series
    start: Any
    spec: Spec
    se_method: str | None = None
    df: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    title: str = "Synthetic control"

    # ------------------------------------------------------------------ inference
    def _q(self, alpha: float) -> float:
        if self.df is not None:
            return float(stats.t.ppf(1 - alpha / 2, self.df))
        return float(stats.norm.ppf(1 - alpha / 2))

    @property
    def p_value(self) -> float:
        if not np.isfinite(self.se) or self.se <= 0:
            return float("nan")
        z = abs(self.estimate / self.se)
        return float(2 * (stats.t.sf(z, self.df) if self.df is not None else stats.norm.sf(z)))

    def inference_method(self) -> str:
        """The method behind ``p_value`` and the interval (or why there are none)."""
        if not np.isfinite(self.se) or self.se <= 0:
            return "none: this estimator has no standard error (placebo() gives a rank p-value)"
        dist = f"t({self.df:g})" if self.df is not None else "normal"
        return f"{dist} with the {self.se_method or 'analytic'} standard error"

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row, term ``ATT``: the interval ``estimate +- q * se`` (NaN without a standard error) and its
        p-value; extra columns ``statistic``, ``estimator`` and ``se_method``."""
        half = self._q(alpha) * self.se
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = self.estimate / self.se if self.se > 0 else np.nan
        variant = self.spec.options.get("estimator")  # synth.sdid's sdid / sc / did
        return tidy_frame(
            ["ATT"], self.estimate, self.se, self.estimate - half, self.estimate + half, self.p_value,
            self.inference_method(), statistic=[stat],
            estimator=[f"{self.spec.estimator}[{variant}]" if variant else self.spec.estimator],
            se_method=[self.se_method or "none"],
        )

    def summary(self) -> str:
        text = super().summary() + f"\n\np-value and interval: {self.inference_method()}"
        top = self.weights[self.weights > 0].sort_values(ascending=False).head(10)
        lines = [f"  {k}: {v:.4f}" for k, v in top.items()]
        return text + "\n\nlargest donor weights:\n" + "\n".join(lines)

    # ------------------------------------------------------------------ plots
    def plot_data(self, kind: str = "trajectory") -> pd.DataFrame:
        """The frame a figure shows: ``trajectory`` / ``gap`` by period, ``weights`` by donor."""
        if kind == "trajectory":
            return pd.DataFrame(
                {
                    "time": self.observed.index,
                    "treated": self.observed.to_numpy(),
                    "synthetic": self.synthetic.to_numpy(),
                }
            )
        if kind == "gap":
            return pd.DataFrame({"time": self.gap.index, "gap": self.gap.to_numpy()})
        if kind == "weights":
            w = self.weights.sort_values(ascending=False)
            return pd.DataFrame({"unit": w.index, "weight": w.to_numpy()})
        if kind == "placebo":
            raise TypeError(f"kind='placebo' needs placebo output; {type(self).__name__} has no placebo().")
        from decrimkit.options import check_option

        check_option("kind", kind, PLOT_KINDS)
        raise AssertionError("unreachable")

    def plot(self, kind: str = "trajectory", ax: Any = None) -> Any:
        """Draw ``trajectory``, ``gap``, ``weights`` or (for SCM) ``placebo``; returns the Figure."""
        from decrimkit.plotting import synth as sp

        if kind == "placebo":
            placebo = getattr(self, "placebo", None)
            if placebo is None:
                raise TypeError(f"{type(self).__name__} has no placebo(); use synth.scm for placebo plots.")
            return placebo("space").plot(ax=ax)
        data = self.plot_data(kind)
        start = self.start
        if kind == "trajectory":
            return sp.trajectory_plot(data, start=start, ax=ax, title=self.title)
        if kind == "gap":
            return sp.gap_plot(data, start=start, ax=ax, title=self.title)
        return sp.weights_plot(data, ax=ax, title=self.title)


@dataclass(frozen=True, repr=False)
class SDIDResult(SynthResult):
    """Synthetic difference-in-differences (or its SC / DID special cases) with unit and time weights."""

    time_weights: pd.Series = field(default_factory=lambda: pd.Series(dtype="float64"))
    title: str = "Synthetic difference-in-differences"

    @property
    def unit_weights(self) -> pd.Series:
        """omega: control-unit weights (sum to one) indexed by unit."""
        return self.weights.copy()

    def plot_data(self, kind: str = "trajectory") -> pd.DataFrame:
        if kind == "weights":
            w = self.weights.sort_values(ascending=False)
            return pd.DataFrame({"unit": w.index, "weight": w.to_numpy()})
        return super().plot_data(kind)


@dataclass(frozen=True, repr=False)
class PlaceboResult(Summarised):
    """Placebo runs: in space (each donor as if treated) or in time (fake start dates).

    ``table``: one row per run with pre- and post-period RMSPE, their ratio and whether the run is kept;
    ``gaps``: periods x runs gap paths (the first column is the actual treated unit / actual start);
    ``p_value``: share of kept runs whose post/pre RMSPE ratio is at least the treated unit's.
    """

    kind: str
    table: pd.DataFrame
    gaps: pd.DataFrame
    p_value: float
    treated: Any
    start: Any
    spec: Spec
    title: str = "Synthetic control placebo runs"

    @property
    def estimate(self) -> float:
        """The actual run's mean post-period gap (the estimate the placebo runs are compared with)."""
        return float(self.table["mean_post_gap"].iloc[0])

    @property
    def se(self) -> float:
        """NaN: placebo runs give a rank p-value, not a standard error."""
        return float("nan")

    def inference_method(self) -> str:
        kept = int(self.table["included"].sum())
        return (f"placebo-in-{self.kind} rank p-value (post/pre RMSPE ratio, {kept} of {len(self.table)} runs); "
                "no interval")

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per run (the actual one first): its mean post-period gap; the rank p-value on the actual
        run only; no standard error or interval (a rank test is not inverted here). The run table's own
        columns follow (``mean_post_gap`` is ``estimate`` again). ``alpha`` does not change a rank p-value."""
        t = self.table
        n = len(t)
        p = np.r_[self.p_value, np.full(n - 1, np.nan)]
        inference = [self.inference_method()] + ["placebo run (its gap is part of the reference distribution)"] * (n - 1)
        out = tidy_frame([str(r) for r in t["run"]], t["mean_post_gap"].to_numpy(dtype="float64"), np.nan, np.nan,
                         np.nan, p, inference)
        for col in t.columns:
            out[col] = t[col].to_numpy()
        return out

    def _display(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> str:
        text = super().summary() + f"\n\nrank p-value (post/pre RMSPE ratio): {self.p_value:.4g}"
        text += f"\ninference: {self.inference_method()}"
        rule = self.spec.options.get("v_rule")
        if rule is not None:
            text += "\nV in the placebo runs: " + (
                "re-optimised for each placebo" if rule == "refit" else "fixed at the treated unit's fit"
            )
        return text

    def plot_data(self, kind: str = "placebo") -> pd.DataFrame:
        long = self.gaps.reset_index().melt(id_vars=self.gaps.index.name or "index", var_name="run", value_name="gap")
        long = long.rename(columns={self.gaps.index.name or "index": "time"})
        keep = dict(zip(self.table["run"], self.table["included"]))
        long["included"] = long["run"].map(keep).astype(bool)
        long["actual"] = long["run"] == self.table["run"].iloc[0]
        return long

    def plot(self, kind: str = "placebo", ax: Any = None) -> Any:
        from decrimkit.plotting import synth as sp

        return sp.placebo_plot(self.plot_data(), start=self.start, ax=ax, title=self.title)


@dataclass(frozen=True, repr=False)
class ConformalResult(Summarised):
    """Chernozhukov-Wuthrich-Zhu conformal inference per post-period (``table``: time, estimate,
    p_value of no effect, conf_low, conf_high) and a joint p-value of no effect in every post-period."""

    table: pd.DataFrame
    p_value_joint: float
    alpha: float
    spec: Spec
    title: str = "Conformal inference (Chernozhukov, Wuthrich and Zhu)"

    grid: pd.DataFrame | None = None  # time, null, p_value: every null tried per post-period

    @property
    def estimate(self) -> np.ndarray:
        """The gap in each post-period."""
        return self.table["estimate"].to_numpy(dtype="float64")

    @property
    def se(self) -> np.ndarray:
        """NaN: conformal inference gives p-values and inverted intervals, no standard errors."""
        return np.full(len(self.table), np.nan)

    def _bounds(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        if np.isclose(alpha, self.alpha, rtol=0, atol=1e-12) or self.grid is None:
            check_alpha(alpha, self.alpha, "augmented(...).conformal(alpha=...)")
            return self.table["conf_low"].to_numpy(dtype="float64"), self.table["conf_high"].to_numpy(dtype="float64")
        if not 0 < alpha < 1:
            check_alpha(alpha, self.alpha, "")
        lo, hi = [], []
        for t in self.table["time"]:  # the grid values not rejected at alpha, as at the level of the fit
            g = self.grid[self.grid["time"] == t]
            ok = g["null"].to_numpy()[g["p_value"].to_numpy() >= alpha]
            lo.append(ok.min() if len(ok) else np.nan)
            hi.append(ok.max() if len(ok) else np.nan)
        return np.array(lo, dtype="float64"), np.array(hi, dtype="float64")

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per post-period (term = period): the gap, no standard error, the conformal interval (grid
        values not rejected at ``alpha``) and the conformal p-value of no effect; extra column ``time``."""
        lo, hi = self._bounds(alpha)
        return tidy_frame(list(self.table["time"]), self.estimate, np.nan, lo, hi,
                          self.table["p_value"].to_numpy(dtype="float64"),
                          self.inference_method(), time=list(self.table["time"]))

    @staticmethod
    def inference_method() -> str:
        return "conformal (Chernozhukov-Wuthrich-Zhu), moving-block permutations; interval by test inversion on a grid"

    def _display(self) -> pd.DataFrame:
        return self.table.copy()

    def plot(self, kind: str = "coef", ax: Any = None, alpha: float | None = None) -> Any:
        """Each post-period's gap with its conformal interval (returns the Figure)."""
        from decrimkit.plotting import coef_plot

        return coef_plot(self.tidy(self.alpha if alpha is None else alpha), x="time", ax=ax, title=self.title)

    def summary(self) -> str:
        return super().summary() + (f"\n\njoint p-value, no effect in any post-period: {self.p_value_joint:.4g}"
                                    f"\ninference: {self.inference_method()} ({100 * (1 - self.alpha):g}% intervals "
                                    "at the level of the fit; another level reads the same grid)")
