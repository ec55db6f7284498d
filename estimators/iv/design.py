"""The examiner (judge/prosecutor) design: validated case arrays, leave-out leniency, within-strata algebra.

Everything here works on NumPy arrays; the caller's frame is read once by :func:`leniency_design` and
never written. Regressions with strata fixed effects are run on within-strata demeaned variables
(Frisch-Waugh-Lovell); with the absorbed strata counted in the degrees of freedom this gives the same
coefficient and CR1 clustered standard error as linearmodels' IV2SLS with one dummy per stratum (tested
to 1e-8 in ``tests/estimators/iv/test_leniency.py``). The headline 2SLS runs through linearmodels; the
many auxiliary regressions (diagnostics, Monte Carlo) use :func:`linear_cr1`, the same formula in NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from linearmodels.iv import IV2SLS

from decrimkit.errors import DataError, DesignError, SpecificationError

__all__ = [
    "LeniencyDesign",
    "leniency_design",
    "demean",
    "leave_out_leniency",
    "Fit",
    "linear_cr1",
    "linearmodels_2sls",
    "jackknife_fe_iv",
    "jackknife_vcov",
]


class LeniencyDesign(NamedTuple):
    """Validated case-level arrays of an examiner design (n cases after exclusions).

    d, y: (n,) decision (1 = the lenient action, e.g. not prosecuted) and outcome, float64.
    z: (n,) leave-one-out leniency of the case's assignee (see :func:`leave_out_leniency`).
    stratum, assignee, cluster: (n,) int64 codes; x: (n, p) covariates; names: their labels.
    assignee_leniency: (n_assignees,) mean residualised decision of each assignee (all their cases).
    excluded: ((rows, reason), ...) rows dropped before estimation.
    """

    d: np.ndarray
    y: np.ndarray
    z: np.ndarray
    stratum: np.ndarray
    assignee: np.ndarray
    cluster: np.ndarray
    x: np.ndarray
    names: tuple[str, ...]
    n_strata: int
    n_assignees: int
    n_clusters: int
    assignee_labels: tuple[Any, ...]
    assignee_leniency: np.ndarray
    row_index: np.ndarray
    excluded: tuple[tuple[int, str], ...]


def _codes(values: pd.Series | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..k-1 of a column (or of the combination of several) and the label of each code."""
    if isinstance(values, pd.DataFrame):
        combined = np.zeros(len(values), dtype=np.int64)
        parts = []
        for col in values.columns:
            c, u = pd.factorize(values[col], sort=True)
            combined = combined * len(u) + c
            parts.append(np.asarray(u, dtype=object))
        codes, uniques = pd.factorize(combined, sort=True)
        return codes.astype(np.int64), np.asarray(uniques, dtype=object)
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def demean(a: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """``a`` minus its group mean; a: (n,) or (n, p); codes: (n,) int in 0..n_groups-1."""
    counts = np.bincount(codes, minlength=n_groups).astype(np.float64)
    if a.ndim == 1:
        return a - (np.bincount(codes, a, minlength=n_groups) / counts)[codes]
    out = np.empty_like(a, dtype=np.float64)
    for k in range(a.shape[1]):
        out[:, k] = a[:, k] - (np.bincount(codes, a[:, k], minlength=n_groups) / counts)[codes]
    return out


def leave_out_leniency(
    d: np.ndarray, strata: np.ndarray, n_strata: int, assignee: np.ndarray, n_assignees: int
) -> np.ndarray:
    """Leave-one-out leniency: (n,) mean residualised decision of the case's assignee's *other* cases.

    The decision is residualised on strata fixed effects (r = D - stratum mean), and case i is left
    out twice: from its assignee's mean, and from the mean of its own stratum used to residualise the
    assignee's other cases there. With m_i of the assignee's cases in stratum s(i) (i included),
    z_i = [sum_{l in a(i)} r_l - r_i + (m_i - 1) r_i / (n_s - 1)] / (n_a - 1), which contains no D_i.
    The common shortcut (residualise on all cases, leave i out of the assignee's mean only) keeps a
    term -(m_i - 1) D_i / (n_s (n_a - 1)) that pulls 2SLS towards OLS when strata are small.
    """
    r = demean(d, strata, n_strata)
    n_s = np.bincount(strata, minlength=n_strata).astype(np.float64)[strata]
    n_a = np.bincount(assignee, minlength=n_assignees).astype(np.float64)[assignee]
    cell = assignee * n_strata + strata
    m = np.bincount(cell, minlength=n_assignees * n_strata).astype(np.float64)[cell]
    total = np.bincount(assignee, r, minlength=n_assignees)[assignee]
    return (total - r + (m - 1.0) * r / (n_s - 1.0)) / (n_a - 1.0)


def _as_tuple(cols: str | Sequence[str] | None) -> tuple[str, ...]:
    if cols is None:
        return ()
    return (cols,) if isinstance(cols, str) else tuple(cols)


def _check_columns(cases: pd.DataFrame, roles: dict[str, tuple[str, ...]]) -> None:
    if not isinstance(cases, pd.DataFrame):
        raise DataError(f"cases must be a pandas DataFrame with one row per case, got {type(cases).__name__}.")
    for role, cols in roles.items():
        for c in cols:
            if c not in cases.columns:
                avail = ", ".join(map(str, list(cases.columns)[:12]))
                raise DataError(f"column {c!r} (given as {role}=) is not in cases; available: {avail}.")
    used = [c for cols in roles.values() for c in cols]
    missing = cases[used].isna().any(axis=1).to_numpy()
    if missing.any():
        rows = cases.index[missing][:5].tolist()
        cols = [c for c in used if cases[c].isna().any()]
        raise DataError(
            f"{int(missing.sum())} cases have missing values in {cols} (first rows {rows}). "
            "decrimkit does not drop them silently: fill them or drop those rows, e.g. cases.dropna(subset=[...])."
        )


def _numeric(cases: pd.DataFrame, col: str, role: str) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(cases[col].dtype) or pd.api.types.is_bool_dtype(cases[col].dtype):
        if pd.api.types.is_bool_dtype(cases[col].dtype):
            return cases[col].to_numpy(dtype=np.float64)
        raise DataError(
            f"{role} column {col!r} has dtype {cases[col].dtype}; it must be numeric. "
            f"Encode categories as 0/1 columns first, e.g. pd.get_dummies(cases[{col!r}], drop_first=True, dtype=float)."
        )
    a = cases[col].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise DataError(
            f"{role} column {col!r} has non-finite values at rows {cases.index[~np.isfinite(a)][:5].tolist()}."
        )
    return a


def leniency_design(
    cases: pd.DataFrame,
    *,
    decision: str,
    outcome: str,
    assignee: str,
    strata: str | Sequence[str],
    covariates: Sequence[str] = (),
    cluster: str | None = None,
    min_cases: int = 50,
) -> LeniencyDesign:
    """Validate a case-level frame and build the leave-out leniency instrument.

    Raises
    ------
    DataError
        Missing columns or values, a non-binary decision, non-numeric outcome or covariates.
    DesignError
        No variation in the decision, assignees with fewer than ``min_cases`` cases, assignees seen in
        only one stratum.
    """
    strata_cols = _as_tuple(strata)
    covs = _as_tuple(covariates)
    if not strata_cols:
        raise SpecificationError("strata= must name at least one column (e.g. ('court', 'month')).")
    if isinstance(min_cases, bool) or not isinstance(min_cases, (int, np.integer)) or min_cases < 2:
        raise SpecificationError(
            f"min_cases must be an integer >= 2 (leave-one-out needs two cases), got {min_cases!r}."
        )
    roles = {
        "decision": (decision,),
        "outcome": (outcome,),
        "assignee": (assignee,),
        "strata": strata_cols,
        "covariates": covs,
        "cluster": _as_tuple(cluster),
    }
    _check_columns(cases, roles)
    d_all = _numeric(cases, decision, "decision")
    bad = (d_all != 0) & (d_all != 1)
    if bad.any():
        raise DataError(
            f"decision column {decision!r} must be 0/1 (1 = the lenient action, e.g. not prosecuted); "
            f"{int(bad.sum())} rows are not, first {cases.index[bad][:5].tolist()} (value {d_all[bad][0]!r})."
        )
    if d_all.min() == d_all.max():
        raise DesignError(
            f"decision column {decision!r} is {int(d_all[0])} in every case: there is no variation to instrument. "
            "Check the coding of the decision or the sample selection."
        )
    _numeric(cases, outcome, "outcome")
    for c in covs:
        _numeric(cases, c, "covariate")

    # Strata served by a single assignee carry no within-stratum variation in leniency: drop and record.
    s_codes, _ = _codes(cases[list(strata_cols)] if len(strata_cols) > 1 else cases[strata_cols[0]])
    a_codes, _ = _codes(cases[assignee])
    per_stratum = pd.DataFrame({"s": s_codes, "a": a_codes}).groupby("s")["a"].nunique()
    single = per_stratum.index[per_stratum.to_numpy() < 2].to_numpy()
    keep = ~np.isin(s_codes, single)
    excluded: list[tuple[int, str]] = []
    if (~keep).any():
        excluded.append((int((~keep).sum()), f"cases in {len(single)} strata served by a single {assignee}"))
    if not keep.any():
        raise DesignError(f"every stratum is served by a single {assignee}; leniency is not identified within strata.")
    df = cases.loc[keep]

    a_series = df[assignee]
    counts = a_series.value_counts()
    small = counts[counts < min_cases]
    if len(small):
        shown = ", ".join(f"{k!r} ({v})" for k, v in small.head(5).items())
        raise DesignError(
            f"{len(small)} {assignee} values have fewer than min_cases={min_cases} cases: {shown}"
            f"{' ...' if len(small) > 5 else ''}. Their leave-one-out leniency is too noisy. Drop them "
            f"(cases[cases.groupby({assignee!r})[{assignee!r}].transform('size') >= {min_cases}]), pool them "
            "into one assignee, or lower min_cases deliberately."
        )
    s_codes, _ = _codes(df[list(strata_cols)] if len(strata_cols) > 1 else df[strata_cols[0]])
    a_codes, a_labels = _codes(a_series)
    n_strata, n_assignees = int(s_codes.max()) + 1, int(a_codes.max()) + 1
    seen = pd.DataFrame({"s": s_codes, "a": a_codes}).groupby("a")["s"].nunique().to_numpy()
    if (seen < 2).any():
        names = ", ".join(repr(a_labels[i]) for i in np.flatnonzero(seen < 2)[:5])
        raise DesignError(
            f"{int((seen < 2).sum())} {assignee} values are seen in only one stratum ({names}); their leniency "
            "cannot be told apart from that stratum's shocks. Drop them or use coarser strata (e.g. court by quarter)."
        )
    d = df[decision].to_numpy(dtype=np.float64)
    z = leave_out_leniency(d, s_codes, n_strata, a_codes, n_assignees)
    r = demean(d, s_codes, n_strata)
    lenient = np.bincount(a_codes, r, minlength=n_assignees) / np.bincount(a_codes, minlength=n_assignees)
    if cluster is None:
        c_codes, n_clusters = a_codes, n_assignees
    else:
        c_codes, c_labels = _codes(df[cluster])
        n_clusters = len(c_labels)
    x = df[list(covs)].to_numpy(dtype=np.float64) if covs else np.zeros((len(df), 0))
    return LeniencyDesign(
        d=d,
        y=df[outcome].to_numpy(dtype=np.float64),
        z=z,
        stratum=s_codes,
        assignee=a_codes,
        cluster=c_codes,
        x=x,
        names=covs,
        n_strata=n_strata,
        n_assignees=n_assignees,
        n_clusters=int(n_clusters),
        assignee_labels=tuple(a_labels.tolist()),
        assignee_leniency=lenient,
        row_index=np.flatnonzero(keep),
        excluded=tuple(excluded),
    )


class Fit(NamedTuple):
    """A linear fit with strata absorbed. beta: (k,); cov: (k, k) CR1 clustered; resid: (n,).

    scores: (G, k) per-cluster contributions with cov = factor * scores' scores, so the covariance of
    two fits on the same clusters is factor * scores_a' scores_b (None from linearmodels).
    """

    beta: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    resid: np.ndarray
    scores: np.ndarray | None = None
    factor: float = 1.0


def linear_cr1(
    y: np.ndarray,
    x: np.ndarray,
    clusters: np.ndarray,
    n_clusters: int,
    *,
    instruments: np.ndarray | None = None,
    extra_df: int = 0,
) -> Fit:
    """OLS, or just-identified IV when ``instruments`` (same shape as ``x``) is given, with CR1 errors.

    y: (n,); x, instruments: (n, k), already demeaned within strata. The covariance is
    c (Z'X)^-1 [sum_g (Z_g'e_g)(Z_g'e_g)'] (X'Z)^-1 with c = G/(G-1) (n-1)/(n-k-extra_df), which is
    linearmodels' IV2SLS clustered covariance with ``debiased=True`` (tested to 1e-8).
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(y), -1)
    z = x if instruments is None else np.asarray(instruments, dtype=np.float64).reshape(len(y), -1)
    zx_inv = np.linalg.inv(z.T @ x)
    beta = zx_inv @ (z.T @ y)
    resid = y - x @ beta
    sums = np.column_stack([np.bincount(clusters, z[:, k] * resid, minlength=n_clusters) for k in range(z.shape[1])])
    n, k = x.shape
    factor = n_clusters / (n_clusters - 1) * (n - 1) / (n - k - extra_df)
    infl = sums @ zx_inv.T
    cov = factor * infl.T @ infl
    return Fit(beta=beta, se=np.sqrt(np.diag(cov)), cov=cov, resid=resid, scores=infl, factor=factor)


def linearmodels_2sls(
    y: np.ndarray, d: np.ndarray, w: np.ndarray, z: np.ndarray, clusters: np.ndarray, *, extra_df: int
) -> Fit:
    """2SLS of y on d (instrument z, exogenous w) by linearmodels' IV2SLS, CR1 clustered (``debiased=True``).

    Arrays are demeaned within strata and ``extra_df`` counts the absorbed strata, so the small-sample
    factor G/(G-1) (n-1)/(n-k-extra_df) equals that of the regression with one dummy per stratum.
    Returned coefficients: d first, then the columns of w.
    """
    n = len(y)
    exog = np.asarray(w, dtype=np.float64).reshape(n, -1)
    res = IV2SLS(y, exog if exog.shape[1] else None, d.reshape(n, 1), z.reshape(n, 1)).fit(
        cov_type="clustered", clusters=clusters, debiased=True, extra_df=extra_df
    )
    order = np.r_[exog.shape[1], np.arange(exog.shape[1])]  # linearmodels puts exog first, endog last
    beta = np.asarray(res.params)[order]
    cov = np.asarray(res.cov)[np.ix_(order, order)]
    return Fit(beta=beta, se=np.sqrt(np.diag(cov)), cov=cov, resid=np.asarray(res.resids))


def _stratum_cross(zy: np.ndarray, z: np.ndarray, y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Within-stratum cross-product sum_i (z_i - zbar)(y_i - ybar) from stratum sums; 0 for empty strata."""
    safe = np.where(n > 0, n, 1.0)
    return np.where(n > 0, zy - z * y / safe, 0.0)


def jackknife_fe_iv(
    y: np.ndarray,
    x: np.ndarray,
    z: np.ndarray,
    strata: np.ndarray,
    n_strata: int,
    clusters: np.ndarray,
    n_clusters: int,
) -> tuple[float, np.ndarray]:
    """Just-identified IV with strata fixed effects, and its delete-one-cluster estimates.

    beta = sum z~ y~ / sum z~ x~ (``~``: demeaned within strata; OLS when ``x`` is ``z``). Deleting a
    cluster re-estimates the strata means of every stratum it touches, from stratum and
    cluster-by-stratum sums, so all G deletions cost a few bincounts. Returns (beta, (G,) beta_(-g)).
    The instrument itself is held fixed (not rebuilt without the cluster).
    """

    def sums(v: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
        return np.bincount(idx, v, minlength=k)

    one = np.ones_like(y, dtype=np.float64)
    cell = clusters.astype(np.int64) * n_strata + strata
    keys, inv = np.unique(cell, return_inverse=True)
    k = len(keys)
    g_of, s_of = keys // n_strata, keys % n_strata
    tot = {
        name: sums(v, strata, n_strata)
        for name, v in (("n", one), ("z", z), ("x", x), ("y", y), ("zx", z * x), ("zy", z * y))
    }
    part = {
        name: sums(v, inv, k) for name, v in (("n", one), ("z", z), ("x", x), ("y", y), ("zx", z * x), ("zy", z * y))
    }
    num_s = _stratum_cross(tot["zy"], tot["z"], tot["y"], tot["n"])
    den_s = _stratum_cross(tot["zx"], tot["z"], tot["x"], tot["n"])
    left = {name: tot[name][s_of] - part[name] for name in tot}
    d_num = num_s[s_of] - _stratum_cross(left["zy"], left["z"], left["y"], left["n"])
    d_den = den_s[s_of] - _stratum_cross(left["zx"], left["z"], left["x"], left["n"])
    num, den = num_s.sum(), den_s.sum()
    return float(num / den), (num - sums(d_num, g_of, n_clusters)) / (den - sums(d_den, g_of, n_clusters))


def jackknife_vcov(full: np.ndarray, deleted: np.ndarray) -> np.ndarray:
    """CR3 (cluster jackknife) covariance (G-1)/G sum_g (b_(-g) - b)(b_(-g) - b)'; deleted: (G, k)."""
    dev = deleted - full[None, :]
    G = deleted.shape[0]
    return (G - 1) / G * dev.T @ dev
