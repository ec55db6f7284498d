"""The sampling engine's adapter (estimators/bayes/_engine.py): the backend check and the data inputs.

- ``check_backend`` passes on the pinned versions and raises ``BackendError`` naming what changed when
  a function the engine calls disappears or loses an argument (simulated by patching the installed
  library), and the installed versions are the ones the adapter was tested with;
- ``model_functions`` turns ``pm.Data`` containers into inputs: the compiled log density at new data
  equals PyMC's own log density of the model with those data set (``pm.set_data``), exactly up to
  float rounding, so one compiled program serves every data set.
"""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pymc as pm
import pymc.initial_point
import pytest

from decrimkit.errors import BackendError, DecrimkitError
from decrimkit.estimators.bayes import _engine as engine


@pytest.fixture
def fresh_check():
    engine.check_backend.cache_clear()
    yield engine.check_backend
    engine.check_backend.cache_clear()


def test_backend_check_passes_on_the_pinned_versions(fresh_check):
    fresh_check()
    for dist, tested in engine.TESTED_VERSIONS.items():
        installed = importlib.metadata.version(dist)
        # a new major.minor must be checked against the engine (and TESTED_VERSIONS updated) before pinning
        assert installed.startswith(tested + "."), (dist, installed, tested)


def test_backend_check_names_a_lost_argument(fresh_check, monkeypatch):
    import blackjax.adaptation.mass_matrix

    def mass_matrix_adaptation(diagonal=True):  # the diagonal switch renamed
        raise AssertionError("never called")

    monkeypatch.setattr(blackjax.adaptation.mass_matrix, "mass_matrix_adaptation", mass_matrix_adaptation)
    with pytest.raises(BackendError, match=r"mass_matrix_adaptation no longer takes is_diagonal_matrix"):
        fresh_check()
    assert issubclass(BackendError, DecrimkitError)


def test_backend_check_names_a_missing_function(fresh_check, monkeypatch):
    monkeypatch.delattr(pymc.initial_point, "make_initial_point_fn")
    with pytest.raises(BackendError, match=r"pymc.initial_point.make_initial_point_fn is missing"):
        fresh_check()


def test_data_containers_are_inputs_of_the_compiled_log_density():
    rng = np.random.default_rng(3)
    y0, y1 = rng.normal(1.0, 2.0, 30), rng.normal(-1.0, 0.5, 30)
    with pm.Model() as model:
        y = pm.Data("y_data", y0)
        mu = pm.Normal("mu", 0.0, 5.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Deterministic("twice_mu", 2 * mu)
        pm.Normal("y", mu, sigma, observed=y)
    fns = engine.model_functions(model, data=("y_data",), outputs=("twice_mu",))
    point = {"mu": np.float64(0.3), "sigma_log__": np.float64(-0.2)}
    values = [point[name] for name in fns.value_names]
    pymc_logp = model.compile_logp()
    for data in (y0, y1):
        pm.set_data({"y_data": data}, model=model)
        np.testing.assert_allclose(float(fns.logp(*values, data)[0]), float(pymc_logp(point)), rtol=1e-12)
        np.testing.assert_allclose(float(fns.outputs(*values, data)[0]), 0.6, rtol=1e-15)
    with pytest.raises(DecrimkitError, match="no data container 'nope'"):
        engine.model_functions(model, data=("nope",))


def test_persistent_compilation_cache_is_off_on_request_and_never_in_the_working_directory(monkeypatch):
    from pathlib import Path

    engine.persistent_cache.cache_clear()
    try:
        monkeypatch.setenv(engine.CACHE_ENV, "0")
        assert engine.persistent_cache() is None
        engine.persistent_cache.cache_clear()
        monkeypatch.delenv(engine.CACHE_ENV)
        path = engine.persistent_cache()
        assert path is not None
        assert not Path(path).resolve().is_relative_to(Path.cwd().resolve())
    finally:
        engine.persistent_cache.cache_clear()


def test_schedule_is_stans_windows_then_the_draws():
    rows = engine.schedule(1000, 300)
    assert rows.shape == (1300, 4)
    tuning, slow, end, last = rows.T
    assert tuning[:1000].all() and not tuning[1000:].any()
    assert not slow[:75].any() and slow[75:950].all() and not slow[950:1000].any()  # 75 fast, slow, 50 fast
    # slow windows of 25, 50, 100, 200 and the remaining 500 steps end at these steps
    assert np.flatnonzero(end).tolist() == [99, 149, 249, 449, 949]
    assert np.flatnonzero(last).tolist() == [999]


def _keyed(y, *, prior_sd=5.0, family="normal", n_groups=3, fast=False):
    with pm.Model(coords={"group": range(n_groups)}) as model:
        data = pm.Data("y_data", y)
        mu = pm.Normal("mu", 0.0, prior_sd)
        effect = pm.ZeroSumNormal("effect", sigma=1.0, dims="group")
        pm.Deterministic("shifted", mu + effect, dims="group")
        if family == "normal":
            pm.Normal("y", mu, pm.HalfNormal("sigma", 5.0), observed=data)
        else:
            pm.Poisson("y", pm.math.exp(mu), observed=data)
    logp = engine.fast_logp(model, pm.math.sum(data * mu - pm.math.exp(mu))) if fast else None
    point = model.initial_point()
    shapes = [np.shape(point[v.name]) for v in model.value_vars]
    return engine.graph_key(engine.model_graphs(model, data=("y_data",), logp=logp), shapes)


def test_graph_key_is_equal_for_new_data_and_differs_for_any_change_of_the_model():
    """The engine finds a compiled program by graph_key without tracing JAX: the key must be equal for the same
    structure with new data of the same shape, and differ when a prior scale, the family, a dimension, the data's
    shape or the supplied log density differ (each would compile to another program)."""
    y0, y1 = np.arange(20.0), np.arange(20.0)[::-1] + 3.0
    base = _keyed(y0)
    assert base is not None and base == _keyed(y1)
    assert hash(base) == hash(_keyed(y1))
    changed = [_keyed(y0, prior_sd=5.5), _keyed(y0, family="poisson"), _keyed(y0, n_groups=4),
               _keyed(np.arange(21.0))]
    assert all(key is not None and key != base for key in changed)
    assert _keyed(y0, family="poisson", fast=True) not in (None, _keyed(y0, family="poisson"))
    assert _keyed(y0, family="poisson", fast=True) == _keyed(y1, family="poisson", fast=True)
