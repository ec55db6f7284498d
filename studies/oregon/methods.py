"""The Oregon study's estimators, run side by side on one panel, summarised in one shape.

Every method returns a :class:`MethodEstimate`: the average effect of Measure 110 on Oregon's
overdose death rate over the three February-January windows under the policy (2021-2023), in
deaths per 100,000 per year, with the interval or p-value that method supports, its pre-period
RMSPE, and Oregon's observed and counterfactual paths.

Inference per method (stated in the report):

- ADH SCM: placebo-in-space, rank p-value of Oregon's post/pre RMSPE ratio among all runs; the
  interval is the placebo-distribution interval of Conley and Taber (2011): the estimate minus the
  2.5 and 97.5 percentiles of the donors' placebo effects. With seven annual pre-windows and
  dozens of donors, Oregon and many placebo states are fitted *exactly* before 2021 (pre-RMSPE at
  rounding level), which makes their RMSPE ratios astronomically large: the ratio rank p-value then
  only says that Oregon's fit is exact, so the rank of |average post gap| among the placebos
  (reported beside it) is the more informative placebo test here.
- ASCM: Chernozhukov-Wuthrich-Zhu conformal inference. The average-effect interval inverts the
  test of a constant effect over the three post windows, permuting the ten refitted residuals over
  all 120 assignments to the post windows (exchangeable residuals; augsynth's default permutation
  type); its hull is reported, with a note when some values inside it are rejected. Per window, the
  cyclic-shift p-values cannot fall below 1/8, so per-window bands are 80% intervals.
- SDID: placebo standard error (Arkhangelsky et al. 2021, Algorithm 4), normal interval.
- MC-NNM: placebo standard error from re-running with each donor as the treated unit.
- Bayesian SCM: 95% highest-density interval of the posterior average effect.
- DiD (TWFE): with one treated state a cluster-robust SE is refused, so the interval and p-value are
  Conley and Taber's (``did.twfe(..., inference="conley_taber")``): the donors' TWFE residuals in Oregon's
  place give the distribution of its estimation error; equal-tailed, exact over the donors. Chosen on the
  real-data placebo validation (``validation/README.md``, cell ``placebo_state_annual_1``: all 185
  one-state placebo laws on 37 states' death rates, 2015-2024): Conley-Taber's 5% test rejects 5.4% of
  them (valid), Ferman-Pinto's population-rescaled version 8.1% (over-rejects: the rescaling shrinks the
  interval for large states more than their rates' noise warrants) and randomization inference 2.7%
  (conservative: with 37 states its p-value cannot fall between 1/37 and 2/37). Ferman-Pinto is given
  in the note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.panel import Panel
from decrimkit.studies.estimates import UnitEstimate, conley_taber, pre_rmspe

from . import data as oregon_data

__all__ = ["MethodEstimate", "conley_taber", "pre_rmspe", "adh_scm", "ascm", "sdid", "did_path", "did_twfe", "mc_nnm",
           "bayes_scm"]


@dataclass(frozen=True, kw_only=True)
class MethodEstimate(UnitEstimate):
    """One method's estimate of the average post-window effect (per 100,000 per year); ``path`` has
    year, observed, counterfactual, gap, low, high."""

    key: str
    weights: pd.Series | None = None
    adjusted: bool = False
    note: str = ""
    converged: bool | None = None  # MCMC convergence gate; None for methods without a sampler

    @property
    def flagged(self) -> bool:
        """True when the number must not be read as a result (a failed MCMC convergence gate)."""
        return self.converged is False

    def row(self, population: float) -> dict[str, Any]:
        k = population / 1e5
        return {
            "method": self.method + (" [NOT CONVERGED]" if self.flagged else ""),
            "fentanyl_proxy": "yes" if self.adjusted else "no",
            "estimate": self.estimate, "conf_low": self.conf_low, "conf_high": self.conf_high,
            "p_value": self.p_value, "se": self.se, "excess_deaths_per_year": self.estimate * k,
            "deaths_low": self.conf_low * k, "deaths_high": self.conf_high * k,
            "pre_rmspe": self.pre_rmspe, "inference": self.inference,
            "converged": {None: "n/a", True: "yes", False: "NO"}[self.converged],
        }


def _post_mask(years: np.ndarray, start: int) -> np.ndarray:
    return np.asarray(years) >= start


def _path(observed: pd.Series, counterfactual: pd.Series, low: Any = None, high: Any = None) -> pd.DataFrame:
    years = np.asarray(observed.index, dtype="int64")
    out = pd.DataFrame({"year": years, "observed": observed.to_numpy(dtype="float64"),
                        "counterfactual": counterfactual.to_numpy(dtype="float64")})
    out["gap"] = out["observed"] - out["counterfactual"]
    out["low"] = np.nan if low is None else np.asarray(low, dtype="float64")
    out["high"] = np.nan if high is None else np.asarray(high, dtype="float64")
    return out


# ----------------------------------------------------------------------------- synthetic control family
def adh_scm(panel: Panel, *, start: int = oregon_data.START_YEAR, placebo: bool = True, key: str = "scm",
            method: str = "ADH SCM", adjusted: bool = False, v: str = "equal") -> MethodEstimate:
    """Abadie-Diamond-Hainmueller SCM on the pre-period outcomes, with placebo-in-space inference.

    The predictors are the pre-window outcomes themselves, so an exact pre-period fit is attainable
    whenever Oregon's path lies in the donors' convex hull; V then does not change the fit.
    """
    from decrimkit.estimators import synth

    res = synth.scm(panel, treated=oregon_data.TREATED, start=start, v=v)
    path = _path(res.observed, res.synthetic)
    lo = hi = p = np.nan
    extra: dict[str, Any] = {"result": res}
    if placebo:
        pl = res.placebo("space")
        gaps = pl.gaps
        post = _post_mask(np.asarray(gaps.index), start)
        effects = gaps.loc[post].mean(axis=0)
        donors_eff = effects.drop(index=effects.index[0]).to_numpy()
        lo, hi, p_effect = conley_taber(float(res.estimate), donors_eff)
        p = float(pl.p_value)
        exact = int((pl.table["pre_rmspe"].iloc[1:] < 1e-6).sum())  # row 0 is Oregon
        extra.update(placebo=pl, p_effect=p_effect, n_exact_fits=exact, n_runs=len(pl.table) - 1)
    how = ("placebo-in-space: RMSPE-ratio rank p; Conley-Taber placebo interval" if placebo
           else "no placebo runs (point estimate only)")
    return MethodEstimate(key=key, method=method, estimate=float(res.estimate), conf_low=lo, conf_high=hi, p_value=p,
                          se=float("nan"), inference=how, pre_rmspe=pre_rmspe(res.gap, start), path=path,
                          weights=res.weights, adjusted=adjusted, extra=extra)


def ascm(panel: Panel, *, start: int = oregon_data.START_YEAR, grid_size: int = 50, avg_grid_size: int = 101) -> MethodEstimate:
    """Ridge-augmented SCM with Chernozhukov-Wuthrich-Zhu conformal inference.

    Average effect: the 95% conformal interval of a *constant* effect over the three post windows
    (:func:`synth.augmented.conformal_average`), by test inversion with every assignment of the ten
    refitted residuals to the post windows (``permutations="iid"``, augsynth's default type:
    C(10, 3) = 120 assignments, p >= 1/120; exchangeable residuals assumed); its p-value tests no
    effect. The accepted set need not be an interval (a rising gap rejects constant effects near the
    mean): the reported interval is its hull, as augsynth reports intervals, and the note says so.
    The moving-block (cyclic shift) version cannot reach 95% with ten periods (p >= 1/10): its joint
    p-value is reported beside. Per window, p-values from the T0 + 1 cyclic shifts cannot fall below
    1 / (T0 + 1) = 0.125, so the per-window bands in the gap figure are 80% intervals.
    """
    from decrimkit.estimators import synth
    from decrimkit.estimators.synth import conformal_average

    res = synth.augmented(panel, treated=oregon_data.TREATED, start=start)
    n_pre = int(np.sum(~_post_mask(np.asarray(res.gap.index), start)))
    floor = 1.0 / (n_pre + 1)
    alpha_band = 0.2 if floor < 0.2 else 0.5
    conf = res.conformal(alpha_band, grid_size=grid_size)
    avg = conformal_average(res, alpha=0.05, grid_size=avg_grid_size, permutations="iid")
    table = conf.table.set_index("time")
    low = res.synthetic.copy() * np.nan
    high = low.copy()
    low.loc[table.index] = table["conf_low"].to_numpy()
    high.loc[table.index] = table["conf_high"].to_numpy()
    path = _path(res.observed, res.synthetic, low.to_numpy(), high.to_numpy())
    shape = "" if avg.contiguous else "; accepted set not an interval (hull shown: a constant effect near the mean is rejected)"
    return MethodEstimate.from_result(
        avg, estimate=float(res.estimate), key="ascm", method="Augmented SCM (ridge)",
        inference=f"conformal (CWZ), constant-effect test inversion over {avg.spec.options['n_assignments']} "
                  f"residual assignments (p >= {avg.p_floor:.4f}){shape}; moving-block joint p of no effect "
                  f"{conf.p_value_joint:.3f} (floor {1 / len(res.gap):.2f}); "
                  f"{int(100 * (1 - alpha_band))}% per-window bands in the gap figure",
        pre_rmspe=pre_rmspe(res.gap, start), path=path, weights=res.weights,
        extra={"result": res, "conformal": conf, "conformal_average": avg, "p_floor": floor,
               "band_level": 1 - alpha_band})


def sdid(panel: Panel, *, start: int = oregon_data.START_YEAR, seed: int = 0, n_reps: int = 200) -> MethodEstimate:
    """Synthetic difference-in-differences with placebo standard errors."""
    from decrimkit.estimators import synth

    res = synth.sdid(panel, se_method="placebo", n_reps=n_reps, seed=seed)
    return MethodEstimate.from_result(res, key="sdid", method="SDID",
                                      inference=f"placebo SE ({n_reps} replications), normal interval",
                                      pre_rmspe=pre_rmspe(res.gap, start), path=_path(res.observed, res.synthetic),
                                      weights=res.weights, extra={"result": res})


# ----------------------------------------------------------------------------- difference-in-differences
def did_path(panel: Panel, start: int = oregon_data.START_YEAR) -> pd.DataFrame:
    """Oregon and its parallel-trends counterfactual: Oregon's pre-mean plus the donors' mean change.

    With one treated unit, a balanced panel and no covariates, the mean post-window gap of this path
    equals the TWFE coefficient (the 2x2 difference in means).
    """
    wide = panel.to_wide("y")
    years = np.asarray(wide.columns, dtype="int64")
    pre = ~_post_mask(years, start)
    treated = panel.treated_units[0]
    obs = wide.loc[treated]
    donors = wide.drop(index=treated).mean(axis=0)
    cf = obs[pre].mean() + donors - donors[pre].mean()
    return _path(pd.Series(obs.to_numpy(), index=years), pd.Series(cf.to_numpy(), index=years))


def did_twfe(data: oregon_data.StudyData, *, years: tuple[int, int], covariates: tuple[str, ...] = (),
             start: int = oregon_data.START_YEAR) -> MethodEstimate:
    """TWFE DiD of Oregon against the equally weighted donor pool, with Conley-Taber inference.

    The interval and p-value are decrimkit's ``inference="conley_taber"``: each donor's TWFE residuals in
    Oregon's place give the distribution of Oregon's estimation error (Conley and Taber 2011); exact over
    the donors. It is the method whose size is within 3-7% on the one-state real-data placebo design
    (module notes); Ferman-Pinto (rescaled to Oregon's population; Ferman and Pinto 2019), which
    over-rejects there, is given in the note. The cluster-robust SE of a single treated cluster is refused.
    """
    from decrimkit.estimators import did

    panel = data.panel(years=years, covariates=covariates, start=start, population=True)
    res = did.twfe(panel, covariates=covariates, inference="conley_taber")
    fp = did.twfe(panel, covariates=covariates, inference="ferman_pinto")
    (fp_lo, fp_hi), fp_p = fp.conf_int().loc["treated"], float(fp.p_value[0])
    path = did_path(panel, start)
    adjusted = bool(covariates)
    name = "DiD (TWFE) + fentanyl proxy" if adjusted else "DiD (TWFE)"
    cluster_se = float(res.tidy().set_index("term").loc["treated", "se"])
    if adjusted:  # the plain parallel-trends path is not this model's counterfactual
        rm = float("nan")
    else:
        rm = pre_rmspe(path.set_index("year")["gap"], start)
    return MethodEstimate.from_result(
        res, term="treated", se=float("nan"), key="did_adj" if adjusted else "did", method=name,
        inference="Conley-Taber interval and p (donors' TWFE residuals in Oregon's place, exact; size 5.4% "
                  "on the one-state placebo laws)",
        pre_rmspe=rm, path=path, weights=None, adjusted=adjusted,
        note=(f"Ferman-Pinto (rescaled to Oregon's population; rejects 8.1% of one-state placebo "
              f"laws at 5%): [{fp_lo:.3g}, {fp_hi:.3g}], p = {fp_p:.2g}; analytic SE "
              f"{cluster_se:.3g} (one treated cluster: no cluster-robust p-value)"),
        extra={"result": res, "ct_errors": np.asarray(res.inference.draws[:, 0])})


# ----------------------------------------------------------------------------- matrix completion
def mc_nnm(panel: Panel, *, covariates: tuple[str, ...] = (), seed: int = 0, n_reps: int = 50,
           start: int = oregon_data.START_YEAR) -> MethodEstimate:
    """MC-NNM (Athey et al. 2021), the method of Zoorob et al.; with ``covariates=("surge",)`` the
    fentanyl-proxy-adjusted version. Placebo SE: random donors given Oregon's treatment pattern."""
    from decrimkit.estimators import synth

    res = synth.mc_nnm(panel, covariates=covariates, n_reps=n_reps, seed=seed)
    adjusted = bool(covariates)
    return MethodEstimate.from_result(res, key="mcnnm_adj" if adjusted else "mcnnm",
                                      method="MC-NNM + fentanyl proxy" if adjusted else "MC-NNM",
                                      inference=f"placebo SE ({n_reps} replications), normal interval",
                                      pre_rmspe=pre_rmspe(res.gap, start), path=_path(res.observed, res.synthetic),
                                      weights=None, adjusted=adjusted, extra={"result": res})


# ----------------------------------------------------------------------------- Bayesian SCM
def bayes_scm(panel: Panel, *, weights: str = "horseshoe", seed: int = 0, chains: int = 4, draws: int = 1000,
              tune: int = 1000, start: int = oregon_data.START_YEAR) -> MethodEstimate:
    """Bayesian SCM; the interval is the 95% HDI of the posterior average effect.

    ``weights="horseshoe"`` (sparse unconstrained weights with an intercept) is the main version:
    with 46 donors and seven pre-windows the Dirichlet(1) simplex prior pulls the weights towards
    uniform and misses Oregon's level (pre-RMSPE of several deaths per 100,000), so the Dirichlet
    version is shown as a second row in the full run.

    A failed convergence gate (r-hat, bulk ESS, divergences) is not hidden: the sampler's warning
    text is kept in ``note`` and printed in the report.
    """
    import warnings

    from decrimkit.errors import ConvergenceWarning
    from decrimkit.estimators import bayes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        res = bayes.synthetic_control(panel, treated=oregon_data.TREATED, start=start, weights=weights, chains=chains,
                                      draws=draws, tune=tune, seed=seed)
    lo, hi = res.hdi(0.05)
    cf = res.counterfactual()
    years = np.asarray(cf["time"], dtype="int64")
    path = _path(pd.Series(cf["observed"].to_numpy(), index=years), pd.Series(cf["cf_mean"].to_numpy(), index=years),
                 (cf["observed"] - cf["cf_high"]).to_numpy(), (cf["observed"] - cf["cf_low"]).to_numpy())
    w = res.effect("weights")
    donor_w = pd.Series(w["mean"].to_numpy(), index=w[w.columns[0]].astype(str).to_numpy(), name="weight")
    gate = [str(c.message) for c in caught if issubclass(c.category, ConvergenceWarning)]
    for c in caught:  # anything else is passed on unchanged
        if not issubclass(c.category, ConvergenceWarning):
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    diag = res.diagnostics_
    worst = diag.table.set_index("variable")
    stats = (f"max r-hat {worst['r_hat'].max():.2f}, min bulk ESS {worst['ess_bulk'].min():.0f}, "
             f"{diag.divergences} divergences")
    status = (f"converged ({stats})" if res.converged else
              f"NOT CONVERGED: convergence gate FAILED ({stats}); do not read this estimate as a result")
    note = status + ("; " + "; ".join(gate) if gate else "")
    key, name = ("bayes_scm", "Bayesian SCM (horseshoe)") if weights == "horseshoe" else \
        ("bayes_scm_dirichlet", "Bayesian SCM (Dirichlet weights)")
    return MethodEstimate(key=key, method=name, estimate=float(res.estimate), conf_low=float(lo), conf_high=float(hi),
                          p_value=float("nan"), se=float(res.se),
                          inference=f"95% HDI; {chains} chains x {draws} draws; P(effect < 0) = {res.p_negative:.3f}",
                          pre_rmspe=pre_rmspe(path.set_index("year")["gap"], start), path=path, weights=donor_w,
                          note=note, extra={"result": res, "diagnostics": diag.table}, converged=bool(res.converged))
