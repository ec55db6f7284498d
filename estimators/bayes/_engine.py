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
- :func:`nuts`: **the** NUTS loop of the package: per chain, Stan's windowed warm-up (blackjax's dual
  averaging of the step size to ``target_accept`` and Welford mass-matrix estimate, diagonal or dense, in
  blackjax's window schedule) for ``tune`` steps, then ``draws`` transitions of blackjax's NUTS kernel; one
  compiled program makes ``_CHUNK`` transitions of every chain (chains and data sets ``vmap``-ed) and is
  called until done, so it holds one copy of the NUTS trajectory and does not depend on ``tune``/``draws``.
- :func:`sample_model`: a PyMC model through :func:`nuts`, its data containers as inputs, the compiled
  programs kept per process by :func:`structure_key` (and on disk by :func:`persistent_cache`), so a
  second model of the same structure and shape compiles nothing, and found by :func:`graph_key` (the
  PyTensor graphs, compared exactly, no JAX tracing) so it does not even build its JAX functions; :func:`fast_logp` lets an estimator
  hand the engine an equivalent, cheaper log density.
- :func:`to_inferencedata`: the draws mapped to the model's constrained variables and deterministics
  plus the pointwise log-likelihood, laid out as PyMC lays out its JAX samplers' output.
- :func:`check_backend`: raises :class:`~decrimkit.errors.BackendError` naming what changed when the
  installed PyMC, PyTensor or blackjax no longer offer what the functions above call.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, NamedTuple

import numpy as np

from decrimkit.errors import BackendError, SpecificationError
from decrimkit.extras import require

__all__ = ["ModelFunctions", "ModelGraphs", "model_graphs", "model_functions", "graph_key", "fast_logp", "initial_points", "nuts", "schedule", "to_inferencedata",
           "sample_model", "structure_key", "persistent_cache", "check_backend", "TESTED_VERSIONS"]

require("bayes", "decrimkit's Bayesian estimators")

# the versions this module was written and tested against (constraints.txt pins them)
TESTED_VERSIONS = {"pymc": "5.28", "pytensor": "2.38", "blackjax": "1.7"}
_NUTS_INFO = ("is_divergent", "energy", "num_trajectory_expansions", "num_integration_steps", "acceptance_rate")


