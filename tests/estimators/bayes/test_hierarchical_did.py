"""bayes.hierarchical_did: recovery of known jurisdiction and model effects on a simulated panel."""

from __future__ import annotations

import pytest

from decrimkit.errors import SpecificationError
from decrimkit.estimators import bayes


@pytest.fixture(scope="module")
def fitted(hier_panel, hier_truth):
    return bayes.hierarchical_did(hier_panel, policy_model=hier_truth[1], family="poisson", chains=2, draws=800,
                                  tune=800, seed=4, target_accept=0.95)


def test_recovers_jurisdiction_effects(fitted, hier_truth):
    THETA = hier_truth[0]  # noqa: N806
    assert fitted.converged, fitted.diagnostics()
    jur = fitted.effect("jurisdiction").set_index("jurisdiction")
    for unit, theta in THETA.items():
        assert jur.loc[unit, "hdi_low"] <= theta <= jur.loc[unit, "hdi_high"], (unit, jur.loc[unit])
    mod = fitted.effect("model").set_index("policy_model")
    # model A's jurisdictions have effects -0.4 .. -0.6, model B's -0.1 .. 0.1
    assert mod.loc["A", "mean"] < -0.2 < mod.loc["B", "mean"]
    assert mod.loc["A", "p_negative"] > 0.9
    over = fitted.effect("overall").set_index("term")
    assert over.loc["att", "mean"] == pytest.approx(sum(THETA.values()) / 6, abs=0.1)
    assert "pct_change" in over.columns
    with pytest.raises(SpecificationError, match="level="):
        fitted.effect("county")


def test_forest_and_ppc(fitted):
    import matplotlib.figure

    assert isinstance(fitted.plot("forest"), matplotlib.figure.Figure)
    assert isinstance(fitted.plot("ppc"), matplotlib.figure.Figure)
    ppc = fitted.plot_data("ppc")
    assert ((ppc["observed"] >= ppc["pred_low"]) & (ppc["observed"] <= ppc["pred_high"])).mean() > 0.85


def test_policy_model_checks(hier_panel, hier_truth):
    with pytest.raises(SpecificationError, match="no policy model"):
        bayes.hierarchical_did(hier_panel, policy_model={"u0": "A"})
    with pytest.raises(SpecificationError, match="not a column"):
        bayes.hierarchical_did(hier_panel, policy_model="model")
    with pytest.raises(SpecificationError, match="exposure"):
        bayes.hierarchical_did(hier_panel, policy_model=hier_truth[1], exposure="households")
