"""Simulation-based calibration (SBC) of the three-level pooling model.

For each replication a parameter set and a data set are drawn from the model's own prior (PyMC's
prior predictive), the model is refitted to that data set with NUTS, and we record whether the
90% highest-density interval of each model-level effect ``mu_m`` (and of ``mu_0``) covers the value
that generated the data, and the rank of that value among the posterior draws. If the model is
implemented and sampled correctly, coverage is 90% in expectation and ranks are uniform (Talts et al.).

The refits use the PyMC model's own log density (``pool_model`` with its estimates in a ``pm.Data``
container, compiled to JAX once) sampled by the package's one NUTS engine (``_engine.nuts``: blackjax
windowed warm-up), one chain per replication, from PyMC's jittered initial points, all replications
batched with ``jax.vmap`` in one compiled program: the same model as
:func:`~decrimkit.estimators.bayes.pool` with ``sampler="blackjax"``.

References
----------
Talts, Betancourt, Simpson, Vehtari and Gelman (2018), "Validating Bayesian inference algorithms with
simulation-based calibration", arXiv:1804.06788.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import SpecificationError
from decrimkit.limits import MAX_REFITS, check_replications
from decrimkit.numerics.keys import check_seed, key_from_seed
from decrimkit.results import Spec, Summarised

from ._engine import initial_points, model_functions, nuts
from ._pool import POOL_PRIORS, PoolDesign, pool_model
from ._sampling import merge_priors
from .results import hdi

__all__ = ["run_sbc", "SBCResult", "main"]


@dataclass(frozen=True, eq=False, repr=False)
class SBCResult(Summarised):
    """SBC outcome. ``table``: one row per parameter with ``n_reps``, ``coverage`` (share of replications
    whose ``prob`` HDI covers the truth), ``rank_chi2_p`` (chi-square test of uniform ranks in 10 bins) and
    ``mean_divergences``; ``covered``: (n_reps, n_params) booleans; ``ranks``: (n_reps, n_params)."""

    table: pd.DataFrame
    covered: np.ndarray
    ranks: np.ndarray
    prob: float
    spec: Spec
    title: str = "Simulation-based calibration: bayes.pool"

    def tidy(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def model_coverage(self) -> float:
        """Coverage pooled over the model-level effects ``mu_m`` (all replications)."""
        rows = self.table["parameter"].str.startswith("mu_model")
        return float(self.covered[:, rows.to_numpy()].mean())

    def passes(self, low: float = 0.85, high: float = 0.95) -> bool:
        """True when the pooled model-level coverage lies in ``[low, high]``."""
        return low <= self.model_coverage <= high


def _design(sites_per_model: Sequence[int], se: Sequence[float] | None) -> PoolDesign:
    n_sites = int(sum(sites_per_model))
    ses = np.asarray(se if se is not None else np.linspace(0.1, 0.4, n_sites), dtype="float64")
    if ses.shape != (n_sites,) or (ses <= 0).any():
        raise SpecificationError(f"se must hold {n_sites} positive standard errors, one per site.")
    model_of_site = np.repeat(np.arange(len(sites_per_model)), sites_per_model)
    return PoolDesign(estimate=np.zeros(n_sites), se=ses, site=np.arange(n_sites), model_of_site=model_of_site,
                      sites=[f"site{k}" for k in range(n_sites)], models=[f"m{m}" for m in range(len(sites_per_model))])


def _fit_all(model: Any, keys: Any, ys: Any, *, seed: int, tune: int, draws: int, target_accept: float) -> tuple[Any, Any, Any]:
    """NUTS refits of every replicate data set with the package's engine (one chain each, vmapped).
    Returns mu_0 draws (R, D), mu_model draws (R, D, M) and divergences per replicate (R,)."""
    import jax.numpy as jnp

    fns = model_functions(model, data=("estimate",), outputs=("mu_0", "mu_model"))

    def logdensity(pos: list[Any], data: tuple[Any, ...]) -> Any:
        return fns.logp(*pos, *data)[0]

    def collect(state: Any, info: Any, params: dict[str, Any]) -> Any:
        mu0, mum = fns.outputs(*state.position, *params["data"])
        return mu0, mum, info.is_divergent

    run = nuts(logdensity, tune=tune, draws=draws, target_accept=target_accept, collect=collect)
    data = (jnp.asarray(ys),)
    init = initial_points(model, len(ys), seed, fns, data)
    mu0, mum, div = run(keys, [jnp.asarray(v) for v in init], data)
    return mu0, mum, div.sum(axis=1)


def run_sbc(
    n_reps: int = 100,
    *,
    sites_per_model: Sequence[int] = (3, 3, 2),
    se: Sequence[float] | None = None,
    priors: dict[str, float] | None = None,
    tune: int = 500,
    draws: int = 500,
    prob: float = 0.9,
    target_accept: float = 0.95,
    seed: int = 0,
) -> SBCResult:
    """Simulation-based calibration of :func:`~decrimkit.estimators.bayes.pool` with ``n_reps`` replications.

    Parameters
    ----------
    n_reps : int
        Replications (``make validate`` uses at least 100; tests use a few dozen).
    sites_per_model : sequence of int
        Sites in each policy model of the simulated meta-analysis (default 3 models with 3, 3, 2 sites).
    se : sequence of float, optional
        Known standard errors of the site estimates (default evenly spaced 0.1 .. 0.4).
    priors : dict, optional
        Prior scales of the pooling model (the data are simulated from the same priors).
    tune, draws : int
        Warm-up and kept NUTS iterations per replication (one chain each).
    prob : float
        Credible mass of the HDIs whose coverage is checked.
    seed : int
        Seed for the prior draws and the samplers.

    Returns
    -------
    SBCResult
        Coverage and rank-uniformity per parameter; ``passes()`` checks model-level coverage in [0.85, 0.95].
    """
    import jax
    import pymc as pm
    from scipy import stats

    if isinstance(n_reps, bool) or not isinstance(n_reps, (int, np.integer)) or n_reps < 2:
        raise SpecificationError(f"n_reps must be an integer >= 2, got {n_reps!r}.")
    check_replications("n_reps", n_reps, maximum=MAX_REFITS)
    check_seed(seed)
    pri = merge_priors(POOL_PRIORS, priors, "run_sbc")
    design = _design(sites_per_model, se)
    model = pool_model(design, priors=pri, data=True)
    prior = pm.sample_prior_predictive(draws=int(n_reps), model=model, random_seed=seed)
    truth_mu0 = np.asarray(prior.prior["mu_0"]).reshape(n_reps)
    truth_mum = np.asarray(prior.prior["mu_model"]).reshape(n_reps, -1)
    ys = np.asarray(prior.prior_predictive["y"]).reshape(n_reps, -1)
    keys = jax.random.split(key_from_seed(seed), n_reps)
    fit = _fit_all(model, keys, ys, seed=seed, tune=int(tune), draws=int(draws), target_accept=target_accept)
    mu0, mum, div = (np.asarray(a) for a in fit)
    draws_all = np.concatenate([mu0[..., None], mum], axis=-1)          # (R, D, 1 + M)
    truth = np.column_stack([truth_mu0, truth_mum])                     # (R, 1 + M)
    names = ["mu_0"] + [f"mu_model[{m}]" for m in design.models]
    covered = np.zeros(truth.shape, dtype=bool)
    for r in range(n_reps):
        for k in range(truth.shape[1]):
            lo, hi = hdi(draws_all[r, :, k], prob)
            covered[r, k] = lo <= truth[r, k] <= hi
    ranks = (draws_all < truth[:, None, :]).sum(axis=1)
    rows = []
    for k, name in enumerate(names):
        counts = np.histogram(ranks[:, k], bins=10, range=(0, draws))[0]
        rows.append({"parameter": name, "n_reps": n_reps, "coverage": float(covered[:, k].mean()),
                     "rank_chi2_p": float(stats.chisquare(counts).pvalue),
                     "mean_divergences": float(div.mean())})
    spec = Spec(estimator="bayes.calibration.run_sbc",
                options={"sites_per_model": list(sites_per_model), "se": design.se.tolist(), "priors": pri,
                         "tune": tune, "draws": draws, "prob": prob, "target_accept": target_accept,
                         "sampler": "decrimkit NUTS engine (blackjax NUTS kernel, Stan's windowed warm-up), 1 chain per replication, vmapped"},
                seed=seed, n_units=len(design.sites), n_obs=n_reps)
    return SBCResult(table=pd.DataFrame(rows), covered=covered, ranks=ranks, prob=prob, spec=spec)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m decrimkit.estimators.bayes.calibration --reps 100 --out DIR``: write ``sbc.csv``/``sbc.md``;
    exit 1 when model-level coverage of the 90% intervals falls outside [0.85, 0.95]."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/validation"))
    args = parser.parse_args(argv)
    res = run_sbc(args.reps, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    res.table.to_csv(args.out / "sbc.csv", index=False)
    (args.out / "sbc.md").write_text(
        f"# {res.title}\n\n{res.table.to_markdown(index=False) if _has_tabulate() else res.table.to_string()}\n\n"
        f"Model-level coverage of {res.prob:.0%} HDIs: {res.model_coverage:.3f} "
        f"({'within' if res.passes() else 'OUTSIDE'} 0.85-0.95), {args.reps} replications, seed {args.seed}.\n"
    )
    print(res)
    print(f"model-level coverage: {res.model_coverage:.3f}")
    return 0 if res.passes() else 1


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
