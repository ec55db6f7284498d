"""Results of the Bayesian family: a posterior sample with labelled effects and its diagnostics.

Every Bayesian estimator returns a :class:`Posterior` (or :class:`ITSPosterior`, which adds the
observed-versus-counterfactual series). It speaks the decrimkit result vocabulary with posterior
meanings:

- ``estimate``: posterior mean of the headline effect; ``se``: its posterior standard deviation;
- ``conf_int(alpha)``: the ``1 - alpha`` **highest-density intervals** (HDI) by term, ``hdi(alpha)`` the
  headline effect's (95% by default; credible, not confidence, intervals; no p-values);
- ``effect(level=)``: one row per effect at a level (``"jurisdiction"``, ``"model"``, ``"overall"``
  or the levels an estimator defines) with posterior mean, sd, 95% HDI, P(effect < 0), Monte Carlo SE,
  r-hat and bulk ESS;
- ``diagnostics()``: r-hat, bulk/tail ESS, divergences and BFMI (:class:`Diagnostics`), and
  ``converged`` (False when the gate failed: the result then carries the warning text in ``spec.notes``);
- ``idata``: the ArviZ ``InferenceData`` (prior, posterior, posterior predictive, log-likelihood,
  sampler statistics, observed data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from decrimkit.results import Spec, Summarised, frozen_array, tidy_frame

from ._sampling import Diagnostics

__all__ = ["Level", "Posterior", "ITSPosterior", "hdi", "summarise_draws"]

HDI_PROB = 0.95


class Level(NamedTuple):
    """Where the effects of one level live in ``idata``.

    ``variables``: one vector variable with dimension ``dim`` (a row per coordinate), or several
    scalar variables (a row per variable, ``dim=None``); ``label``: the name of the row-label column;
    ``group``: the ``idata`` group holding the draws; ``log``: effects on a log scale (adds ``pct_change``).
    """

    variables: tuple[str, ...]
    dim: str | None
    label: str
    group: str = "posterior"
    log: bool = False


def hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    """Highest-density interval of the (flattened) draws: ArviZ's ``az.hdi``, the shortest interval
    holding ``prob`` of the draws (the HDI of a unimodal posterior)."""
    import arviz as az

    lo, hi = np.asarray(az.hdi(np.asarray(draws, dtype="float64").reshape(-1), hdi_prob=prob))
    return float(lo), float(hi)


def summarise_draws(draws: np.ndarray, prob: float = HDI_PROB) -> dict[str, float]:
    """Posterior mean, sd (``ddof=1``), HDI (:func:`hdi`) and P(< 0) of flat draws."""
    d = np.asarray(draws, dtype="float64").reshape(-1)
    lo, hi = hdi(d, prob)
    return {"mean": float(d.mean()), "sd": float(d.std(ddof=1)), "hdi_low": lo, "hdi_high": hi,
            "p_negative": float((d < 0).mean())}


def _chain_draws(idata: Any, group: str, var: str) -> Any:
    return getattr(idata, group)[var]


@dataclass(frozen=True, eq=False, repr=False)
class Posterior(Summarised):
    """A posterior sample with labelled effect levels, a headline effect and convergence diagnostics.

    Attributes
    ----------
    idata : arviz.InferenceData
        Prior, posterior, posterior predictive, log-likelihood, sampler statistics, observed data.
    spec : Spec
        Estimator, options (sampler, chains, draws, tune, priors, family), seed, sizes, exclusions, notes.
    levels : mapping
        Level name -> :class:`Level`.
    headline : tuple (level, row label)
        The effect that ``estimate``, ``se`` and ``conf_int`` describe.
    scale : str
        What the effects measure, e.g. ``"log rate ratio"`` or ``"difference in outcome"``.
    diagnostics_ : Diagnostics
        Computed once when the result was made (see :meth:`diagnostics`).
    observed : str
        Name of the observed variable (for posterior predictive checks).
    """

    idata: Any
    spec: Spec
    levels: Mapping[str, Level]
    headline: tuple[str, Any]
    scale: str
    diagnostics_: Diagnostics
    observed: str = "y"
    title: str = "Bayesian posterior"

    # ------------------------------------------------------------------ draws and effects
    def draws(self, variable: str, group: str = "posterior") -> np.ndarray:
        """Draws of ``variable`` as a read-only array, chains stacked: shape (chains * draws, ...)."""
        da = _chain_draws(self.idata, group, variable)
        arr = np.asarray(da)
        return frozen_array(arr.reshape((-1,) + arr.shape[2:]))

    def effect(self, level: str = "overall", hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Posterior summary of the effects at ``level``.

        Returns
        -------
        DataFrame
            Columns: the level's label, ``mean``, ``sd``, ``hdi_low``, ``hdi_high`` (``hdi_prob`` HDI,
            95% by default), ``p_negative`` (posterior P(effect < 0)), ``mcse`` (Monte Carlo SE of the
            mean), ``r_hat``, ``ess_bulk`` and, on a log scale, ``pct_change`` (posterior mean of
            100 (exp(effect) - 1)).
        """
        if level not in self.levels:
            from decrimkit.errors import SpecificationError

            raise SpecificationError(
                f"level={level!r} is not available here; use one of {', '.join(map(repr, self.levels))}."
            )
        import arviz as az

        lev = self.levels[level]
        # ArviZ's summary: mean, sd, HDI, Monte Carlo SE of the mean, rank-normalised r-hat, bulk ESS
        summary = az.summary(self.idata, var_names=list(lev.variables), group=lev.group, hdi_prob=hdi_prob,
                             kind="all", round_to="none")
        low, high = (c for c in summary.columns if c.startswith("hdi_"))
        rows = []
        for var in lev.variables:
            da = _chain_draws(self.idata, lev.group, var)
            flat = np.asarray(da).reshape(da.sizes["chain"] * da.sizes["draw"], -1)
            labels = list(np.asarray(da[lev.dim]).tolist()) if lev.dim is not None else [var]
            stats = summary.loc[[i for i in summary.index if i == var or i.startswith(var + "[")]]
            for k, lab in enumerate(labels):
                st = stats.iloc[k]
                row = {lev.label: lab, "mean": float(st["mean"]), "sd": float(st["sd"]),
                       "hdi_low": float(st[low]), "hdi_high": float(st[high]),
                       "p_negative": float((flat[:, k] < 0).mean()), "mcse": float(st["mcse_mean"]),
                       "r_hat": float(st["r_hat"]), "ess_bulk": float(st["ess_bulk"])}
                if lev.log:
                    row["pct_change"] = float(np.mean(100 * np.expm1(flat[:, k])))
                rows.append(row)
        return pd.DataFrame(rows)

    def _headline_row(self, hdi_prob: float = HDI_PROB) -> pd.Series:
        level, label = self.headline
        tab = self.effect(level, hdi_prob)
        return tab.loc[tab[self.levels[level].label] == label].iloc[0]

    @property
    def estimate(self) -> float:
        """Posterior mean of the headline effect."""
        return float(self._headline_row()["mean"])

    @property
    def se(self) -> float:
        """Posterior standard deviation of the headline effect."""
        return float(self._headline_row()["sd"])

    def hdi(self, alpha: float = 0.05) -> tuple[float, float]:
        """The ``1 - alpha`` highest-density (credible) interval of the headline effect."""
        row = self._headline_row(1 - alpha)
        return float(row["hdi_low"]), float(row["hdi_high"])

    @staticmethod
    def inference_method(alpha: float = 0.05) -> str:
        return f"Bayesian posterior: {100 * (1 - alpha):g}% highest-density credible interval, no p-value"

    @property
    def p_negative(self) -> float:
        """Posterior probability that the headline effect is below zero."""
        return float(self._headline_row()["p_negative"])

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> Diagnostics:
        """r-hat, bulk and tail ESS per variable, divergences, BFMI per chain, and the gate's verdict."""
        return self.diagnostics_

    @property
    def converged(self) -> bool:
        """False when r-hat > 1.01, bulk ESS < 400 or any divergence (the result then warned)."""
        return self.diagnostics_.converged

    # ------------------------------------------------------------------ tables
    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """Every level stacked: the result columns (posterior mean and sd, ``1 - alpha`` HDI bounds, no
        p-value), then ``level`` and ``p_negative``. ``conf_int(alpha)`` gives the same HDIs by term;
        :meth:`hdi` the headline effect's."""
        frames = []
        for name, lev in self.levels.items():
            tab = self.effect(name, 1 - alpha)
            frames.append(tidy_frame(tab[lev.label].astype(str), tab["mean"], tab["sd"], tab["hdi_low"],
                                     tab["hdi_high"], np.nan, self.inference_method(alpha), level=name,
                                     p_negative=tab["p_negative"].to_numpy()))
        return pd.concat(frames, ignore_index=True)

    def _header(self) -> list[str]:
        lines = super()._header()
        lo, hi = self.hdi()
        lines.append(f"effect scale: {self.scale}; inference: {self.inference_method()}")
        lines.append(f"headline ({self.headline[0]}: {self.headline[1]}): {self.estimate:.4g} "
                     f"(sd {self.se:.4g}; 95% HDI {lo:.4g} .. {hi:.4g}; P(<0) {self.p_negative:.3f})")
        lines.append("convergence: " + ("passed" if self.converged else "FAILED: " + "; ".join(
            self.diagnostics_.problems)))
        return lines

    # ------------------------------------------------------------------ plots
    def plot_data(self, kind: str = "forest") -> pd.DataFrame:
        """The frame a figure shows: ``"forest"`` (effects by level) or ``"ppc"`` (observed vs predicted)."""
        if kind == "forest":
            return self.tidy()
        if kind == "ppc":
            obs = np.asarray(self.idata.observed_data[self.observed]).reshape(-1)
            pred = np.asarray(self.idata.posterior_predictive[self.observed])
            pred = pred.reshape(-1, obs.size)
            q = np.quantile(pred, [0.025, 0.5, 0.975], axis=0)
            return pd.DataFrame({"observed": obs, "pred_low": q[0], "pred_median": q[1], "pred_high": q[2],
                                 "pred_mean": pred.mean(axis=0)})
        from decrimkit.errors import SpecificationError

        raise SpecificationError(f"kind={kind!r} is not a plot of this result; use 'forest' or 'ppc'.")

    def plot(self, kind: str = "forest", ax: Any = None) -> Any:
        """Forest plot of the effects by level (``"forest"``) or a posterior predictive check (``"ppc"``)."""
        from decrimkit.plotting import bayes as bplot

        if kind == "forest":
            return bplot.forest_plot(self.plot_data("forest"), ax=ax, scale=self.scale,
                                     groups=self._forest_groups(), title=self.title)
        if kind == "ppc":
            pred = np.asarray(self.idata.posterior_predictive[self.observed])
            obs = np.asarray(self.idata.observed_data[self.observed]).reshape(-1)
            return bplot.ppc_plot(obs, pred.reshape(-1, obs.size), ax=ax, title=f"{self.title}: predictive check")
        return self.plot_data(kind)  # raises for an unknown kind

    def _forest_groups(self) -> Mapping[str, str] | None:
        """Row term -> policy model, for grouping jurisdictions in the forest plot (None if not hierarchical)."""
        groups = self.spec.options.get("policy_model_of")
        return dict(groups) if groups else None


