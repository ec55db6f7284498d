"""Posterior summaries come from ArviZ (estimators/bayes/results.py) and equal the definitions.

Draws with known layout (4 chains x 1000, a scalar and a 3-vector with a ``policy_model`` dimension)
are wrapped in a ``Posterior``; ``effect()`` must give the posterior mean and sd (``ddof=1``) exactly,
ArviZ's Monte Carlo SE, r-hat and bulk ESS exactly, P(< 0) exactly, and HDI bounds equal (to 1e-12)
to the shortest interval holding ``floor(prob n) + 1`` sorted draws, computed here from the definition.
The hand-written HDI that ArviZ replaced took the shortest window of ``ceil(prob n)`` draws, one draw
fewer when ``prob n`` is whole: against it the ArviZ interval is at least as wide, wider by at most one
gap between adjacent draws, and its bounds lie within 0.05 posterior sd (where the density is flat the
shortest window's position moves by more than one draw spacing, so this is the stated tolerance).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from decrimkit.estimators.bayes._sampling import diagnose
from decrimkit.estimators.bayes.results import Level, Posterior, hdi
from decrimkit.results import Spec


def _shortest(x: np.ndarray, prob: float, arviz: bool = True) -> tuple[float, float]:
    x = np.sort(x)
    k = int(np.floor(prob * x.size)) + 1 if arviz else int(np.ceil(prob * x.size))
    widths = x[k - 1:] - x[: x.size - k + 1]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k - 1])


@pytest.fixture(scope="module")
def posterior():
    rng = np.random.default_rng(7)
    mu_0 = rng.normal(-0.1, 0.2, (4, 1000))
    mu_model = rng.normal([-0.3, 0.0, 0.2], [0.1, 0.3, 0.05], (4, 1000, 3)) + 0.02 * rng.standard_t(3, (4, 1000, 1))
    stats = {"diverging": np.zeros((4, 1000), dtype=bool), "energy": rng.normal(0, 1, (4, 1000))}
    idata = az.from_dict(posterior={"mu_0": mu_0, "mu_model": mu_model}, sample_stats=stats, coords={"policy_model": ["a", "b", "c"]},
                         dims={"mu_model": ["policy_model"]})
    levels = {"overall": Level(("mu_0",), None, "term", log=True),
              "model": Level(("mu_model",), "policy_model", "policy_model", log=True)}
    return Posterior(idata=idata, spec=Spec(estimator="bayes.pool"), levels=levels, headline=("overall", "mu_0"),
                     scale="log rate ratio", diagnostics_=diagnose(idata, ["mu_0", "mu_model"]))


@pytest.mark.parametrize("prob", [0.95, 0.9])
def test_effect_table_equals_the_definitions(posterior, prob):
    tab = posterior.effect("model", hdi_prob=prob).set_index("policy_model")
    draws = np.asarray(posterior.idata.posterior["mu_model"])
    mcse = np.asarray(az.mcse(posterior.idata, var_names=["mu_model"])["mu_model"])
    rhat = np.asarray(az.rhat(posterior.idata, var_names=["mu_model"])["mu_model"])
    ess = np.asarray(az.ess(posterior.idata, var_names=["mu_model"], method="bulk")["mu_model"])
    for k, label in enumerate(["a", "b", "c"]):
        x = draws[..., k].reshape(-1)
        row = tab.loc[label]
        np.testing.assert_allclose(row["mean"], x.mean(), rtol=1e-12)
        np.testing.assert_allclose(row["sd"], x.std(ddof=1), rtol=1e-12)
        np.testing.assert_allclose([row["mcse"], row["r_hat"], row["ess_bulk"]], [mcse[k], rhat[k], ess[k]],
                                   rtol=1e-12)
        assert row["p_negative"] == (x < 0).mean()
        np.testing.assert_allclose(row["pct_change"], np.mean(100 * np.expm1(x)), rtol=1e-12)
        np.testing.assert_allclose([row["hdi_low"], row["hdi_high"]], _shortest(x, prob), rtol=1e-12)
        np.testing.assert_allclose(hdi(x, prob), [row["hdi_low"], row["hdi_high"]], rtol=1e-12)
        old_lo, old_hi = _shortest(x, prob, arviz=False)  # the replaced hand-written HDI
        np.testing.assert_allclose([row["hdi_low"], row["hdi_high"]], [old_lo, old_hi], atol=0.05 * x.std())
        width, old_width = row["hdi_high"] - row["hdi_low"], old_hi - old_lo
        assert old_width <= width <= old_width + np.diff(np.sort(x)).max()


def test_headline_uses_the_same_summary(posterior):
    x = np.asarray(posterior.idata.posterior["mu_0"]).reshape(-1)
    np.testing.assert_allclose(posterior.estimate, x.mean(), rtol=1e-12)
    np.testing.assert_allclose(posterior.se, x.std(ddof=1), rtol=1e-12)
    np.testing.assert_allclose(posterior.hdi(0.1), _shortest(x, 0.9), rtol=1e-12)
