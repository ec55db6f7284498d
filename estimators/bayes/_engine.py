"""The Bayesian family's one NUTS engine, and its one adapter onto PyMC's JAX bridge and blackjax.

Everything decrimkit uses from PyMC, PyTensor and blackjax beyond building a ``pm.Model`` and calling
``pm.sample`` lives in this module (``tools/check_imports.py`` fails on a private PyMC, PyTensor or
blackjax import anywhere else, and this module itself uses public names only):

- :func:`model_functions`: a PyMC model's log density (unconstrained space, Jacobians included) and
  chosen outputs as JAX functions of ``(values, data)``. The model's ``pm.Data`` containers become
  inputs instead of constants, so one compiled program serves every data set of the same shape: a
  posterior fit, each replicate of simulation-based calibration, each replicate of a power grid.
- :func:`initial_points`: PyMC's jittered initial points (``make_initial_point_fn``), one per chain,
  redrawn where the log density is not finite.
- :func:`nuts`: **the** NUTS loop of the package: per chain, blackjax window adaptation (step size to
  ``target_accept``, diagonal or dense mass matrix) for ``tune`` steps, then ``draws`` transitions in a
  ``lax.scan``; chains (and data sets) ``vmap``-ed under one ``jax.jit``.
- :func:`to_inferencedata`: the draws mapped to the model's constrained variables and deterministics
  plus the pointwise log-likelihood, laid out as PyMC lays out its JAX samplers' output.
- :func:`check_backend`: raises :class:`~decrimkit.errors.BackendError` naming what changed when the
  installed PyMC, PyTensor or blackjax no longer offer what the functions above call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from decrimkit.errors import BackendError, SpecificationError
from decrimkit.extras import require

__all__ = ["ModelFunctions", "model_functions", "initial_points", "nuts", "to_inferencedata", "sample_model",
           "check_backend", "TESTED_VERSIONS"]

require("bayes", "decrimkit's Bayesian estimators")

# the versions this module was written and tested against (constraints.txt pins them)
TESTED_VERSIONS = {"pymc": "5.28", "pytensor": "2.38", "blackjax": "1.7"}
_NUTS_INFO = ("is_divergent", "energy", "num_trajectory_expansions", "num_integration_steps", "acceptance_rate")


@cache
def check_backend() -> None:
    """Raise :class:`BackendError` when an installed library lacks a function or argument used here.

    Checked once per process: PyMC's ``get_jaxified_graph(inputs=, outputs=)``,
    ``make_initial_point_fn(model=, jitter_rvs=, return_transformed=)`` and its ArviZ helpers; PyTensor's
    ``graph_replace``; blackjax's ``window_adaptation`` keywords and the fields of its NUTS info.
    """
    import blackjax
    import pymc
    import pytensor

    versions = f"PyMC {pymc.__version__}, PyTensor {pytensor.__version__}, blackjax {blackjax.__version__}"
    tested = ", ".join(f"{k} {v}.x" for k, v in TESTED_VERSIONS.items())
    needs: list[tuple[str, Callable[[], Any], Sequence[str]]] = [
        ("pymc.sampling.jax.get_jaxified_graph", lambda: _attr("pymc.sampling.jax", "get_jaxified_graph"),
         ("inputs", "outputs")),
        ("pymc.initial_point.make_initial_point_fn", lambda: _attr("pymc.initial_point", "make_initial_point_fn"),
         ("model", "jitter_rvs", "return_transformed")),
        ("pymc.backends.arviz.coords_and_dims_for_inferencedata",
         lambda: _attr("pymc.backends.arviz", "coords_and_dims_for_inferencedata"), ("model",)),
        ("pymc.backends.arviz.find_observations", lambda: _attr("pymc.backends.arviz", "find_observations"), ()),
        ("pymc.backends.arviz.find_constants", lambda: _attr("pymc.backends.arviz", "find_constants"), ()),
        ("pymc.util.get_default_varnames", lambda: _attr("pymc.util", "get_default_varnames"),
         ("include_transformed",)),
        ("pytensor.graph.replace.graph_replace", lambda: _attr("pytensor.graph.replace", "graph_replace"),
         ("strict",)),
        ("blackjax.window_adaptation", lambda: blackjax.window_adaptation,
         ("is_mass_matrix_diagonal", "target_acceptance_rate", "adaptation_info_fn")),
        ("blackjax.adaptation.base.get_filter_adapt_info_fn",
         lambda: _attr("blackjax.adaptation.base", "get_filter_adapt_info_fn"), ()),
        ("blackjax.mcmc.nuts.as_top_level_api", lambda: _attr("blackjax.mcmc.nuts", "as_top_level_api"),
         ("logdensity_fn", "step_size", "inverse_mass_matrix")),
    ]
    for name, get, params in needs:
        try:
            fn = get()
        except (ImportError, AttributeError) as exc:
            raise BackendError(f"{name} is missing ({versions}; decrimkit's sampling engine was tested with "
                               f"{tested}): install the versions in constraints.txt.") from exc
        try:
            have = set(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            have = set()
        lacking = [p for p in params if p not in have]
        if lacking:
            raise BackendError(f"{name} no longer takes {', '.join(lacking)} ({versions}; decrimkit's sampling "
                               f"engine was tested with {tested}): install the versions in constraints.txt.")
    fields = getattr(_attr("blackjax.mcmc.nuts", "NUTSInfo"), "_fields", ())
    missing = [f for f in _NUTS_INFO if f not in fields]
    if missing:
        raise BackendError(f"blackjax's NUTSInfo lacks {', '.join(missing)} ({versions}; tested with {tested}): "
                           f"install the versions in constraints.txt.")


def _attr(module: str, name: str) -> Any:
    import importlib

    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class ModelFunctions:
    """A model's JAX functions of ``(*values, *data)``.

    ``logp``: log density of the value variables (unconstrained), returns ``[scalar]``; ``outputs``:
    the requested model variables; ``posterior``: every free variable (constrained) and deterministic
    (``posterior_names``); ``loglik``: pointwise log-likelihood of each observed variable
    (``loglik_names``). ``value_names``: the value variables in argument order; ``data_names``: the
    ``pm.Data`` containers taken as inputs, in argument order after the values.
    """

    logp: Callable[..., Any]
    outputs: Callable[..., Any]
    posterior: Callable[..., Any]
    loglik: Callable[..., Any]
    value_names: tuple[str, ...]
    posterior_names: tuple[str, ...]
    loglik_names: tuple[str, ...]
    data_names: tuple[str, ...]


def model_functions(model: Any, data: Sequence[str] = (), outputs: Sequence[str] = ()) -> ModelFunctions:
    """JAX functions of ``model`` with the ``pm.Data`` containers named in ``data`` as inputs.

    Containers not named stay constants of the compiled program (their current values).
    """
    from pymc.sampling.jax import get_jaxified_graph
    from pymc.util import get_default_varnames
    from pytensor.graph.replace import graph_replace

    check_backend()
    shared = []
    for name in data:
        try:
            shared.append(model[name])
        except KeyError as exc:
            raise SpecificationError(f"the model has no data container {name!r}.") from exc
    inputs = [s.type(f"{s.name}_input") for s in shared]
    swap = dict(zip(shared, inputs))
    values = list(model.value_vars)

    def jaxify(outs: list[Any]) -> Callable[..., Any]:
        outs = graph_replace(outs, swap, strict=False) if swap else outs
        return get_jaxified_graph(inputs=values + inputs, outputs=list(outs))

    post_vars = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    observed = list(model.observed_RVs)
    return ModelFunctions(
        logp=jaxify([model.logp()]),
        outputs=jaxify(model.replace_rvs_by_values([model[n] for n in outputs])) if outputs else (lambda *a: []),
        posterior=jaxify(post_vars),
        loglik=jaxify(list(model.logp(vars=observed, sum=False))) if observed else (lambda *a: []),
        value_names=tuple(v.name for v in values),
        posterior_names=tuple(v.name for v in post_vars),
        loglik_names=tuple(v.name for v in observed),
        data_names=tuple(data),
    )


def initial_points(model: Any, n: int, seed: int, fns: ModelFunctions | None = None,
                   data: Sequence[Any] = ()) -> list[np.ndarray]:
    """``n`` jittered initial points (PyMC's: uniform(-1, 1) jitter on the unconstrained scale), stacked
    per value variable with a leading axis of length ``n``; a point whose log density is not finite is
    redrawn (up to 20 times)."""
    from pymc.initial_point import make_initial_point_fn

    check_backend()
    if fns is not None:
        import jax

        logp = jax.jit(fns.logp)
    fn = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), return_transformed=True)
    names = [v.name for v in model.value_vars]
    seeds = np.random.SeedSequence(seed).generate_state(20 * n).reshape(n, 20)
    points = []
    for i in range(n):
        for attempt in range(20):
            point = fn(int(seeds[i, attempt]))
            arrays = [np.asarray(point[k], dtype="float64") for k in names]
            if fns is None or np.isfinite(float(logp(*arrays, *[d[i] for d in data])[0])):
                break
        else:
            raise SpecificationError("no initial point with a finite log density in 20 jittered tries; check the "
                                     "data and priors (e.g. counts far from the prior's scale).")
        points.append(arrays)
    return [np.stack([p[k] for p in points]) for k in range(len(names))]


def nuts(
    logdensity: Callable[..., Any],
    *,
    tune: int,
    draws: int,
    target_accept: float,
    collect: Callable[[Any, Any, Any], Any],
    dense_mass: bool = False,
) -> Callable[..., Any]:
    """The package's NUTS loop, compiled: ``run(keys, positions, data)`` for a batch of chains.

    ``logdensity(position, data)``: log density of one chain's position (a list of arrays) given its data
    (a tuple of arrays, possibly empty). Each chain runs blackjax's window adaptation for ``tune`` steps
    (step size to ``target_accept``; diagonal mass matrix, dense with ``dense_mass=True``), then ``draws``
    NUTS transitions; ``collect(state, info, data)`` picks what each transition keeps. ``run`` takes
    ``keys`` (B, 2), ``positions`` (list of (B, ...) arrays) and ``data`` (tuple of (B, ...) arrays) and
    returns the collected pytree with leading axes (B, draws): chains and data sets share the batch axis
    B, all under one ``jax.jit(jax.vmap(...))``.
    """
    import blackjax
    import jax
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    check_backend()
    if tune < 1:
        raise SpecificationError("NUTS needs tune >= 1 warm-up steps to adapt its step size and mass matrix.")

    def one_chain(key: Any, position: list[Any], data: tuple[Any, ...]) -> Any:
        def ld(pos: list[Any]) -> Any:
            return logdensity(pos, data)

        k_warm, k_draw = jax.random.split(key)
        warm = blackjax.window_adaptation(blackjax.nuts, ld, is_mass_matrix_diagonal=not dense_mass,
                                          target_acceptance_rate=target_accept,
                                          adaptation_info_fn=get_filter_adapt_info_fn())
        (state, params), _ = warm.run(k_warm, position, num_steps=int(tune))
        step = blackjax.nuts(ld, **params).step

        def transition(st: Any, k: Any) -> tuple[Any, Any]:
            st, info = step(k, st)
            return st, collect(st, info, dict(params, data=data))

        _, trace = jax.lax.scan(transition, state, jax.random.split(k_draw, int(draws)))
        return trace

    return jax.jit(jax.vmap(one_chain))


def _stats(state: Any, info: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "diverging": info.is_divergent,
        "energy": info.energy,
        "tree_depth": info.num_trajectory_expansions,
        "n_steps": info.num_integration_steps,
        "acceptance_rate": info.acceptance_rate,
        "lp": state.logdensity,
        "step_size": params["step_size"],
    }


def to_inferencedata(model: Any, fns: ModelFunctions, positions: Sequence[Any], stats: dict[str, Any], *,
                     data: Sequence[Any] = (), tune: int, library: str = "blackjax") -> Any:
    """``InferenceData`` of draws ``positions`` (value variables, each (chains, draws, ...)).

    Groups ``posterior`` (constrained free variables and deterministics), ``sample_stats``,
    ``log_likelihood`` (pointwise), ``observed_data``, ``constant_data``, with the model's coords and
    dims. ``data``: the data-container values the draws were made with (one per ``fns.data_names``,
    shared by all chains); the model's containers are set to them for the observed and constant groups.
    """
    import arviz as az
    import blackjax
    import jax
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants, find_observations

    def per_draw(fn: Callable[..., Any]) -> Callable[..., Any]:
        return jax.jit(jax.vmap(jax.vmap(lambda *pos: fn(*pos, *data))))

    post = per_draw(fns.posterior)(*positions)
    loglik = per_draw(fns.loglik)(*positions) if fns.loglik_names else []
    coords, dims = coords_and_dims_for_inferencedata(model)
    return az.from_dict(
        posterior={k: np.asarray(v) for k, v in zip(fns.posterior_names, post)},
        sample_stats={k: np.asarray(v) for k, v in stats.items()},
        log_likelihood={k: np.asarray(v) for k, v in zip(fns.loglik_names, loglik)},
        observed_data=find_observations(model),
        constant_data=find_constants(model),
        coords=coords,
        dims=dims,
        attrs={"inference_library": library, "inference_library_version": blackjax.__version__,
               "tuning_steps": tune},
    )


def sample_model(model: Any, *, chains: int, draws: int, tune: int, seed: int, target_accept: float,
                 dense_mass: bool = False) -> Any:
    """NUTS (:func:`nuts`) on ``model`` as it stands, ``chains`` chains vmapped; the posterior as InferenceData."""
    import jax
    import jax.numpy as jnp

    from decrimkit.numerics.keys import key_from_seed

    fns = model_functions(model)
    init = initial_points(model, chains, seed, fns)

    def logdensity(pos: list[Any], data: tuple[Any, ...]) -> Any:
        return fns.logp(*pos)[0]

    def collect(state: Any, info: Any, params: dict[str, Any]) -> Any:
        return state.position, _stats(state, info, params)

    run = nuts(logdensity, tune=tune, draws=draws, target_accept=target_accept, collect=collect,
               dense_mass=dense_mass)
    keys = jax.random.split(key_from_seed(seed), chains)
    positions, stats = run(keys, [jnp.asarray(v) for v in init], ())
    return to_inferencedata(model, fns, positions, stats, tune=tune)
