"""Goodman-Bacon decomposition of the two-way fixed effects DiD coefficient.

Estimand
--------
With staggered adoption, the TWFE coefficient on ``D_it = 1{t >= g_i}`` (unit and period effects, no
covariates, no weights, balanced panel) equals a weighted average of every 2x2 DiD between timing
groups (Goodman-Bacon 2021, Theorem 1):

- *Treated vs Untreated*: a timing group against the never-treated, all periods;
- *Earlier vs Later Treated*: an earlier group (treated) against a later group (control) before the
  later group adopts;
- *Later vs Earlier Treated*: a later group (treated) against an earlier, already-treated group
  (control) after the earlier group adopts. These "forbidden" comparisons bias TWFE when effects
  change over time;
- *Later vs Always Treated*: a group against units treated in every period (if any).

Weights are proportional to group sizes and the variance of treatment in each 2x2 subsample
(eq. 10 of the paper); they sum to one and the weighted sum of the 2x2 estimates reproduces the TWFE
coefficient exactly (the result records both).

References
----------
Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing. *Journal of
Econometrics* 225(2), 254-277.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import DesignError
from decrimkit.estimators.did._reg_design import no_groups, require_variation
from decrimkit.estimators.did._twfe import twfe
from decrimkit.panel import Panel
from decrimkit.results import Spec, Summarised, tidy_frame

__all__ = ["BaconResult", "bacon"]

_TYPES = ("Treated vs Untreated", "Earlier vs Later Treated", "Later vs Earlier Treated", "Later vs Always Treated")


@dataclass(frozen=True, repr=False)
class BaconResult(Summarised):
    """Every 2x2 comparison (``comparisons``: treated, control, type, weight, estimate) and the TWFE fit.

    ``estimate`` is the weighted sum of the 2x2 estimates, ``twfe_estimate`` the regression coefficient
    (they agree to floating-point error); ``se`` is the TWFE coefficient's CR1 standard error.
    """

    comparisons: pd.DataFrame
    estimate: float
    twfe_estimate: float
    se: float
    df: float | None
    spec: Spec
    title: str = "Goodman-Bacon decomposition of TWFE"

    def _method(self) -> str:
        return f"t({self.df:g}), CR1 standard error" if self.df is not None else "normal, CR1 standard error"

    def _q(self, alpha: float) -> float:
        from scipy import stats

        return float(stats.t.ppf(1 - alpha / 2, self.df) if self.df is not None else stats.norm.ppf(1 - alpha / 2))

    def by_type(self) -> pd.DataFrame:
        """Total weight and weighted average estimate of each comparison type."""
        c = self.comparisons
        rows = []
        for kind in [t for t in _TYPES if (c["type"] == t).any()]:
            part = c[c["type"] == kind]
            w = part["weight"].sum()
            rows.append(
                {
                    "type": kind,
                    "weight": w,
                    "estimate": float((part["weight"] * part["estimate"]).sum() / w),
                    "n_comparisons": len(part),
                }
            )
        return pd.DataFrame(rows)

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """The TWFE coefficient (term ``twfe``; CR1 interval and p-value, t with G-1 df) then one row per 2x2
        comparison (its estimate, no standard error, interval or p-value); extra columns ``type``,
        ``treated``, ``control``, ``weight`` (the comparisons' own columns)."""
        from scipy import stats

        c = self.comparisons
        half = self._q(alpha) * self.se
        z = abs(self.twfe_estimate / self.se) if self.se > 0 else np.nan
        p = 2 * (stats.t.sf(z, self.df) if self.df is not None else stats.norm.sf(z))
        method = self._method()
        n = len(c)
        terms = ["twfe", *(f"{t}: {a} vs {b}" for t, a, b in zip(c["type"], c["treated"], c["control"]))]
        out = tidy_frame(terms, np.r_[self.twfe_estimate, c["estimate"].to_numpy(dtype="float64")],
                         np.r_[self.se, np.full(n, np.nan)], np.r_[self.twfe_estimate - half, np.full(n, np.nan)],
                         np.r_[self.twfe_estimate + half, np.full(n, np.nan)], np.r_[p, np.full(n, np.nan)],
                         [method] + ["none (a 2x2 component of the decomposition)"] * n)
        for col in c.columns.drop("estimate"):
            out[col] = [None, *c[col].tolist()]
        return out

    def summary(self) -> str:
        table = self.by_type().to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return "\n".join(
            self._header()
            + [
                "",
                table,
                "",
                f"weighted sum of 2x2 estimates: {self.estimate:.8g}",
                f"TWFE coefficient:              {self.twfe_estimate:.8g}",
                f"p-value and interval of the TWFE coefficient (tidy): {self._method()}; none for the 2x2 components",
            ]
        )

    def plot_data(self, kind: str = "scatter") -> pd.DataFrame:
        return self.comparisons.copy()

    def plot(self, kind: str = "scatter", ax: Any = None) -> Any:
        from decrimkit.plotting.did import bacon_plot

        return bacon_plot(self.plot_data(kind), ax=ax, overall=self.twfe_estimate, title=self.title)


def bacon(panel: Panel) -> BaconResult:
    """Decompose the TWFE DiD coefficient into all 2x2 comparisons (Goodman-Bacon 2021).

    Parameters
    ----------
    panel : Panel
        Balanced, one row per unit and period, treatment absorbing (cohorts). Unweighted, no covariates.

    Returns
    -------
    BaconResult
        ``comparisons`` (treated and control cohort labels, type, weight, estimate), ``by_type()``,
        ``estimate`` (weighted sum), ``twfe_estimate``, ``plot()``.

    Raises
    ------
    DesignError
        Unbalanced panel, no treated units, or a single timing group without never-treated units.

    Notes
    -----
    Estimand: the TWFE coefficient on ``D_it = 1{t >= g_i}`` (balanced panel, no covariates or weights),
    written as a weighted average of every 2x2 DiD between timing groups (Goodman-Bacon 2021, Theorem 1).
    The weights sum to one and reproduce the TWFE coefficient exactly. The decomposition is an identity and
    needs no assumption; reading the 2x2 terms as effects needs parallel trends, and the "Later vs Earlier
    Treated" terms are biased when effects change over time. See the module docstring for the comparison types.

    References
    ----------
    Goodman-Bacon, A. (2021). Difference-in-differences with variation in treatment timing. *Journal of
    Econometrics* 225(2), 254-277.

    Examples
    --------
    >>> from decrimkit import Panel
    >>> from decrimkit.datasets import load_dataset
    >>> from decrimkit.estimators import did
    >>> df = load_dataset("castle_doctrine")
    >>> panel = Panel.from_frame(df, unit="state", time="year", outcome="l_homicide", cohort="effyear")
    >>> res = did.bacon(panel)
    >>> float(round(res.comparisons["weight"].sum(), 12))
    1.0
    """
    no_groups(panel, "bacon")
    panel.require_balanced("bacon")
    require_variation(panel, "bacon")
    wide = panel.to_wide("y").to_numpy()  # (units, periods)
    g = panel.unit_cohort.to_numpy()
    n_t = panel.n_periods
    groups = np.unique(g)  # finite cohorts then inf (never treated)
    n_units = len(g)
    rows = []
    share = {c: float(np.mean(g == c)) for c in groups}
    dbar = {c: (0.0 if not np.isfinite(c) else (n_t - c) / n_t) for c in groups}
    means = {c: wide[g == c].mean(axis=0) for c in groups}
    label = {
        c: (panel.time_label(c) if np.isfinite(c) and c > 0 else ("never" if not np.isfinite(c) else "always"))
        for c in groups
    }

    def did2(treat: float, ctrl: float, start: int, stop: int, post_from: int) -> float:
        yt, yc = means[treat][start:stop], means[ctrl][start:stop]
        k = post_from - start
        return float((yt[k:].mean() - yt[:k].mean()) - (yc[k:].mean() - yc[:k].mean()))

    timing = [c for c in groups if np.isfinite(c) and c > 0]
    always = [c for c in groups if np.isfinite(c) and c == 0]
    never = [c for c in groups if not np.isfinite(c)]
    for k in timing:
        for u in never:
            nk, nu = share[k], share[u]
            nku = nk / (nk + nu)
            w = (nk + nu) ** 2 * nku * (1 - nku) * dbar[k] * (1 - dbar[k])
            rows.append((k, u, _TYPES[0], w, did2(k, u, 0, n_t, int(k))))
    for k in timing:
        for l_ in (c for c in timing if c > k):
            nk, nl = share[k], share[l_]
            nkl = nk / (nk + nl)
            dk, dl = dbar[k], dbar[l_]
            # earlier k treated, later l as control, before l adopts
            w = ((nk + nl) * (1 - dl)) ** 2 * nkl * (1 - nkl) * (dk - dl) / (1 - dl) * (1 - dk) / (1 - dl)
            rows.append((k, l_, _TYPES[1], w, did2(k, l_, 0, int(l_), int(k))))
            # later l treated, earlier k as control, after k adopts
            w = ((nk + nl) * dk) ** 2 * nkl * (1 - nkl) * (dl / dk) * (dk - dl) / dk
            rows.append((l_, k, _TYPES[2], w, did2(l_, k, int(k), n_t, int(l_))))
    for a in always:  # treated in every period: a control after nothing changes for it (D-bar = 1)
        for l_ in timing:
            na, nl = share[a], share[l_]
            nal = nl / (na + nl)
            dl = dbar[l_]
            w = (na + nl) ** 2 * nal * (1 - nal) * dl * (1 - dl)
            rows.append((l_, a, _TYPES[3], w, did2(l_, a, 0, n_t, int(l_))))
    if not rows:
        raise DesignError("bacon: there is no 2x2 comparison (one timing group and no never-treated units).")
    comp = pd.DataFrame(rows, columns=["treated_g", "control_g", "type", "weight", "estimate"])
    comp["weight"] = comp["weight"] / comp["weight"].sum()
    comp.insert(0, "treated", [label[c] for c in comp["treated_g"]])
    comp.insert(1, "control", [label[c] for c in comp["control_g"]])
    comp = comp.drop(columns=["treated_g", "control_g"])
    fit = twfe(panel)
    total = float((comp["weight"] * comp["estimate"]).sum())
    spec = Spec(
        estimator="did.bacon",
        options={},
        n_units=n_units,
        n_periods=n_t,
        n_obs=panel.n_obs,
        excluded=panel.excluded,
        notes=(f"{len(comp)} 2x2 comparisons",),
    )
    return BaconResult(
        comparisons=comp, estimate=total, twfe_estimate=fit.att, se=float(fit.se[0]), df=fit.df, spec=spec
    )
