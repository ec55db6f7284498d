"""Sampling and the convergence gate shared by every Bayesian estimator.

:func:`sample` runs a built PyMC model through the package's NUTS engine (``sampler="blackjax"``, the
default: :mod:`._engine`, blackjax's NUTS kernel on the model's JAX log density, chains vectorised, the
compiled program reused for models of the same structure) or, as an external reference, PyMC's own
sampler (``sampler="pymc"``), and gathers prior predictive, posterior, posterior predictive,
log-likelihood and sampler statistics into one ArviZ ``InferenceData``. :func:`check_convergence` applies the gate:
an r-hat above 1.01, a bulk ESS below 400 or any divergent transition makes the fit *unconverged*,
which warns loudly (:class:`~decrimkit.errors.ConvergenceWarning`) or, under ``strict=True``, raises
:class:`~decrimkit.errors.ConvergenceError`.

Seeds: one user ``seed`` is split by NumPy's ``SeedSequence`` into independent seeds for the prior
predictive, the sampler and the posterior predictive, so the same seed gives the same draws on the
same machine.

References
----------
Vehtari, Gelman, Simpson, Carpenter and Buerkner (2021), "Rank-normalization, folding, and localization:
an improved R-hat for assessing convergence of MCMC", Bayesian Analysis 16(2), 667-718 (the r-hat and
ESS used here, and the 1.01 / 400 thresholds).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import ConvergenceError, ConvergenceWarning, SpecificationError
from decrimkit.extras import require
from decrimkit.limits import check_sampler
from decrimkit.numerics.keys import check_seed
from decrimkit.options import Sampler, check_option
from decrimkit.progress import counter, progress_enabled
from decrimkit.results import Summarised

from ._engine import sample_model

__all__ = ["sample", "check_convergence", "diagnose", "Diagnostics", "RHAT_MAX", "ESS_MIN", "validate_sampling", "merge_priors"]

# every Bayesian module imports this one: without the extra, importing any of them names what to install
require("bayes", "decrimkit's Bayesian estimators")

RHAT_MAX = 1.01
ESS_MIN = 400.0


def validate_sampling(*, sampler: str, chains: int, draws: int, tune: int, seed: int) -> None:
    """Raise :class:`SpecificationError` for impossible sampler settings (before any model is built)."""
    check_option("sampler", sampler, Sampler)
    for name, value, low in (("chains", chains, 1), ("draws", draws, 1), ("tune", tune, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SpecificationError(f"{name} must be an integer >= {low}, got {value!r}.")
    check_sampler(draws=draws, tune=tune, chains=chains)
    check_seed(seed)
    if sampler == "blackjax" and tune < 1:
        raise SpecificationError("sampler='blackjax' needs tune >= 1 warm-up steps to adapt its step size and "
                                 "mass matrix; pass tune=1000 (the default) or use sampler='pymc'.")


def _seeds(seed: int) -> tuple[int, int, int]:
    a, b, c = (int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3))
    return a, b, c


@contextmanager
def _quiet_pymc(progress: bool) -> Iterator[None]:
    """Silence PyMC's informational log lines (e.g. "use 4 chains") unless progress is asked for."""
    logger = logging.getLogger("pymc")
    level = logger.level
    if not progress:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def sample(
    model: Any,
    *,
    sampler: str = "blackjax",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    seed: int = 0,
    target_accept: float = 0.9,
    progress: bool | None = None,
    prior_draws: int = 500,
    predictive: bool = True,
    cores: int = 1,
    logp: Any = None,
) -> Any:
    """Sample ``model`` and return an ``InferenceData`` with every group the result needs.

    Parameters
    ----------
    model : pymc.Model
        A built model (no sampling has happened yet).
    sampler : {"blackjax", "pymc"}
        NUTS implementation: ``"blackjax"`` (default), the package's engine (:func:`._engine.sample_model`:
        blackjax's NUTS kernel on the model's JAX log density with Stan's windowed warm-up, chains
        vectorised in one compiled program), or ``"pymc"``, PyMC's own sampler (an external reference).
    chains, draws, tune : int
        Chains, kept draws per chain and warm-up (tuning) iterations per chain.
    seed : int
        Seed for the prior predictive, the sampler and the posterior predictive (split, never reused).
    target_accept : float
        NUTS target acceptance rate; higher values take smaller steps and avoid divergences.
    progress : bool, optional
        Show the sampler's progress bar. None (default) shows it where decrimkit shows its own bars
        (a terminal or a notebook kernel, unless ``DECRIMKIT_PROGRESS=0``; :mod:`decrimkit.progress`).
        The engine's bar advances by blocks of transitions (all chains at once).
    prior_draws : int
        Prior predictive draws (0 skips the ``prior`` group).
    predictive : bool
        Draw the posterior predictive (the ``posterior_predictive`` group).
    cores : int
        Processes for PyMC's own sampler (the engine runs all chains in one process, vectorised).

    logp : PyTensor scalar, optional
        An equivalent, cheaper log density for the engine to sample (the model's own up to a constant; see
        :func:`._engine.fast_logp`); PyMC's sampler and the predictive draws use the model as built.

    Returns
    -------
    arviz.InferenceData
        Groups ``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data`` and, as asked,
        ``prior``, ``prior_predictive``, ``posterior_predictive``.
    """
    import pymc as pm

    validate_sampling(sampler=sampler, chains=chains, draws=draws, tune=tune, seed=seed)
    check_sampler(prior_draws=prior_draws)
    progress = progress_enabled(None if progress is None else not progress)
    seed_prior, seed_nuts, seed_pp = _seeds(seed)
    kwargs: dict[str, Any] = {
        "draws": int(draws),
        "tune": int(tune),
        "chains": int(chains),
        "random_seed": seed_nuts,
        "progressbar": progress,
        "target_accept": target_accept,
        "idata_kwargs": {"log_likelihood": True},
        "compute_convergence_checks": False,
        "model": model,
    }
    if sampler == "pymc":
        kwargs.update(nuts_sampler="pymc", cores=int(cores))
    with _quiet_pymc(progress), warnings.catch_warnings():
        # PyMC recommends 4 chains through a UserWarning on some paths; the gate below judges convergence.
        warnings.filterwarnings("ignore", message=".*at least 4 chains.*")
        if sampler == "blackjax":
            with counter(f"NUTS, {chains} chains (warm-up + draws)", total=int(tune) + int(draws), unit="step",
                         disable=not progress) as advance:
                idata = sample_model(model, chains=int(chains), draws=int(draws), tune=int(tune),
                                     seed=seed_nuts, target_accept=target_accept,
                                     on_progress=lambda done, total: advance(done), logp=logp)
        else:
            idata = pm.sample(**kwargs)
        if prior_draws:
            prior = pm.sample_prior_predictive(draws=int(prior_draws), model=model, random_seed=seed_prior)
            idata.extend(prior)
        if predictive:
            pm.sample_posterior_predictive(
                idata, model=model, random_seed=seed_pp, progressbar=False, extend_inferencedata=True
            )
    return idata


