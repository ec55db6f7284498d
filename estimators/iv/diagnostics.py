"""Diagnostics of an examiner design: balance, monotonicity, complier characteristics, binned first stage.

Each function takes a :class:`~decrimkit.estimators.iv.design.LeniencyDesign` (and, for monotonicity,
subgroup codes) and returns a small DataFrame; none touches the caller's frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from decrimkit.estimators.iv.design import LeniencyDesign, demean, linear_cr1

__all__ = ["Balance", "balance_test", "monotonicity_check", "complier_characteristics", "first_stage_bins"]


class Balance(NamedTuple):
    """Balance of covariates on the instrument.

    table: one row per covariate plus the predicted-outcome index (term, estimate, se, statistic, p_value);
    joint_f, joint_p, joint_df: clustered Wald F of all covariates in a regression of leniency on them.
    """

    table: pd.DataFrame
    joint_f: float
    joint_p: float
    joint_df: tuple[int, int]


def _row(term: str, est: float, se: float) -> dict[str, float | str]:
    t = est / se if se > 0 else np.nan
    return {"term": term, "estimate": est, "se": se, "statistic": t, "p_value": float(2 * stats.norm.sf(abs(t)))}


def balance_test(design: LeniencyDesign) -> Balance:
    """Regress each covariate, and a predicted-outcome index, on leniency with strata fixed effects.

    The index is the fitted value of a regression of the outcome on all covariates (strata absorbed):
    one summary of how much the covariates predict the outcome, so that its correlation with leniency
    measures imbalance in outcome-relevant terms. The joint test regresses leniency on all covariates
    and reports the clustered Wald F (df p and G-1) of their coefficients being zero.
    """
    p = design.x.shape[1]
    if p == 0:
        return Balance(pd.DataFrame(columns=["term", "estimate", "se", "statistic", "p_value"]), np.nan, np.nan, (0, 0))
    s, n_s, cl, G = design.stratum, design.n_strata, design.cluster, design.n_clusters
    zt = demean(design.z, s, n_s)
    xt = demean(design.x, s, n_s)
    yt = demean(design.y, s, n_s)
    rows = []
    for k, name in enumerate(design.names):
        f = linear_cr1(xt[:, k], zt, cl, G, extra_df=n_s)
        rows.append(_row(name, float(f.beta[0]), float(f.se[0])))
    gamma = np.linalg.lstsq(xt, yt, rcond=None)[0]
    f = linear_cr1(xt @ gamma, zt, cl, G, extra_df=n_s)
    rows.append(_row("predicted outcome index", float(f.beta[0]), float(f.se[0])))
    joint = linear_cr1(zt, xt, cl, G, extra_df=n_s)
    wald = float(joint.beta @ np.linalg.solve(joint.cov, joint.beta)) / p
    df2 = design.n_clusters - 1
    return Balance(pd.DataFrame(rows), wald, float(stats.f.sf(wald, p, df2)), (p, df2))


def _subgroup_slope(d: np.ndarray, z: np.ndarray, strata: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    s_codes, s_lab = pd.factorize(strata)
    c_codes, c_lab = pd.factorize(clusters)
    if len(c_lab) < 2 or len(d) <= len(s_lab) + 1:
        return np.nan, np.nan
    zt = demean(z, s_codes, len(s_lab))
    if not np.any(np.abs(zt) > 0):
        return np.nan, np.nan
    f = linear_cr1(demean(d, s_codes, len(s_lab)), zt, c_codes, len(c_lab), extra_df=len(s_lab))
    return float(f.beta[0]), float(f.se[0])


def monotonicity_check(design: LeniencyDesign, groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """First stage within each subgroup, with the full-sample and the reverse-sample instrument.

    Under monotonicity a more lenient assignee is more lenient for every kind of case, so (i) the first
    stage is positive in every subgroup, and (ii) leniency measured only on cases *outside* a subgroup
    (the reverse-sample instrument of Bhuller, Dahl, Loken & Mogstad 2020) still predicts the decision
    inside it. ``groups`` maps a column name to (n,) labels aligned with the design's cases.
    """
    r = demean(design.d, design.stratum, design.n_strata)
    a, n_a = design.assignee, design.n_assignees
    total_sum = np.bincount(a, r, minlength=n_a)
    total_n = np.bincount(a, minlength=n_a).astype(np.float64)
    rows = []
    for col, labels in groups.items():
        codes, levels = pd.factorize(pd.Series(labels), sort=True)
        for g, level in enumerate(levels):
            m = codes == g
            fs, fs_se = _subgroup_slope(design.d[m], design.z[m], design.stratum[m], design.cluster[m])
            out_sum = total_sum - np.bincount(a[m], r[m], minlength=n_a)
            out_n = total_n - np.bincount(a[m], minlength=n_a)
            with np.errstate(invalid="ignore", divide="ignore"):
                z_rev = (out_sum / out_n)[a]
            ok = m & np.isfinite(z_rev)
            rev, rev_se = _subgroup_slope(design.d[ok], z_rev[ok], design.stratum[ok], design.cluster[ok])
            rows.append(
                {
                    "subgroup": col,
                    "level": level.item() if isinstance(level, np.generic) else level,
                    "n_cases": int(m.sum()),
                    "first_stage": fs,
                    "se": fs_se,
                    "reverse_first_stage": rev,
                    "reverse_se": rev_se,
                    "reverse_n_cases": int(ok.sum()),
                    "positive": bool(fs > 0 and rev > 0),
                }
            )
    return pd.DataFrame(rows)


def complier_characteristics(design: LeniencyDesign, first_stage: float) -> tuple[pd.DataFrame, float]:
    """Mean covariates of compliers, and the complier share.

    E[X | complier] is the 2SLS coefficient of X*D on D instrumented by leniency (strata absorbed):
    Abadie's (2003) kappa identity, which with a continuous instrument gives the complier mean under
    the same weights as the 2SLS LATE. The ratio to the sample mean is the Dahl, Kostol & Mogstad (2014)
    summary. The complier share is the first-stage slope times the range of leniency between its 1st
    and 99th percentiles (Dahl et al. 2014).
    """
    s, n_s, cl, G = design.stratum, design.n_strata, design.cluster, design.n_clusters
    zt, dt = demean(design.z, s, n_s), demean(design.d, s, n_s)
    rows = []
    for k, name in enumerate(design.names):
        xk = design.x[:, k]
        f = linear_cr1(demean(xk * design.d, s, n_s), dt, cl, G, instruments=zt, extra_df=n_s)
        mean = float(xk.mean())
        rows.append(
            {
                "covariate": name,
                "sample_mean": mean,
                "complier_mean": float(f.beta[0]),
                "complier_se": float(f.se[0]),
                "ratio": float(f.beta[0]) / mean if mean != 0 else np.nan,
            }
        )
    lo, hi = np.quantile(design.z, [0.01, 0.99])
    share = float(first_stage * (hi - lo))
    cols = ["covariate", "sample_mean", "complier_mean", "complier_se", "ratio"]
    return pd.DataFrame(rows, columns=cols), share


def first_stage_bins(design: LeniencyDesign, first_stage: float, n_bins: int = 20) -> pd.DataFrame:
    """Leniency histogram and the decision rate by leniency bin (the usual first-stage figure).

    Bins are equal-width between the 0.5th and 99.5th percentiles of leniency (cases outside fall in
    the end bins). decision_rate is the mean strata-residualised decision in the bin plus the sample
    mean; fitted is the linear first stage evaluated at the bin's mean leniency.
    """
    z = design.z
    r = demean(design.d, design.stratum, design.n_strata)
    lo, hi = np.quantile(z, [0.005, 0.995])
    edges = np.linspace(lo, hi, n_bins + 1)
    b = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, n_bins - 1)
    n = np.bincount(b, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        zbar = np.bincount(b, z, minlength=n_bins) / n
        rate = np.bincount(b, r, minlength=n_bins) / n + design.d.mean()
    return pd.DataFrame(
        {
            "bin_low": edges[:-1],
            "bin_high": edges[1:],
            "leniency": zbar,
            "n_cases": n.astype(np.int64),
            "share": n / n.sum(),
            "decision_rate": rate,
            "fitted": design.d.mean() + first_stage * (zbar - z.mean()),
        }
    )