@cache
def check_backend() -> None:
    """Raise :class:`BackendError` when an installed library lacks a function or argument used here.

    Checked once per process: PyMC's ``get_jaxified_graph(inputs=, outputs=)``,
    ``make_initial_point_fn(model=, jitter_rvs=, return_transformed=)`` and its ArviZ helpers; PyTensor's
    ``graph_replace``; blackjax's warm-up pieces (``build_schedule``, ``dual_averaging_adaptation``,
    ``mass_matrix_adaptation``), its NUTS ``init`` and ``build_kernel`` and the fields of their states.
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
        ("pytensor.graph.traversal.io_toposort", lambda: _attr("pytensor.graph.traversal", "io_toposort"),
         ("inputs", "outputs")),
        ("pytensor.graph.replace.graph_replace", lambda: _attr("pytensor.graph.replace", "graph_replace"),
         ("strict",)),
        ("blackjax.adaptation.window_adaptation.build_schedule",
         lambda: _attr("blackjax.adaptation.window_adaptation", "build_schedule"), ("num_steps",)),
        ("blackjax.adaptation.step_size.dual_averaging_adaptation",
         lambda: _attr("blackjax.adaptation.step_size", "dual_averaging_adaptation"), ("target",)),
        ("blackjax.adaptation.mass_matrix.mass_matrix_adaptation",
         lambda: _attr("blackjax.adaptation.mass_matrix", "mass_matrix_adaptation"), ("is_diagonal_matrix",)),
        ("blackjax.mcmc.nuts.init", lambda: _attr("blackjax.mcmc.nuts", "init"), ("position", "logdensity_fn")),
        ("blackjax.mcmc.nuts.build_kernel", lambda: _attr("blackjax.mcmc.nuts", "build_kernel"), ()),
        ("the kernel of blackjax.mcmc.nuts.build_kernel()", lambda: _attr("blackjax.mcmc.nuts", "build_kernel")(),
         ("rng_key", "state", "logdensity_fn", "step_size", "inverse_mass_matrix")),
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
    for owner, cls, wanted in (("blackjax.mcmc.nuts", "NUTSInfo", _NUTS_INFO),
                               ("blackjax.adaptation.step_size", "DualAveragingAdaptationState",
                                ("log_step_size", "log_step_size_avg")),
                               ("blackjax.adaptation.mass_matrix", "MassMatrixAdaptationState",
                                ("inverse_mass_matrix",))):
        fields = getattr(_attr(owner, cls), "_fields", ())
        missing = [f for f in wanted if f not in fields]
        if missing:
            raise BackendError(f"blackjax's {cls} lacks {', '.join(missing)} ({versions}; tested with {tested}): "
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


class ModelGraphs(NamedTuple):
    """The PyTensor graphs :func:`model_functions` compiles to JAX, in terms of the value variables and the data
    containers (``shared``, in :attr:`ModelFunctions.data_names` order): ``logp`` (one scalar), ``outputs``,
    ``posterior`` and ``loglik`` (lists)."""

    logp: list[Any]
    outputs: list[Any]
    posterior: list[Any]
    loglik: list[Any]
    values: list[Any]
    shared: list[Any]
    value_names: tuple[str, ...]
    posterior_names: tuple[str, ...]
    loglik_names: tuple[str, ...]
    data_names: tuple[str, ...]


def model_graphs(model: Any, data: Sequence[str] = (), outputs: Sequence[str] = (), logp: Any = None) -> ModelGraphs:
    """The graphs of :func:`model_functions` before they are compiled to JAX (same arguments)."""
    from pymc.util import get_default_varnames

    check_backend()
    shared = []
    for name in data:
        try:
            shared.append(model[name])
        except KeyError as exc:
            raise SpecificationError(f"the model has no data container {name!r}.") from exc
    post_vars = list(get_default_varnames(model.unobserved_value_vars, include_transformed=False))
    observed = list(model.observed_RVs)
    return ModelGraphs(
        logp=[model.logp()] if logp is None else list(model.replace_rvs_by_values([logp])),
        outputs=list(model.replace_rvs_by_values([model[n] for n in outputs])) if outputs else [],
        posterior=post_vars,
        loglik=list(model.logp(vars=observed, sum=False)) if observed else [],
        values=list(model.value_vars),
        shared=shared,
        value_names=tuple(v.name for v in model.value_vars),
        posterior_names=tuple(v.name for v in post_vars),
        loglik_names=tuple(v.name for v in observed),
        data_names=tuple(data),
    )


def model_functions(model: Any, data: Sequence[str] = (), outputs: Sequence[str] = (),
                    logp: Any = None, graphs: ModelGraphs | None = None) -> ModelFunctions:
    """JAX functions of ``model`` with the ``pm.Data`` containers named in ``data`` as inputs.

    Containers not named stay constants of the compiled program (their current values). ``logp``: an
    equivalent log density to sample instead of ``model.logp()`` (a PyTensor scalar in terms of the model's
    random variables and containers, e.g. :func:`fast_logp`'s); it must differ from the model's by a
    constant only (tests check this for each model that supplies one). ``graphs``: :func:`model_graphs` of
    the same arguments, where already built.
    """
    from pymc.sampling.jax import get_jaxified_graph
    from pytensor.graph.replace import graph_replace

    g = model_graphs(model, data, outputs, logp) if graphs is None else graphs
    inputs = [s.type(f"{s.name}_input") for s in g.shared]
    swap = dict(zip(g.shared, inputs))

    def jaxify(outs: list[Any]) -> Callable[..., Any]:
        outs = graph_replace(outs, swap, strict=False) if swap else outs
        return get_jaxified_graph(inputs=g.values + inputs, outputs=list(outs))

    return ModelFunctions(
        logp=jaxify(g.logp),
        outputs=jaxify(g.outputs) if g.outputs else (lambda *a: []),
        posterior=jaxify(g.posterior),
        loglik=jaxify(g.loglik) if g.loglik else (lambda *a: []),
        value_names=g.value_names,
        posterior_names=g.posterior_names,
        loglik_names=g.loglik_names,
        data_names=g.data_names,
    )


def graph_key(graphs: ModelGraphs, value_shapes: Sequence[tuple[int, ...]]) -> tuple[Any, ...] | None:
    """An exact structural key of a model's graphs (:func:`model_graphs`) and the shapes of its value variables
    (one chain's, in ``graphs.value_names`` order; the graphs may compute with the values' shapes rather than
    hold them as constants), built without compiling anything.

    The key lists every operation of the log density, posterior and log-likelihood graphs in topological
    order: the operation itself (PyTensor compares operations by their parameters), the positions of its
    inputs, and each input that is not computed: a value variable (its position and type), a data container
    (its name, type and the shape of its current value, never the value) or a constant (type and SHA-256 of
    its bytes; a shared variable that is not a data input, such as a dimension's length, is a constant of the
    compiled program and keyed as one). Two models with equal keys therefore compile to the same functions
    of ``(values, data)``. None where the graphs hold an operation without parameters (compared by identity,
    so never equal across models) or an input that is none of these: such models are keyed by
    :func:`structure_key` alone.
    """
    import hashlib

    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import io_toposort

    outs = [*graphs.logp, *graphs.posterior, *graphs.loglik]
    ids: dict[Any, int] = {}
    tokens: list[Any] = [graphs.value_names, graphs.posterior_names, graphs.loglik_names, graphs.data_names,
                         tuple(tuple(int(n) for n in shape) for shape in value_shapes)]
    values = {v: k for k, v in enumerate(graphs.values)}
    shared = {v: k for k, v in enumerate(graphs.shared)}

    def leaf(var: Any) -> Any:
        if var in values:
            return ("value", values[var], var.type)
        if var in shared:
            return ("data", shared[var], var.type, np.shape(var.get_value(borrow=True)))
        if isinstance(var, SharedVariable | Constant):
            # a shared variable other than the data inputs (e.g. a dimension's length) is a constant of the
            # compiled program, keyed by its current value
            value = var.get_value(borrow=True) if isinstance(var, SharedVariable) else var.data
            if not isinstance(value, np.ndarray | np.generic | int | float):
                return None
            arr = np.ascontiguousarray(np.asarray(value))
            return ("constant", var.type, arr.dtype.str, arr.shape, hashlib.sha256(arr.tobytes()).hexdigest())
        return None

    def ref(var: Any) -> Any:
        if var not in ids:
            token = leaf(var)
            if token is None:
                raise LookupError
            ids[var] = len(ids)
            tokens.append(token)
        return ids[var]

    try:
        for node in io_toposort([], outs):
            if not hasattr(type(node.op), "__props__"):
                return None
            inputs = tuple(ref(v) for v in node.inputs)
            tokens.append((node.op, inputs, len(node.outputs)))
            for k, out in enumerate(node.outputs):
                ids[out] = len(ids)
                tokens.append(("out", k, out.type))
        tokens.append(tuple(ref(v) for v in outs))
    except LookupError:
        return None
    return tuple(tokens)


def fast_logp(model: Any, loglik: Any) -> Any:
    """The model's log density with its likelihood replaced by ``loglik``: the free variables' log densities
    (unconstrained, Jacobians included) plus ``loglik`` (a PyTensor scalar in the model's random variables),
    for :func:`model_functions`'s ``logp``."""
    import pytensor.tensor as pt

    return pt.add(model.logp(vars=model.free_RVs), loglik)


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


_CHUNK = 50  # NUTS transitions per call of the compiled step program


class _Adaptation(NamedTuple):
    """Per-chain warm-up state: dual averaging of the step size, Welford estimate of the mass matrix, and the
    step size and inverse mass matrix the next transition uses."""

    step_size_state: Any
    mass_matrix_state: Any
    step_size: Any
    inverse_mass_matrix: Any


def schedule(tune: int, draws: int) -> np.ndarray:
    """Stan's warm-up schedule then the draws, one row per transition: ``(tuning, slow, window_end, last)``.

    ``tuning``: the transition adapts; ``slow``: a slow window (step size and mass matrix adapt) rather than a
    fast one (step size only); ``window_end``: the mass matrix is recomputed and dual averaging restarts after
    it; ``last``: the last warm-up step, after which the step size is fixed to its dual-averaged value.
    Windows: blackjax's ``build_schedule`` (75-step initial buffer, doubling slow windows from 25, 50-step
    final buffer; shrunk proportionally below 150 steps).
    """
    from blackjax.adaptation.window_adaptation import build_schedule

    rows = np.zeros((tune + draws, 4), dtype="int32")
    stages = np.asarray(build_schedule(int(tune)), dtype="int32").reshape(-1, 2)
    rows[:tune, 0] = 1
    rows[:tune, 1:3] = stages
    rows[tune - 1, 3] = 1
    return rows


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
    (a tuple of arrays, possibly empty). Each chain adapts for ``tune`` steps (Stan's windowed warm-up:
    dual averaging of the step size to ``target_accept``, a diagonal mass matrix, dense with
    ``dense_mass=True``, re-estimated at the end of each slow window), then makes ``draws`` NUTS transitions;
    ``collect(state, info, params)`` picks what each transition keeps (``params``: ``step_size``,
    ``inverse_mass_matrix`` and ``data``). ``run`` takes ``keys`` (B, 2), ``positions`` (list of (B, ...)
    arrays) and ``data`` (tuple of (B, ...) arrays) and returns the collected pytree with leading axes
    (B, draws): chains and data sets share the batch axis B.

    One compiled program serves warm-up and draws alike: it makes up to ``_CHUNK`` transitions of every
    chain (``jax.vmap``) from the carried state, adapting where the schedule (:func:`schedule`, a runtime
    input) says so, and is called until ``tune + draws`` transitions are made. The program holds one copy
    of the NUTS trajectory and does not depend on ``tune`` or ``draws``, so it compiles once per model
    structure, batch shape and setting of ``target_accept``/``dense_mass``.
    """
    check_backend()
    if tune < 1:
        raise SpecificationError("NUTS needs tune >= 1 warm-up steps to adapt its step size and mass matrix.")
    program = _program(logdensity, float(target_accept), bool(dense_mass), collect)
    return partial(_run_program, program, int(tune), int(draws))


class _Program(NamedTuple):
    init: Callable[..., Any]
    chunk: Callable[..., Any]


def _program(logdensity: Callable[..., Any], target_accept: float, dense_mass: bool,
             collect: Callable[[Any, Any, Any], Any]) -> _Program:
    """The two jitted functions of :func:`nuts`: ``init`` (states and warm-up states of a batch of chains) and
    ``chunk`` (up to ``_CHUNK`` transitions of every chain)."""
    import jax
    import jax.numpy as jnp
    from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
    from blackjax.adaptation.step_size import dual_averaging_adaptation
    from blackjax.mcmc import nuts as bj_nuts

    kernel = bj_nuts.build_kernel()
    da_init, da_update, da_final = dual_averaging_adaptation(target_accept)
    mm_init, mm_update, mm_final = mass_matrix_adaptation(not dense_mass)

    def init_chain(position: list[Any], data: tuple[Any, ...]) -> tuple[Any, _Adaptation]:
        state = bj_nuts.init(position, lambda pos: logdensity(pos, data))
        mm = mm_init(sum(int(np.prod(p.shape)) for p in position))
        one = jnp.ones((), dtype=state.logdensity.dtype)
        return state, _Adaptation(da_init(one), mm, one, mm.inverse_mass_matrix)

    def adapt(a: _Adaptation, row: Any, position: Any, acceptance: Any) -> _Adaptation:
        # Stan's windowed adaptation (as blackjax's window adaptation): fast windows tune the step size only;
        # slow windows also accumulate the mass matrix, recomputed at each window's end where dual averaging
        # restarts from the averaged step size; after the last warm-up step the averaged step size is kept
        ss = da_update(a.step_size_state, acceptance)
        mm = jax.lax.cond(row[1] == 1, lambda m: mm_update(m, position), lambda m: m, a.mass_matrix_state)
        a = _Adaptation(ss, mm, jnp.exp(ss.log_step_size), a.inverse_mass_matrix)

        def window_end(a: _Adaptation) -> _Adaptation:
            mm = mm_final(a.mass_matrix_state)
            ss = da_init(da_final(a.step_size_state))
            return _Adaptation(ss, mm, jnp.exp(ss.log_step_size), mm.inverse_mass_matrix)

        a = jax.lax.cond(row[2] == 1, window_end, lambda a: a, a)
        return jax.lax.cond(row[3] == 1, lambda a: a._replace(step_size=da_final(a.step_size_state)),
                            lambda a: a, a)

    def chunk_chain(key: Any, state: Any, a: _Adaptation, data: tuple[Any, ...], rows: Any) -> Any:
        def ld(pos: list[Any]) -> Any:
            return logdensity(pos, data)

        def move(carry: Any, row: Any) -> Any:
            key, state, a = carry
            key, k = jax.random.split(key)
            params = {"step_size": a.step_size, "inverse_mass_matrix": a.inverse_mass_matrix}
            new, info = kernel(k, state, ld, a.step_size, a.inverse_mass_matrix)
            kept = collect(new, info, dict(params, data=data))
            a = jax.lax.cond(row[0] == 1, lambda a: adapt(a, row, new.position, info.acceptance_rate),
                             lambda a: a, a)
            return (key, new, a), kept

        (key, state, a), trace = jax.lax.scan(move, (key, state, a), rows)
        return key, state, a, trace

    init = jax.jit(jax.vmap(init_chain))
    chunk = jax.jit(jax.vmap(chunk_chain, in_axes=(0, 0, 0, 0, None)))
    return _Program(init, chunk)


def _run_program(program: _Program, tune: int, draws: int, keys: Any, positions: Sequence[Any],
                 data: tuple[Any, ...], *, on_chunk: Callable[[int, int], None] | None = None) -> Any:
    """Warm-up then draws of every chain through ``program``; the collected draws with leading axes (B, draws)."""
    import jax
    import jax.numpy as jnp

    state, a = program.init(list(positions), tuple(data))
    rows = schedule(tune, draws)
    total = tune + draws
    n_chunks = -(-total // _CHUNK)
    # a last partial block is padded with plain transitions (no adaptation) whose draws are dropped: at most
    # _CHUNK - 1 wasted transitions, where a mask would trace the NUTS step twice and double compilation
    rows = np.concatenate([rows, np.zeros((n_chunks * _CHUNK - total, 4), dtype="int32")])
    traces = []
    for c in range(n_chunks):
        sl = slice(c * _CHUNK, (c + 1) * _CHUNK)
        keys, state, a, trace = program.chunk(keys, state, a, tuple(data), jnp.asarray(rows[sl]))
        if (c + 1) * _CHUNK > tune:
            traces.append((c * _CHUNK, trace))
        if on_chunk is not None:
            on_chunk(min((c + 1) * _CHUNK, total), total)
    first = traces[0][0]
    # joined and cut in NumPy: JAX would compile a concatenation and a slice for each number of draws
    joined = jax.tree.map(lambda *t: np.concatenate([np.asarray(a) for a in t], axis=1), *[t for _, t in traces])
    return jax.tree.map(lambda t: t[:, tune - first:tune - first + draws], joined)


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
                     data: Sequence[Any] = (), tune: int, library: str = "blackjax",
                     transforms: tuple[Callable[..., Any], Callable[..., Any]] | None = None) -> Any:
    """``InferenceData`` of draws ``positions`` (value variables, each (chains, draws, ...)).

    Groups ``posterior`` (constrained free variables and deterministics), ``sample_stats``,
    ``log_likelihood`` (pointwise), ``observed_data``, ``constant_data``, with the model's coords and
    dims. ``data``: the data-container values the draws were made with (one per ``fns.data_names``,
    shared by all chains); the model's containers are set to them for the observed and constant groups.
    ``transforms``: the compiled ``(posterior, loglik)`` maps of :func:`_draw_transforms` (built here when
    not given).
    """
    import arviz as az
    import blackjax
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants, find_observations

    post_fn, loglik_fn = transforms if transforms is not None else _draw_transforms(fns)
    post = _by_blocks(post_fn, positions, data)
    loglik = _by_blocks(loglik_fn, positions, data) if fns.loglik_names else []
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


def _by_blocks(fn: Callable[..., Any], positions: Sequence[Any], data: Sequence[Any]) -> list[np.ndarray]:
    """``fn`` (a :func:`_draw_transforms` map) applied to blocks of ``_CHUNK`` draws, the last one padded by
    repeating its last draw (dropped after): the map compiles once for a number of chains, not once for each
    number of draws."""
    positions = [np.asarray(p) for p in positions]
    n_draws = positions[0].shape[1]
    blocks = []
    for start in range(0, n_draws, _CHUNK):
        block = [p[:, start:start + _CHUNK] for p in positions]
        short = _CHUNK - block[0].shape[1]
        if short:
            block = [np.concatenate([b, np.repeat(b[:, -1:], short, axis=1)], axis=1) for b in block]
        blocks.append([np.asarray(out)[:, :_CHUNK - short] for out in fn(block, tuple(data))])
    return [np.concatenate([b[k] for b in blocks], axis=1) for k in range(len(blocks[0]))]


def _draw_transforms(fns: ModelFunctions) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Jitted maps of the draws (each (chains, draws, ...)) and the shared data to the constrained posterior
    variables and to the pointwise log-likelihood."""
    import jax

    def per_draw(fn: Callable[..., Any]) -> Callable[..., Any]:
        def apply(positions: list[Any], data: tuple[Any, ...]) -> Any:
            return jax.vmap(jax.vmap(lambda *pos: fn(*pos, *data)))(*positions)

        return jax.jit(apply)

    return per_draw(fns.posterior), per_draw(fns.loglik)


# ---------------------------------------------------------------------------------------------------------
# compiled programs reused across calls

_COMPILED: dict[str, tuple[_Program, tuple[Callable[..., Any], Callable[..., Any]]]] = {}
_COMPILED_MAX = 16  # programs kept per process (least recently used dropped first)
# graph_key (and sampler settings) -> (structure_key and settings, the model's JAX functions): a model whose
# PyTensor graphs equal a recent one's finds its program without building or tracing JAX functions
_BY_GRAPH: dict[Any, tuple[str, ModelFunctions]] = {}
CACHE_ENV = "DECRIMKIT_JAX_CACHE"


@cache
def persistent_cache() -> str | None:
    """Turn on JAX's persistent compilation cache in decrimkit's user cache directory; its path, or None.

    Compiled programs are then kept on disk between processes (as PyTensor keeps its compiled C), so a
    model of the same structure and shape compiles once per machine and version of JAX. Off when the
    environment variable ``DECRIMKIT_JAX_CACHE`` is ``0`` (or ``false``/``no``/``off``), and left alone
    when the user has set JAX's own ``jax_compilation_cache_dir``. The directory is
    ``platformdirs.user_cache_dir("decrimkit")/jax`` (``DECRIMKIT_JAX_CACHE`` may name another directory),
    never the working directory.
    """
    import os

    import jax

    setting = os.environ.get(CACHE_ENV, "1").strip()
    if setting.lower() in ("0", "false", "no", "off", ""):
        return None
    if jax.config.jax_compilation_cache_dir:
        return str(jax.config.jax_compilation_cache_dir)
    if setting.lower() in ("1", "true", "yes", "on"):
        from platformdirs import user_cache_dir

        path = os.path.join(user_cache_dir("decrimkit"), "jax")
    else:
        path = os.path.abspath(os.path.expanduser(setting))
    jax.config.update("jax_compilation_cache_dir", path)
    return path


def structure_key(fns: ModelFunctions, values: Sequence[Any], data: Sequence[Any]) -> str:
    """A digest of a model's compiled functions: their JAX programs (as text), constants, argument shapes.

    Two models with equal keys have the same log density, posterior transforms and log-likelihood as
    functions of ``(values, data)``, so a program compiled for one samples the other; new data of the
    same shape in the data containers leave the key unchanged.
    """
    import hashlib

    import jax

    digest = hashlib.sha256()
    args = [*values, *data]
    for fn in (fns.logp, fns.posterior, fns.loglik):
        closed = jax.make_jaxpr(fn)(*args)
        digest.update(str(closed.jaxpr).encode())
        for const in closed.consts:
            arr = np.ascontiguousarray(np.asarray(const))
            digest.update(f"{arr.dtype}{arr.shape}".encode())
            digest.update(arr.tobytes())
    names = (fns.value_names, fns.posterior_names, fns.loglik_names, fns.data_names)
    digest.update(repr(names).encode())
    return digest.hexdigest()


def _stats_of(state: Any, info: Any, params: dict[str, Any]) -> Any:
    return state.position, _stats(state, info, params)


def sample_model(model: Any, *, chains: int, draws: int, tune: int, seed: int, target_accept: float,
                 dense_mass: bool = False, on_progress: Callable[[int, int], None] | None = None,
                 logp: Any = None) -> Any:
    """NUTS (:func:`nuts`) on ``model`` as it stands, ``chains`` chains vmapped; the posterior as InferenceData.

    The model's ``pm.Data`` containers are inputs of the compiled programs, and the programs are kept
    for the process keyed by :func:`structure_key`, the number of chains and the sampler settings: a
    second call on a model of the same structure and shape, with new data, compiles nothing (and with
    :func:`persistent_cache`, neither does a new process). A model whose PyTensor graphs equal a recent
    one's (:func:`graph_key`) also skips building and tracing its JAX functions. ``on_progress(done, total)`` is called after
    each block of transitions. ``logp``: an equivalent log density to sample (:func:`model_functions`).
    """
    import jax
    import jax.numpy as jnp

    from decrimkit.numerics.keys import key_from_seed

    persistent_cache()
    names = tuple(v.name for v in getattr(model, "data_vars", ()))
    graphs = model_graphs(model, data=names, logp=logp)
    shared = tuple(np.asarray(model[n].get_value()) for n in names)
    init = initial_points(model, chains, seed)
    settings = f"|{chains}|{float(target_accept)!r}|{bool(dense_mass)}"
    # a model whose graphs equal a recent one's (graph_key: no JAX tracing) reuses its functions and program
    gkey = graph_key(graphs, [np.shape(v)[1:] for v in init])
    gkey = None if gkey is None else (gkey, settings)
    known = _BY_GRAPH.pop(gkey, None) if gkey is not None else None
    if known is not None and known[0] in _COMPILED:
        key, fns = known
        program, transforms = _COMPILED.pop(key)
    else:
        fns = model_functions(model, data=names, logp=logp, graphs=graphs)
        key = structure_key(fns, [v[0] for v in init], shared) + settings
        if key in _COMPILED:
            program, transforms = _COMPILED.pop(key)
        else:
            def logdensity(pos: list[Any], data: tuple[Any, ...]) -> Any:
                return fns.logp(*pos, *data)[0]

            program = _program(logdensity, float(target_accept), bool(dense_mass), _stats_of)
            transforms = _draw_transforms(fns)
    _COMPILED[key] = (program, transforms)  # most recently used last
    if gkey is not None:
        _BY_GRAPH[gkey] = (key, fns)
    for cache_ in (_COMPILED, _BY_GRAPH):
        while len(cache_) > _COMPILED_MAX:
            cache_.pop(next(iter(cache_)))
    batch = tuple(jnp.asarray(np.broadcast_to(d, (chains, *np.shape(d)))) for d in shared)
    state, _ = program.init([jnp.asarray(v) for v in init], batch)
    if not np.isfinite(np.asarray(state.logdensity)).all():
        # PyMC's jittered start left the support for some chain: redraw with the log density checked
        init = initial_points(model, chains, seed, fns, batch)
    keys = jax.random.split(key_from_seed(seed), chains)
    positions, stats = _run_program(program, int(tune), int(draws), keys, [jnp.asarray(v) for v in init],
                                    batch, on_chunk=on_progress)
    return to_inferencedata(model, fns, positions, stats, data=shared, tune=tune, transforms=transforms)
