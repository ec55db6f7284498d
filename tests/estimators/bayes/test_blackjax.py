"""sampler="blackjax": blackjax NUTS on the PyMC model's JAX log density (estimators/bayes/_sampling.py).

The package's one NUTS engine, the default sampler. Checks that its posterior agrees with PyMC's own NUTS
(an external reference), that a seed fixes the draws, that the InferenceData has the groups and sampler
statistics the convergence gate reads, and that a second model of the same structure reuses the
compiled program (new data, nothing compiled).
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
# 4 chains (the package default) and the package's default seed 0. The gate's r-hat <= 1.01 fails by chance on
# this model for about one seed in twelve at these lengths: seed 11, used before the engine gained its one-kernel
# warm-up, gives a folded r-hat of 1.0103 for sigma (one chain's sd 0.242 against 0.20-0.23, bulk ESS 1,500);
# 2 chains x 500 draws with seeds 0-11 gave r-hat above 1.01 once (seed 11), as blackjax's own warm-up did not
_SETTINGS = dict(chains=4, draws=500, tune=400)
_SEED = 0


def _model(y: np.ndarray = _Y) -> pm.Model:
    """A fresh model per sample (PyMC's predictive draws are taken on the model each time)."""
    with pm.Model(coords={"obs": np.arange(y.size)}) as model:
        data = pm.Data("y_data", y, dims="obs")
        mu = pm.Normal("mu", 0.0, 5.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Deterministic("twice_mu", 2.0 * mu)
        pm.Normal("y", mu, sigma, observed=data, dims="obs")
    return model


@pytest.fixture(scope="module")
def fits():
    blackjax = sample(_model(), sampler="blackjax", seed=_SEED, prior_draws=50, **_SETTINGS)
    # the predictive groups use their own seeds, so the posterior draws do not depend on them
    again = sample(_model(), sampler="blackjax", seed=_SEED, prior_draws=0, predictive=False, **_SETTINGS)
    pymc = sample(_model(), sampler="pymc", seed=_SEED, prior_draws=0, predictive=False, **_SETTINGS)
    return blackjax, again, pymc


def test_blackjax_agrees_with_pymc(fits):
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
    # the chains come from different split keys and jittered starts
    assert not np.array_equal(bj.posterior["mu"][0].to_numpy(), bj.posterior["mu"][1].to_numpy())


def test_blackjax_idata_layout_and_gate(fits):
    bj, _, npy = fits
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data", "prior",
                  "prior_predictive", "posterior_predictive"):
        assert group in bj.groups(), group
    assert dict(bj.posterior.sizes) == {"chain": 4, "draw": 500}
    assert set(bj.posterior.data_vars) == set(npy.posterior.data_vars) == {"mu", "sigma", "twice_mu"}
    for stat in ("diverging", "energy", "acceptance_rate", "tree_depth", "n_steps", "lp", "step_size"):
        assert bj.sample_stats[stat].shape == (4, 500), stat
    assert bj.sample_stats["diverging"].dtype == bool
    assert bj.log_likelihood["y"].shape == (4, 500, _Y.size)
    assert list(bj.log_likelihood["y"].dims) == ["chain", "draw", "obs"]
    # pointwise log-likelihood at each draw, recomputed by hand from the constrained draws
    mu = bj.posterior["mu"].to_numpy()[..., None]
    sigma = bj.posterior["sigma"].to_numpy()[..., None]
    hand = -0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * ((_Y - mu) / sigma) ** 2
    np.testing.assert_allclose(bj.log_likelihood["y"].to_numpy(), hand, rtol=1e-10)
    diag = diagnose(bj, ["mu", "sigma"])
    assert diag.divergences == 0 and diag.bfmi.shape == (4,)
    assert diag.converged, diag



def test_blackjax_needs_warm_up():
    with pytest.raises(SpecificationError, match="tune >= 1"):
        sample(_model(), sampler="blackjax", tune=0)


def test_a_model_of_the_same_structure_reuses_the_compiled_program(fits):
    """New data of the same shape: the engine's programs are reused (nothing traced again, so not compiled),
    the draws follow the new data; another shape traces (and compiles, unless on disk) anew."""
    import jax.monitoring

    from decrimkit.estimators.bayes import _engine

    compiled: list[str] = []

    def on_event(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/jaxpr_trace_duration":
            compiled.append(str(kwargs.get("fun_name", "")))

    jax.monitoring.register_event_duration_secs_listener(on_event)
    before = len(_engine._COMPILED)
    try:
        # another number of draws too: neither the program nor the transforms of the draws depend on it
        shifted = sample(_model(_Y + 10.0), sampler="blackjax", seed=_SEED, prior_draws=0, predictive=False,
                         **dict(_SETTINGS, draws=430))
        reused, kept = list(compiled), len(_engine._COMPILED)
        sample(_model(_Y[:30]), sampler="blackjax", seed=11, chains=2, draws=50, tune=50, prior_draws=0,
               predictive=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(on_event)
    # found by graph_key: nothing traced at all (no JAX function built, no structure_key jaxpr)
    assert reused == [], reused
    assert "chunk_chain" in compiled[len(reused):]
    assert kept == before and len(_engine._COMPILED) == min(before + 1, _engine._COMPILED_MAX)
    # the shifted data moved the posterior of mu by the shift (sample mean 1.06 -> 11.06, sd of mean ~0.3)
    bj = fits[0]
    assert abs(float(shifted.posterior["mu"].mean()) - float(bj.posterior["mu"].mean()) - 10.0) < 0.2
