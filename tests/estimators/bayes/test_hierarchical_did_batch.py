"""bayes.hierarchical_did_batch: many panels of one shape through one compiled sampler, the same posterior as
separate ``hierarchical_did`` calls."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from decrimkit import Panel
from decrimkit.errors import ConvergenceWarning, DesignError, SpecificationError
from decrimkit.estimators import bayes


def _panel(seed: int, treated: dict[str, int]) -> Panel:
    """8 units x 6 years of negative-binomial deaths (population 2e5, about 40 a year), no effect;
    ``treated``: unit -> adoption year."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 0.3, 8)
    g = rng.normal(0, 0.1, 6)
    rows = [{"unit": f"s{i}", "year": 2015 + t, "deaths": int(rng.negative_binomial(20, 20 / (20 + 40 * np.exp(a[i] + g[t])))),
             "pop": 2e5, "adopted": treated.get(f"s{i}", 0)} for i in range(8) for t in range(6)]
    return Panel.from_frame(pd.DataFrame(rows), unit="unit", time="year", outcome="deaths", cohort="adopted",
                            population="pop")


# two panels of one shape: different treated units and adoption years (treatment and jurisdiction are data)
PANELS = ((_panel(1, {"s0": 2018, "s3": 2019}), 11), (_panel(2, {"s5": 2017, "s6": 2019}), 12))


def _models(panel: Panel) -> dict[str, str]:
    return {u: "m" for u in panel.treated_units}


@pytest.mark.parametrize("deviations", ["none", "ar1"])
def test_batch_model_is_hierarchical_dids_model(deviations):
    """The batch's one compiled model, fed panel i's data, has the log density of the model hierarchical_did
    builds for panel i (with its data as constants), at random points: equal to rtol 1e-10 (deterministic)."""
    import jax

    from decrimkit.estimators.bayes import _hdid_batch as B
    from decrimkit.estimators.bayes import _hierarchical_did as H
    from decrimkit.estimators.bayes._engine import model_functions

    designs = [H.hdid_design(p, policy_model=_models(p), family="negative_binomial", exposure="population")
               for p, _ in PANELS]
    batch = B._compiled(designs[0], family="negative_binomial", priors=dict(H.HDID_PRIORS), deviations=deviations,
                        tune=3, draws=4, target_accept=0.9)
    logp_batch = jax.jit(batch.fns.logp)
    rng = np.random.default_rng(0)
    for des in designs:
        own = H.hdid_model(des, family="negative_binomial", priors=dict(H.HDID_PRIORS), deviations=deviations)
        logp_own = jax.jit(model_functions(own).logp)
        data = des.data("negative_binomial")
        for _ in range(3):
            point = [rng.normal(0, 0.3, np.shape(own.initial_point()[v.name])) for v in own.value_vars]
            np.testing.assert_allclose(float(logp_batch(*point, *data)[0]), float(logp_own(*point)[0]), rtol=1e-10)


def test_batch_gives_the_draws_of_separate_calls():
    """Same seed, same model, same engine: each panel's first draws equal those of its own ``hierarchical_did``
    call (sampler="blackjax", the engine the batch runs): same initial points, chain keys and transitions.
    Only a few transitions are compared: the batch feeds the data as inputs where the single fit compiles them
    as constants, the two programs may round differently in the last bits, and over a long run NUTS (a chaotic
    map) lets such differences grow until the chains part; the long-run agreement is that of one posterior."""
    # Poisson: hierarchical_did samples its likelihood without the constant -log(y!) (the engine's cheaper
    # form), the batch the model's own log density; the two differ by a constant, so NUTS moves alike
    sampling = {"chains": 2, "draws": 4, "tune": 3, "deviations": "none", "family": "poisson"}
    panels = [p for p, _ in PANELS]
    seeds = [s for _, s in PANELS]
    with warnings.catch_warnings():  # 4 draws fail the convergence gate; the equality below is the check
        warnings.simplefilter("ignore", ConvergenceWarning)
        # ArviZ's r-hat of a chain whose few draws have not moved divides by zero (both paths alike)
        warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
        warnings.filterwarnings("ignore", "invalid value", RuntimeWarning)
        batch = bayes.hierarchical_did_batch(panels, policy_model=[_models(p) for p in panels], seeds=seeds,
                                             **sampling)
        single = [bayes.hierarchical_did(p, policy_model=_models(p), seed=s, sampler="blackjax", progress=False,
                                         **sampling) for p, s in PANELS]
    assert len(batch) == 2
    for b, s in zip(batch, single):
        for var in ("att", "mu_0", "theta", "unit_effect"):
            np.testing.assert_allclose(b.draws(var), s.draws(var), rtol=1e-6, atol=1e-9, err_msg=var)
        assert b.spec.options == s.spec.options and b.spec.seed == s.spec.seed
        assert b.diagnostics().divergences == s.diagnostics().divergences
    # the two panels really are different data sets (different treated units)
    assert batch[0].idata.posterior["theta"].coords["jurisdiction"].values.tolist() == ["s0", "s3"]
    assert batch[1].idata.posterior["theta"].coords["jurisdiction"].values.tolist() == ["s5", "s6"]
    assert not np.allclose(batch[0].draws("att"), batch[1].draws("att"))


def test_batch_checks_its_inputs():
    p0, p1 = PANELS[0][0], PANELS[1][0]
    with pytest.raises(SpecificationError, match="2 seeds for 1 panels"):
        bayes.hierarchical_did_batch([p0], policy_model=_models(p0), seeds=[1, 2])
    with pytest.raises(SpecificationError, match="one per panel"):
        bayes.hierarchical_did_batch([p0, p1], policy_model=[_models(p0)], seeds=[1, 2])
    three = _panel(3, {"s1": 2018, "s2": 2018, "s4": 2019})
    with pytest.raises(DesignError, match="one shape"):
        bayes.hierarchical_did_batch([p0, three], policy_model=[_models(p0), _models(three)], seeds=[1, 2])
    with pytest.raises(SpecificationError, match="batch_size"):
        bayes.hierarchical_did_batch([p0], policy_model=_models(p0), seeds=[1], batch_size=0)
