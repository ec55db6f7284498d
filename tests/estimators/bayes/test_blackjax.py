"""sampler="blackjax": blackjax NUTS on the PyMC model's JAX log density (estimators/bayes/_sampling.py).

Checks that its posterior agrees with the numpyro path, that a seed fixes the draws, and that the
InferenceData has the groups and sampler statistics the convergence gate reads.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest

from decrimkit.errors import SpecificationError
from decrimkit.estimators.bayes._sampling import diagnose, sample

# 40 draws from Normal(1, 2): the posterior of (mu, sigma) is well identified and has a positive
# constraint (sigma), so the log-transform and its back-transformation are exercised.
_Y = np.random.default_rng(20240601).normal(1.0, 2.0, size=40)
_SETTINGS = dict(chains=2, draws=500, tune=400)


def _model() -> pm.Model:
    """A fresh model per sample (PyMC's predictive draws are taken on the model each time)."""
    with pm.Model(coords={"obs": np.arange(_Y.size)}) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Deterministic("twice_mu", 2.0 * mu)
        pm.Normal("y", mu, sigma, observed=_Y, dims="obs")
    return model


@pytest.fixture(scope="module")
def fits():
    blackjax = sample(_model(), sampler="blackjax", seed=11, prior_draws=50, **_SETTINGS)
    # the predictive groups use their own seeds, so the posterior draws do not depend on them
    again = sample(_model(), sampler="blackjax", seed=11, prior_draws=0, predictive=False, **_SETTINGS)
    numpyro = sample(_model(), sampler="numpyro", seed=11, prior_draws=0, predictive=False, **_SETTINGS)
    return blackjax, again, numpyro


def test_blackjax_agrees_with_numpyro(fits):
    import arviz as az

    bj, _, npy = fits
    for name in ("mu", "sigma", "twice_mu"):
        a, b = bj.posterior[name], npy.posterior[name]
        mcse = np.hypot(float(az.mcse(bj, var_names=[name])[name]), float(az.mcse(npy, var_names=[name])[name]))
        # two independent MCMC runs of the same posterior: their means differ by Monte Carlo error
        # only; 3 combined Monte Carlo SEs bounds that difference with ~99.7% probability
        assert abs(float(a.mean()) - float(b.mean())) <= 3 * mcse, name
    # the deterministic is computed from the constrained draws, exactly
    np.testing.assert_allclose(bj.posterior["twice_mu"], 2 * bj.posterior["mu"], rtol=1e-12)
    assert (bj.posterior["sigma"] > 0).all()


def test_blackjax_same_seed_same_draws(fits):
    bj, again, _ = fits
    for name in ("mu", "sigma"):
        np.testing.assert_array_equal(bj.posterior[name].to_numpy(), again.posterior[name].to_numpy())
    np.testing.assert_array_equal(bj.sample_stats["energy"].to_numpy(), again.sample_stats["energy"].to_numpy())
    # the two chains come from different split keys and jittered starts
    assert not np.array_equal(bj.posterior["mu"][0].to_numpy(), bj.posterior["mu"][1].to_numpy())


def test_blackjax_idata_layout_and_gate(fits):
    bj, _, npy = fits
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data", "prior",
                  "prior_predictive", "posterior_predictive"):
        assert group in bj.groups(), group
    assert dict(bj.posterior.sizes) == {"chain": 2, "draw": 500}
    assert set(bj.posterior.data_vars) == set(npy.posterior.data_vars) == {"mu", "sigma", "twice_mu"}
    for stat in ("diverging", "energy", "acceptance_rate", "tree_depth", "n_steps", "lp", "step_size"):
        assert bj.sample_stats[stat].shape == (2, 500), stat
    assert bj.sample_stats["diverging"].dtype == bool
    assert bj.log_likelihood["y"].shape == (2, 500, _Y.size)
    assert list(bj.log_likelihood["y"].dims) == ["chain", "draw", "obs"]
    # pointwise log-likelihood at each draw, recomputed by hand from the constrained draws
    mu = bj.posterior["mu"].to_numpy()[..., None]
    sigma = bj.posterior["sigma"].to_numpy()[..., None]
    hand = -0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * ((_Y - mu) / sigma) ** 2
    np.testing.assert_allclose(bj.log_likelihood["y"].to_numpy(), hand, rtol=1e-10)
    diag = diagnose(bj, ["mu", "sigma"])
    assert diag.divergences == 0 and diag.bfmi.shape == (2,)
    assert diag.converged, diag



def test_blackjax_needs_warm_up():
    with pytest.raises(SpecificationError, match="tune >= 1"):
        sample(_model(), sampler="blackjax", tune=0)