@dataclass(frozen=True, eq=False, repr=False)
class ITSPosterior(Posterior):
    """An interrupted time series posterior with the observed and counterfactual series.

    ``series``: one row per month: ``time``, ``post`` (policy in force), ``observed``, ``excluded``
    (left out of the likelihood), counterfactual posterior-predictive mean and 95% HDI (``cf_mean``,
    ``cf_low``, ``cf_high``), the effect ``observed - counterfactual`` (``effect_mean`` ...) and its
    running sum over the post period (``cumulative_mean`` ...). Negative effects are averted counts.
    """

    series: pd.DataFrame = field(default_factory=pd.DataFrame)
    title: str = "Bayesian interrupted time series"

    def counterfactual(self) -> pd.DataFrame:
        """Observed vs counterfactual by month, with monthly and cumulative effects (95% HDIs)."""
        return self.series.copy()

    def plot_data(self, kind: str = "counterfactual") -> pd.DataFrame:
        if kind in ("counterfactual", "cumulative"):
            return self.counterfactual()
        return super().plot_data(kind)

    def plot(self, kind: str = "counterfactual", ax: Any = None) -> Any:
        """``"counterfactual"``: observed vs counterfactual with band; ``"cumulative"``; ``"forest"``; ``"ppc"``."""
        from decrimkit.plotting import bayes as bplot

        if kind in ("counterfactual", "cumulative"):
            return bplot.its_plot(self.counterfactual(), kind=kind, ax=ax, start=self.spec.options.get("start"),
                                  title=self.title)
        return super().plot(kind, ax=ax)
