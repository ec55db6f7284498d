"""A case-level simulator of misdemeanour prosecution in Suffolk County, MA, calibrated to published figures.

The real case data of Agan, Doleac & Harvey ("Misdemeanor Prosecution", NBER WP 28600; QJE 2023) are
not public. This simulator produces data with the same design (ADAs as-if randomly assigned within
court-by-month strata), the paper's sample size and non-prosecution share, and potential outcomes
built so that the *true* complier effects of non-prosecution equal the published relative effects.
Every calibration target and every assumption is a field of :class:`SuffolkConfig`; the study report
prints them all. Nothing here is, or pretends to be, the real data.

Model (per case i, arraigning ADA j)
-----------------------------------
nu_i = x_i'gamma + e_i, e_i ~ N(0, 1)            (how "prosecutable" the case is)
D_i(j) = 1{nu_i < t_j}                            (not prosecuted; threshold model, so monotonic)
t_j = quantile of nu at pi_j, pi_j ~ ADA non-prosecution rates (mean 20.5%)
P(any new complaint | d) = p0(x, nu) * (1 + rel_any)^d
number of complaints = any * (1 + Poisson(k_d)), chosen so E[count | d=1] = (1 + rel_count) E[count | d=0]

Because the relative effect is the same for every (x, nu), it equals -53% (-60%) under any weighting
of compliers, in particular under the 2SLS weights. The absolute LATE depends on the weights: it is
computed exactly from the ADA rosters and a large reference sample of defendants (:func:`truth`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import special, stats

from decrimkit.errors import SpecificationError
from decrimkit.numerics import numpy_rng

__all__ = ["SuffolkConfig", "Calibration", "Simulation", "calibrate", "simulate", "simulate_memo", "memo_cells"]


@dataclass(frozen=True)
class SuffolkConfig:
    """Calibration targets (with their source) and assumptions (marked as such) of the simulator."""

    # --- calibration targets (REFERENCES.md, Suffolk County section) ---
    n_cases: int = 67_553  # sample size; ELS blog / Rutgers release (tag S)
    nonprosecution_share: float = 0.205  # share not prosecuted; Rutgers release (tag S)
    relative_effect_any: float = -0.53  # P(new complaint within 2 years), relative to complier mean; QJE abstract (V)
    relative_effect_count: float = -0.60  # number of new complaints within 2 years, relative; QJE abstract (V)
    complier_mean_any: float = 0.569  # E[Y(0)|complier] implied by "-33 pp = -58%" (NBER 2021 draft, tag S)
    complier_mean_count: float = 3.04  # implied by "-2.1 = -69%" (NBER 2021 draft, tag S)
    start: str = "2004-01"  # sample period 2004-2018 (Cato brief; the Rutgers release says to Sept 2020)
    end: str = "2018-12"
    # --- assumptions (not published; chosen to be plausible) ---
    n_courts: int = 8  # Boston Municipal Court divisions and district courts in the sample
    adas_per_court: int = 25  # ADAs rotating through each court's arraignment sessions
    adas_per_session: int = 4  # ADAs staffing a court in a month; cases assigned uniformly among them
    court_shares: tuple[float, ...] = (0.20, 0.16, 0.14, 0.12, 0.11, 0.10, 0.09, 0.08)
    leniency_sd: float = 0.07  # SD of ADA non-prosecution rates across ADAs
    share_male: float = 0.78
    share_black: float = 0.42
    mean_age: float = 32.0
    mean_prior_complaints: float = 1.5
    share_listed_charge: float = 0.55  # cases whose charge is on the 2019 memo's list of 15 offences
    selection_on_risk: float = 0.4  # how much harder-to-decline cases are also riskier (OLS is biased)
    # --- the 2019-03-25 Rollins memo (DiD design) ---
    memo_date: str = "2019-03-25"  # presumptive non-prosecution of 15 offences (REFERENCES.md registry)
    memo_start: str = "2017-01"  # simulated window around the memo; ends before COVID-19 court closures
    memo_end: str = "2020-02"
    memo_cases_per_month: int = 375  # about the IV sample's monthly volume (67,553 / 180)
    n_listed_charges: int = 15
    n_other_charges: int = 15
    memo_shift: float = 0.40  # assumption: share of otherwise-prosecuted listed-charge cases the memo declines
    # --- numerics ---
    reference_size: int = 200_000  # defendants drawn once to compute quantiles and the truth
    reference_seed: int = 20190325

    def as_table(self) -> pd.DataFrame:
        """Every field with its value and whether it is a calibration target or an assumption."""
        targets = {
            "n_cases",
            "nonprosecution_share",
            "relative_effect_any",
            "relative_effect_count",
            "complier_mean_any",
            "complier_mean_count",
            "start",
            "end",
            "memo_date",
        }
        rows = [
            {
                "parameter": k,
                "value": str(v),
                "kind": "calibration target"
                if k in targets
                else ("numerics" if k.startswith("reference") else "assumption"),
            }
            for k, v in asdict(self).items()
        ]
        return pd.DataFrame(rows)


class Calibration(NamedTuple):
    """Quantities fixed by the config alone (computed once, reused across simulated data sets).

    ada_rate: (n_adas,) non-prosecution rate of each ADA (before shuffling to courts);
    ada_threshold: (n_adas,) matching thresholds on nu; a0, b0: outcome intercepts hitting the complier
    means; ref_nu: (m,) sorted reference nu; ref_cum_*: (m+1,) cumulative sums over it (truth integrals).
    """

    ada_rate: np.ndarray
    ada_threshold: np.ndarray
    a0: float
    b0: float
    floor: float
    ref_nu: np.ndarray
    ref_cum_p0: np.ndarray
    ref_cum_c0: np.ndarray


class Simulation(NamedTuple):
    """A simulated IV sample. cases: one row per case; truth: the estimands, keyed by name."""

    cases: pd.DataFrame
    truth: dict[str, float]
    config: SuffolkConfig


def _covariates(rng: np.random.Generator, n: int, cfg: SuffolkConfig) -> dict[str, np.ndarray]:
    return {
        "age": 18.0 + rng.gamma(2.0, (cfg.mean_age - 18.0) / 2.0, n),
        "male": (rng.random(n) < cfg.share_male).astype(np.float64),
        "black": (rng.random(n) < cfg.share_black).astype(np.float64),
        "prior_complaints": rng.negative_binomial(1.0, 1.0 / (1.0 + cfg.mean_prior_complaints), n).astype(np.float64),
        "listed_charge": (rng.random(n) < cfg.share_listed_charge).astype(np.float64),
    }


def _nu_index(c: dict[str, np.ndarray]) -> np.ndarray:
    return (
        0.45 * np.log1p(c["prior_complaints"]) - 0.35 * c["listed_charge"] + 0.15 * c["male"] - 0.01 * (c["age"] - 32.0)
    )


def _p0_index(c: dict[str, np.ndarray], nu: np.ndarray, cfg: SuffolkConfig) -> np.ndarray:
    """Logit of P(new complaint | not declined) without the intercept."""
    lin = 0.5 * np.log1p(c["prior_complaints"]) + 0.25 * c["male"] - 0.02 * (c["age"] - 32.0)
    return lin + cfg.selection_on_risk * nu


def _k0_index(c: dict[str, np.ndarray], nu: np.ndarray) -> np.ndarray:
    """Log of the extra-complaint rate (above the floor) without the intercept."""
    return 0.3 * np.log1p(c["prior_complaints"]) + 0.2 * nu


def _p0(c: dict[str, np.ndarray], nu: np.ndarray, a0: float, cfg: SuffolkConfig) -> np.ndarray:
    return special.expit(a0 + _p0_index(c, nu, cfg))


def _k0(c: dict[str, np.ndarray], nu: np.ndarray, b0: float, floor: float) -> np.ndarray:
    return floor + np.exp(b0 + _k0_index(c, nu))


def _weighted(values: np.ndarray, idx: np.ndarray, coef: np.ndarray) -> float:
    """sum_j coef_j E[values 1{nu < t_j}] / sum_j coef_j P(nu < t_j); values sorted by nu, idx = ranks of t_j."""
    cum = np.r_[0.0, np.cumsum(values)]
    return float(coef @ cum[idx] / (coef @ idx))


def calibrate(config: SuffolkConfig | None = None) -> Calibration:
    """ADA rates and thresholds, and the outcome intercepts that hit the complier-mean targets."""
    cfg = config or SuffolkConfig()
    _check(cfg)
    rng = numpy_rng(cfg.reference_seed)
    c = _covariates(rng, cfg.reference_size, cfg)
    nu = _nu_index(c) + rng.standard_normal(cfg.reference_size)
    n_adas = cfg.n_courts * cfg.adas_per_court
    m, s = cfg.nonprosecution_share, cfg.leniency_sd
    conc = m * (1 - m) / s**2 - 1.0  # Beta(a, b) with mean m and sd s
    rate = stats.beta.ppf((np.arange(n_adas) + 0.5) / n_adas, m * conc, (1 - m) * conc)
    rate = rate - rate.mean() + m
    thr = np.quantile(nu, rate)
    coef = rate - rate.mean()  # population 2SLS weights of each ADA margin (all ADAs pooled)
    floor = max(0.0, (1 + cfg.relative_effect_any) / (1 + cfg.relative_effect_count) - 1.0) + 0.05

    order = np.argsort(nu)
    c = {k: v[order] for k, v in c.items()}
    nu = nu[order]
    idx = np.searchsorted(nu, thr)

    def solve(f, target: float) -> float:
        return float(optimize_bisect(lambda a: f(a) - target, -12.0, 8.0))

    lin_p, lin_k = _p0_index(c, nu, cfg), np.exp(_k0_index(c, nu))
    a0 = solve(lambda a: _weighted(special.expit(a + lin_p), idx, coef), cfg.complier_mean_any)
    p0 = special.expit(a0 + lin_p)
    b0 = solve(lambda b: _weighted(p0 * (1 + floor + np.exp(b) * lin_k), idx, coef), cfg.complier_mean_count)
    c0 = p0 * (1 + _k0(c, nu, b0, floor))
    return Calibration(
        ada_rate=rate,
        ada_threshold=thr,
        a0=a0,
        b0=b0,
        floor=floor,
        ref_nu=nu,
        ref_cum_p0=np.r_[0.0, np.cumsum(p0)],
        ref_cum_c0=np.r_[0.0, np.cumsum(c0)],
    )


def optimize_bisect(f, lo: float, hi: float, tol: float = 1e-9) -> float:
    """Root of an increasing function on [lo, hi] by bisection (deterministic, no tolerance surprises)."""
    flo = f(lo)
    if flo > 0 or f(hi) < 0:
        raise SpecificationError("calibration target out of reach; check complier_mean_* in SuffolkConfig.")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _check(cfg: SuffolkConfig) -> None:
    if len(cfg.court_shares) != cfg.n_courts or abs(sum(cfg.court_shares) - 1.0) > 1e-9:
        raise SpecificationError("court_shares must have n_courts entries summing to 1.")
    if cfg.adas_per_session < 2 or cfg.adas_per_session > cfg.adas_per_court:
        raise SpecificationError("adas_per_session must be between 2 and adas_per_court.")
    if not (-1 < cfg.relative_effect_any < 1 and -1 < cfg.relative_effect_count < 1):
        raise SpecificationError("relative effects must lie in (-1, 1).")


def truth(cal: Calibration, strata_sizes: np.ndarray, rosters: np.ndarray, cfg: SuffolkConfig) -> dict[str, float]:
    """2SLS estimands of the simulated design: the LATEs, complier means and relative effects.

    ``rosters`` (n_strata, k) lists the ADAs of each stratum, ``strata_sizes`` (n_strata,) its cases.
    Leave-out leniency converges to Z*_j = pi_j - (case-weighted mean of the stratum means pi_s over the
    ADA's strata); demeaned within strata it gives each ADA the 2SLS weight c_j = sum_s n_s/k (Z*_j - mean
    of Z* in s). The LATE is sum_j c_j E[Delta 1{nu < t_j}] / sum_j c_j P(nu < t_j) (threshold model).
    """
    rate, n_adas = cal.ada_rate, len(cal.ada_rate)
    k = rosters.shape[1]
    pi_s = rate[rosters].mean(axis=1)
    w = np.repeat(strata_sizes / k, k)
    flat = rosters.reshape(-1)
    own = np.bincount(flat, w * np.repeat(pi_s, k), minlength=n_adas) / np.bincount(flat, w, minlength=n_adas)
    zstar = rate - own
    ztil = zstar[rosters] - zstar[rosters].mean(axis=1, keepdims=True)
    coef = np.bincount(flat, w * ztil.reshape(-1), minlength=n_adas)
    idx = np.searchsorted(cal.ref_nu, cal.ada_threshold)
    denom = coef @ idx
    mu_any, mu_cnt = float(coef @ cal.ref_cum_p0[idx] / denom), float(coef @ cal.ref_cum_c0[idx] / denom)
    return {
        "complier_mean_any": mu_any,
        "late_any": cfg.relative_effect_any * mu_any,
        "relative_any": cfg.relative_effect_any,
        "complier_mean_count": mu_cnt,
        "late_count": cfg.relative_effect_count * mu_cnt,
        "relative_count": cfg.relative_effect_count,
    }


def _outcomes(rng, c, nu, d, cal: Calibration, cfg: SuffolkConfig) -> tuple[np.ndarray, np.ndarray]:
    p0 = _p0(c, nu, cal.a0, cfg)
    k0 = _k0(c, nu, cal.b0, cal.floor)
    ra, rc = cfg.relative_effect_any, cfg.relative_effect_count
    k1 = (1 + rc) / (1 + ra) * (1 + k0) - 1.0
    any_ = rng.random(len(nu)) < np.where(d == 1, (1 + ra) * p0, p0)
    extra = rng.poisson(np.where(d == 1, k1, k0))
    return any_.astype(np.float64), np.where(any_, 1 + extra, 0).astype(np.float64)


def simulate(
    n_cases: int | None = None,
    seed: int = 0,
    config: SuffolkConfig | None = None,
    calibration: Calibration | None = None,
) -> Simulation:
    """Simulate the IV sample: one row per case, ADAs as-if randomly assigned within court-by-month.

    Columns: case_id, court, month (pandas Period), ada, not_prosecuted (0/1), any_new_complaint (0/1,
    within 2 years), n_new_complaints, age, male, black, prior_complaints, listed_charge.
    ``truth`` holds the 2SLS estimands (late_*, complier_mean_*, relative_*) of this design.
    ``calibration`` may be passed to skip recomputing it (Monte Carlo).
    """
    cfg = config or SuffolkConfig()
    n = cfg.n_cases if n_cases is None else int(n_cases)
    if n < 1000:
        raise SpecificationError(f"n_cases={n} is too small for a leniency design; use at least 1,000.")
    cal = calibration or calibrate(cfg)
    rng = numpy_rng(seed)
    months = pd.period_range(cfg.start, cfg.end, freq="M")
    n_m, n_c, k = len(months), cfg.n_courts, cfg.adas_per_session
    probs = np.repeat(np.asarray(cfg.court_shares), n_m) / n_m  # strata ordered court-major
    sizes = rng.multinomial(n, probs)
    ada_of = rng.permutation(len(cal.ada_rate)).reshape(n_c, cfg.adas_per_court)  # ADAs shuffled to courts
    pick = np.argsort(rng.random((n_c * n_m, cfg.adas_per_court)), axis=1)[:, :k]
    rosters = ada_of[np.repeat(np.arange(n_c), n_m)[:, None], pick]
    stratum = np.repeat(np.arange(n_c * n_m), sizes)
    ada = rosters[stratum, rng.integers(0, k, n)]
    c = _covariates(rng, n, cfg)
    nu = _nu_index(c) + rng.standard_normal(n)
    d = (nu < cal.ada_threshold[ada]).astype(np.float64)
    any_, count = _outcomes(rng, c, nu, d, cal, cfg)
    cases = pd.DataFrame(
        {
            "case_id": np.arange(n),
            "court": pd.Categorical.from_codes(stratum // n_m, [f"C{i + 1}" for i in range(n_c)]),
            "month": months[stratum % n_m],
            "ada": pd.array(np.asarray([f"ADA{a + 1:03d}" for a in range(len(cal.ada_rate))])[ada], dtype="string"),
            "not_prosecuted": d,
            "any_new_complaint": any_,
            "n_new_complaints": count,
            **c,
        }
    )
    return Simulation(cases=cases, truth=truth(cal, sizes.astype(np.float64), rosters, cfg), config=cfg)


def simulate_memo(
    seed: int = 0, config: SuffolkConfig | None = None, calibration: Calibration | None = None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Simulate cases around the 2019-03-25 memo: listed vs non-listed charges, before and after.

    After the memo a share ``memo_shift`` of listed-charge cases that would have been prosecuted are
    not; outcomes follow the same potential-outcome model as :func:`simulate`. Returns (cases, truth):
    truth holds the equal-weighted mean over listed-charge post-memo months (from April 2019) of the
    expected cell-level effect on the non-prosecution rate and on the new-complaint rate.
    """
    cfg = config or SuffolkConfig()
    cal = calibration or calibrate(cfg)
    rng = numpy_rng(seed)
    months = pd.period_range(cfg.memo_start, cfg.memo_end, freq="M")
    n_ch = cfg.n_listed_charges + cfg.n_other_charges
    charges = [f"L{i + 1:02d}" for i in range(cfg.n_listed_charges)] + [
        f"N{i + 1:02d}" for i in range(cfg.n_other_charges)
    ]
    listed_ch = np.r_[np.ones(cfg.n_listed_charges), np.zeros(cfg.n_other_charges)]
    w = rng.dirichlet(np.full(n_ch, 4.0))
    w = np.where(
        listed_ch == 1,
        w / w[listed_ch == 1].sum() * cfg.share_listed_charge,
        w / w[listed_ch == 0].sum() * (1 - cfg.share_listed_charge),
    )
    # at least one case per cell, so the charge-by-month panel is balanced
    sizes = 1 + rng.poisson(np.maximum(cfg.memo_cases_per_month * np.outer(np.ones(len(months)), w) - 1, 0)).reshape(-1)
    cell = np.repeat(np.arange(len(months) * n_ch), sizes)
    m_idx, ch = cell // n_ch, cell % n_ch
    n = len(cell)
    c = _covariates(rng, n, cfg)
    c["listed_charge"] = listed_ch[ch]
    nu = _nu_index(c) + 0.3 * (np.arange(n_ch) / n_ch - 0.5)[ch] + rng.standard_normal(n)
    ada = rng.integers(0, len(cal.ada_rate), n)
    d0 = (nu < cal.ada_threshold[ada]).astype(np.float64)
    day = rng.integers(1, months[m_idx].days_in_month + 1)
    date = months[m_idx].to_timestamp() + pd.to_timedelta(day - 1, unit="D")
    post = (c["listed_charge"] == 1) & (date >= pd.Timestamp(cfg.memo_date))
    shifted = post & (d0 == 0) & (rng.random(n) < cfg.memo_shift)
    d = np.where(shifted, 1.0, d0)
    any_, count = _outcomes(rng, c, nu, d, cal, cfg)
    p0 = _p0(c, nu, cal.a0, cfg)
    cases = pd.DataFrame(
        {
            "date": date,
            "month": months[m_idx],
            "charge": np.asarray(charges)[ch],
            "not_prosecuted": d,
            "any_new_complaint": any_,
            "n_new_complaints": count,
            "effect_nonpros": np.where(post, cfg.memo_shift * (1 - d0), 0.0),
            "effect_any": np.where(post, cfg.memo_shift * (1 - d0) * cfg.relative_effect_any * p0, 0.0),
            **c,
        }
    )
    full_post = cases[(cases["listed_charge"] == 1) & (cases["month"] >= pd.Period(cfg.memo_date, "M") + 1)]
    by_cell = full_post.groupby(["charge", "month"], observed=True)[["effect_nonpros", "effect_any"]].mean()
    tr = {"att_nonpros": float(by_cell["effect_nonpros"].mean()), "att_any": float(by_cell["effect_any"].mean())}
    return cases.drop(columns=["effect_nonpros", "effect_any"]), tr


def memo_cells(cases: pd.DataFrame, config: SuffolkConfig | None = None) -> tuple[pd.DataFrame, int]:
    """Aggregate memo-window cases to charge-by-month cells for the DiD.

    Returns (cells, n_dropped): cells has charge, month, listed, treated (listed charge and month after
    the memo's month), n_cases, nonpros_rate, new_complaint_rate; the memo's own month (partly treated)
    is dropped and its case count returned.
    """
    cfg = config or SuffolkConfig()
    memo_month = pd.Period(cfg.memo_date, "M")
    keep = cases["month"] != memo_month
    g = cases[keep].groupby(["charge", "month"], observed=True)
    cells = g.agg(
        n_cases=("not_prosecuted", "size"),
        nonpros_rate=("not_prosecuted", "mean"),
        new_complaint_rate=("any_new_complaint", "mean"),
        listed=("listed_charge", "max"),
    ).reset_index()
    cells["treated"] = ((cells["listed"] == 1) & (cells["month"] > memo_month)).astype("int64")
    return cells, int((~keep).sum())