@dataclass(frozen=True, eq=False, repr=False)
class Diagnostics(Summarised):
    """Convergence diagnostics of a posterior sample.

    Attributes
    ----------
    table : DataFrame
        One row per gated variable: worst (largest) ``r_hat`` and smallest ``ess_bulk``/``ess_tail``
        over its elements, and the element count.
    divergences : int
        Divergent transitions after warm-up, all chains.
    bfmi : ndarray
        Bayesian fraction of missing information per chain (below 0.3 suggests poor exploration).
    converged : bool
        False when any gate fails: r-hat > 1.01, bulk ESS < 400 or any divergence.
    problems : tuple of str
        One sentence per failed gate.
    notes : tuple of str
        Diagnostics that could not be computed and why, e.g. r-hat (NaN in ``table``) with one chain:
        it compares chains, so it needs at least two.
    """

    table: pd.DataFrame
    divergences: int
    bfmi: np.ndarray
    converged: bool
    problems: tuple[str, ...]
    title: str = "Convergence diagnostics"
    notes: tuple[str, ...] = ()

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()

    def _header(self) -> list[str]:
        bfmi = ", ".join(f"{b:.2f}" for b in self.bfmi)
        lines = [self.title, f"divergences: {self.divergences}; BFMI per chain: {bfmi}",
                 f"gate (r-hat <= {RHAT_MAX}, ESS-bulk >= {ESS_MIN:.0f}, no divergence): "
                 + ("passed" if self.converged else "FAILED")]
        lines.extend(f"problem: {p}" for p in self.problems)
        lines.extend(f"note: {n}" for n in self.notes)
        return lines


