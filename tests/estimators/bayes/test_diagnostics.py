"""Convergence diagnostics (``diagnose`` in estimators/bayes/_sampling.py) with one chain and with constant draws.

R-hat compares chains (Vehtari et al. 2021): with one chain it is undefined. ``diagnose`` then reports it
as NaN with a note ("R-hat needs >= 2 chains") instead of numpy's "All-NaN slice encountered"
RuntimeWarning (pytest turns warnings into errors, so each test here also shows that none is emitted).
The ESS columns are still ArviZ's, exactly.
"""

from __future__ import annotations

import arviz as az
import numpy as np

from decrimkit.estimators.bayes._sampling import ESS_MIN, diagnose


def _idata(n_chains: int, constant: bool = False) -> az.InferenceData:
    rng = np.random.default_rng(11)
    theta = rng.normal(size=(n_chains, 600, 3))
    if constant:
        theta[..., 1] = 2.5  # one element fixed (e.g. a pinned parameter): its r-hat is undefined
    return az.from_dict(
        posterior={"mu": rng.normal(size=(n_chains, 600)), "theta": theta},
        sample_stats={"diverging": np.zeros((n_chains, 600), dtype=bool), "energy": rng.normal(size=(n_chains, 600))},
    )


def test_one_chain_reports_rhat_as_nan_with_a_note():
    idata = _idata(1)
    d = diagnose(idata, ["mu", "theta"])
    assert d.table["r_hat"].isna().all()
    assert d.table["size"].tolist() == [1, 3]
    assert d.notes == (
        "R-hat needs >= 2 chains; this sample has 1, so r-hat is NaN and not gated "
        "(run chains=4 to check convergence across chains)",
    )
    assert "note: R-hat needs >= 2 chains" in d.summary()
    ess = az.ess(idata.posterior[["mu", "theta"]], method="bulk")
    assert d.table.set_index("variable").loc["theta", "ess_bulk"] == float(np.asarray(ess["theta"]).min())
    # the gate is ESS and divergences only; independent normal draws pass it
    assert d.table["ess_bulk"].min() >= ESS_MIN and d.converged and d.problems == ()


def test_two_chains_give_arviz_rhat_and_no_note():
    idata = _idata(2)
    d = diagnose(idata, ["mu", "theta"])
    rhat = az.rhat(idata.posterior[["mu", "theta"]])
    assert d.table.set_index("variable").loc["theta", "r_hat"] == float(np.asarray(rhat["theta"]).max())
    assert d.notes == ()


def test_an_undefined_rhat_among_defined_ones_is_named():
    d = diagnose(_idata(2, constant=True), ["mu", "theta"])
    table = d.table.set_index("variable")
    assert np.isfinite(table.loc["mu", "r_hat"])
    # theta's worst r-hat is over its defined elements; an all-constant variable would read NaN
    assert np.isfinite(table.loc["theta", "r_hat"])
    idata = _idata(2, constant=True)
    idata.posterior["pinned"] = idata.posterior["theta"].isel(theta_dim_0=1)
    d = diagnose(idata, ["mu", "pinned"])
    assert np.isnan(d.table.set_index("variable").loc["pinned", "r_hat"])
    assert d.notes == ("r-hat is undefined (NaN) for pinned: constant draws within chains",)
