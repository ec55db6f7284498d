"""The result of :func:`decrimkit.estimators.iv.leniency`: LATE, relative effect and design diagnostics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.results import Effect, Spec, Summarised, p_clause

__all__ = ["LeniencyResult"]


@dataclass(frozen=True, repr=False)
class LeniencyResult(Summarised):
    """Examiner-design IV estimates with their diagnostics.

    ``estimate``/``se`` are the 2SLS LATE of the decision on the outcome (absolute scale).
    ``effects`` holds every headline term (labels below), ``relative`` the LATE divided by the complier
    mean under the non-lenient decision. Frames: ``balance`` (+ ``balance_joint`` = (F, p, df1, df2)),
    ``monotonicity``, ``compliers``, ``bins`` (first-stage figure data).

    Effect labels: ``first_stage`` (decision on leniency), ``reduced_form`` (outcome on leniency),
    ``ols`` (outcome on decision, for comparison), ``late`` (2SLS), ``complier_mean_untreated``
    (E[Y(0) | complier]), ``relative_effect`` (late / complier_mean_untreated).
    """

    outcome: str
    decision: str
    effects: Effect
    first_stage_f: float
    effective_f: float
    balance: pd.DataFrame
    balance_joint: tuple[float, float, int, int]
    monotonicity: pd.DataFrame
    compliers: pd.DataFrame
    complier_share: float
    bins: pd.DataFrame
    assignee_leniency: np.ndarray
    n_cases: int
    n_assignees: int
    n_strata: int
    spec: Spec
    title: str = "Examiner-design IV (leave-out leniency, 2SLS with strata fixed effects)"

    @property
    def estimate(self) -> float:
        """The 2SLS LATE of the decision on the outcome."""
        return self.effects["late"]

    @property
    def se(self) -> float:
        return self._se("late")

    def _se(self, label: str) -> float:
        return float(self.effects.se[list(self.effects.label).index(label)])

    @property
    def relative(self) -> float:
        """LATE relative to the complier mean under the non-lenient decision (e.g. -0.53 = -53%)."""
        return self.effects["relative_effect"]

    @property
    def relative_se(self) -> float:
        return self._se("relative_effect")

    @property
    def complier_mean_untreated(self) -> float:
        return self.effects["complier_mean_untreated"]

    @property
    def first_stage(self) -> float:
        return self.effects["first_stage"]

    @property
    def monotonicity_ok(self) -> bool:
        """True when the first stage and the reverse-sample first stage are positive in every subgroup."""
        return bool(self.monotonicity["positive"].all()) if len(self.monotonicity) else True

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        return self.effects.tidy(alpha)

    def summary(self) -> str:
        lines = [
            super().summary(),
            "",
            *self.effects._inference_lines(),
            f"cases {self.n_cases}, assignees {self.n_assignees}, strata {self.n_strata}",
            f"first-stage F {self.first_stage_f:.1f} (homoskedastic); effective F {self.effective_f:.1f} "
            "(Montiel Olea-Pflueger; for one instrument equal to the clustered Wald F)",
            f"complier share (Dahl et al.): {self.complier_share:.3f}",
        ]
        f, p, d1, d2 = self.balance_joint
        if d1:
            lines.append(f"balance: joint F({d1}, {d2}) = {f:.2f}, {p_clause(p)}")
        if len(self.monotonicity):
            lines.append(
                f"monotonicity: first stage positive in every subgroup (incl. reverse sample): "
                f"{'yes' if self.monotonicity_ok else 'NO'}"
            )
        return "\n".join(lines)

    def plot_data(self, kind: str = "first_stage") -> pd.DataFrame:
        """The frame a figure shows: kind 'first_stage', 'relative', 'balance' or 'monotonicity'."""
        from decrimkit.options import check_option

        check_option("kind", kind, ("first_stage", "relative", "balance", "monotonicity"))
        if kind == "first_stage":
            return self.bins.copy()
        if kind == "relative":
            row = self.tidy().set_index("term").loc["relative_effect"]
            return pd.DataFrame(
                {
                    "outcome": [self.outcome],
                    "estimate": [row["estimate"]],
                    "conf_low": [row["conf_low"]],
                    "conf_high": [row["conf_high"]],
                }
            )
        if kind == "balance":
            return self.balance.copy()
        return self.monotonicity.copy()

    def plot(self, kind: str = "first_stage", ax: Any = None) -> Any:
        """Figure for ``kind``: 'first_stage' (histogram + decision rate by leniency), 'relative',
        'balance' (coefficients of covariates on leniency) or 'monotonicity' (subgroup first stages)."""
        from decrimkit.plotting import iv as ivplot

        data = self.plot_data(kind)
        if kind == "first_stage":
            return ivplot.first_stage_plot(data, ax=ax, decision=self.decision)
        if kind == "relative":
            return ivplot.relative_effect_plot(data, ax=ax)
        if kind == "balance":
            return ivplot.balance_plot(data, ax=ax)
        return ivplot.monotonicity_plot(data, ax=ax)