def diagnose(idata: Any, var_names: Sequence[str]) -> Diagnostics:
    """Compute r-hat, bulk/tail ESS, divergences and BFMI for ``var_names`` of ``idata``.

    R-hat compares chains: with one chain it is not computed (NaN in the table, and a note says so), and
    the r-hat gate is not applied; a variable whose r-hat is undefined (constant draws) gets NaN and a note.
    """
    import arviz as az

    post = idata.posterior[list(var_names)]
    n_chains = idata.posterior.sizes["chain"]
    rhat = None
    if n_chains > 1:
        with np.errstate(divide="ignore", invalid="ignore"):  # constant draws: 0/0, named in a note below
            rhat = az.rhat(post)
    ess_b = az.ess(post, method="bulk")
    ess_t = az.ess(post, method="tail")

    def worst(values: Any, pick: Any) -> float:
        v = np.asarray(values, dtype="float64").reshape(-1)
        return float(pick(v)) if np.isfinite(v).any() else np.nan  # all-NaN: no numpy warning, NaN

    rows = []
    for v in var_names:
        size = int(np.asarray(post[v].isel(chain=0, draw=0)).size)
        rows.append({
            "variable": v,
            "size": size,
            "r_hat": worst(rhat[v], np.nanmax) if rhat is not None and size else np.nan,
            "ess_bulk": worst(ess_b[v], np.nanmin) if size else np.nan,
            "ess_tail": worst(ess_t[v], np.nanmin) if size else np.nan,
        })
    table = pd.DataFrame(rows)
    notes = []
    if rhat is None:
        notes.append(f"R-hat needs >= 2 chains; this sample has {n_chains}, so r-hat is NaN and not gated "
                     f"(run chains=4 to check convergence across chains)")
    else:
        undefined = table.loc[table["r_hat"].isna() & (table["size"] > 0), "variable"]
        if len(undefined):
            notes.append(f"r-hat is undefined (NaN) for {', '.join(undefined)}: constant draws within chains")
    diverging = idata.sample_stats.get("diverging")
    n_div = int(np.asarray(diverging).sum()) if diverging is not None else 0
    bfmi = np.asarray(az.bfmi(idata), dtype="float64") if "energy" in idata.sample_stats else np.array([])
    problems = []
    bad_r = table.loc[table["r_hat"] > RHAT_MAX]
    if n_chains > 1 and len(bad_r):
        problems.append(
            f"r-hat above {RHAT_MAX} for {', '.join(bad_r['variable'])} (max {bad_r['r_hat'].max():.3f})"
        )
    bad_e = table.loc[table["ess_bulk"] < ESS_MIN]
    if len(bad_e):
        problems.append(
            f"bulk ESS below {ESS_MIN:.0f} for {', '.join(bad_e['variable'])} (min {bad_e['ess_bulk'].min():.0f})"
        )
    if n_div:
        problems.append(f"{n_div} divergent transitions after warm-up")
    return Diagnostics(table=table, divergences=n_div, bfmi=bfmi, converged=not problems,
                       problems=tuple(problems), notes=tuple(notes))


def check_convergence(idata: Any, var_names: Sequence[str], *, estimator: str, strict: bool) -> Diagnostics:
    """Diagnose and gate: warn with :class:`ConvergenceWarning`, or raise :class:`ConvergenceError` if strict.

    The advice in the message (more draws and tuning, a higher ``target_accept``) is what usually
    fixes each failure; a model that keeps diverging needs stronger priors or a reparameterisation.
    """
    diag = diagnose(idata, var_names)
    if not diag.converged:
        msg = (
            f"{estimator}: the sampler has not converged: {'; '.join(diag.problems)}. Do not report these "
            f"draws as they are: rerun with more draws/tune (and chains=4), or a higher target_accept; "
            f"persistent divergences call for tighter priors."
        )
        if strict:
            raise ConvergenceError(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return diag


def merge_priors(defaults: dict[str, float], priors: dict[str, float] | None, estimator: str) -> dict[str, float]:
    """Defaults updated by the caller's ``priors``; unknown names or non-positive scales raise.

    Every prior in the Bayesian family is set by one positive number (a standard deviation or scale),
    so overriding a prior means passing ``priors={"name": value}``.
    """
    out = dict(defaults)
    for name, value in (priors or {}).items():
        if name not in defaults:
            raise SpecificationError(
                f"{estimator}: unknown prior {name!r}; the priors you can set are "
                f"{', '.join(sorted(defaults))} (see the docs for what each scales)."
            )
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            np.isfinite(value) and value > 0
        ):
            raise SpecificationError(f"{estimator}: prior {name!r} must be a positive number, got {value!r}.")
        out[name] = float(value)
    return out
