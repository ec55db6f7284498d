"""``hierarchical_did`` on many panels of one shape, sampled together by one compiled NUTS program.

For simulation studies (placebo laws, power grids, validation): the model is exactly
:func:`~decrimkit.estimators.bayes._hierarchical_did.hierarchical_did`'s, with its data containers
(:data:`~decrimkit.estimators.bayes._hierarchical_did.HDID_DATA`) as inputs of one JAX program, so a process
compiles it once per structure (units, periods, treated jurisdictions' policy models) and variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.options import Family, check_option
from decrimkit.panel import Panel

from ._hierarchical_did import HDID_DATA, HDID_PRIORS, Deviations, HDiDDesign, _result, hdid_design, hdid_model
from ._sampling import merge_priors, validate_sampling
from .results import Posterior

__all__ = ["hierarchical_did_batch"]


def _batch_policy_models(policy_model: Any, n: int) -> list[Any]:
    if isinstance(policy_model, (list, tuple)):
        if len(policy_model) != n:
            raise SpecificationError(f"policy_model: {len(policy_model)} mappings for {n} panels; pass one per panel "
                                     f"or one mapping for all.")
        return list(policy_model)
    return [policy_model] * n


def _structure(design: HDiDDesign) -> tuple[Any, ...]:
    """What a compiled batch model fixes: the panel's shape, the periods and the jurisdictions' policy models."""
    return (len(design.units), tuple(design.times), len(design.y), tuple(design.unit), tuple(design.time),
            tuple(design.model_of_jur), tuple(design.models))


@dataclass(frozen=True)
class _Compiled:
    model: Any
    fns: Any
    run: Any
    post: Any


_COMPILED: dict[tuple[Any, ...], _Compiled] = {}


def _compiled(design: HDiDDesign, *, family: str, priors: dict[str, float], deviations: str, tune: int, draws: int,
              target_accept: float) -> _Compiled:
    """The model of ``design``'s structure with its data as inputs, its NUTS program and its posterior map
    (kept for the process: a validation worker compiles once per variant, whatever its chunks)."""
    import jax

    from ._engine import model_functions, nuts

    key = (_structure(design), family, tuple(sorted(priors.items())), deviations, tune, draws, target_accept)
    if key not in _COMPILED:
        model = hdid_model(design, family=family, priors=priors, deviations=deviations)
        fns = model_functions(model, data=HDID_DATA)

        def logdensity(pos: list[Any], data: tuple[Any, ...]) -> Any:
            return fns.logp(*pos, *data)[0]

        def collect(state: Any, info: Any, params: dict[str, Any]) -> Any:
            # the sampler statistics the engine's own fits keep (sample_stats of the InferenceData)
            return state.position, {"diverging": info.is_divergent, "energy": info.energy,
                                    "tree_depth": info.num_trajectory_expansions,
                                    "n_steps": info.num_integration_steps, "acceptance_rate": info.acceptance_rate,
                                    "lp": state.logdensity, "step_size": params["step_size"]}

        run = nuts(logdensity, tune=tune, draws=draws, target_accept=target_accept, collect=collect)
        per_draw = jax.vmap(lambda pos, data: fns.posterior(*pos, *data), in_axes=(0, None))
        post = jax.jit(jax.vmap(per_draw, in_axes=(0, None)))  # (chains, draws) of one data set
        if len(_COMPILED) >= 4:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = _Compiled(model, fns, run, post)
    return _COMPILED[key]


def hierarchical_did_batch(
    panels: Sequence[Panel],
    *,
    policy_model: Any,
    seeds: Sequence[int],
    family: Family = "negative_binomial",
    exposure: str | None = "population",
    priors: dict[str, float] | None = None,
    deviations: Deviations = "ar1",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 1000,
    target_accept: float = 0.9,
    batch_size: int | None = None,
    strict: bool = False,
) -> list[Posterior]:
    """:func:`hierarchical_did` on many panels of one shape, sampled together by one compiled NUTS program.

    For simulation studies (placebo laws, power grids): the model of each panel is exactly
    :func:`hierarchical_did`'s, with its data (outcome, offset, intercept centre, treatment, jurisdiction
    index; :data:`HDID_DATA`) as inputs of one JAX program, so the model compiles once for every panel
    with the same units, periods and number of treated jurisdictions (and their policy models), whichever
    units are treated and whenever they adopt. The sampler is the package's NUTS engine
    (``sampler="blackjax"``): each panel ``i`` gets the initial points and chain keys that
    ``hierarchical_did(panels[i], seed=seeds[i], sampler="blackjax")`` would use, and the panels' chains
    run ``vmap``-ed in groups of ``batch_size`` panels (the last group padded so every call has one shape).

    Parameters
    ----------
    panels : sequence of Panel
        Panels with the same units, periods and number of treated units.
    policy_model : mapping or Series or str, or a sequence of them
        As in :func:`hierarchical_did`, one for all panels or one per panel.
    seeds : sequence of int
        One seed per panel (the seed ``hierarchical_did`` would take).
    family, exposure, priors, deviations, chains, draws, tune, target_accept, strict
        As in :func:`hierarchical_did`.
    batch_size : int, optional
        Panels sampled per compiled call (default: all); memory grows with ``batch_size * chains * draws``.

    Returns
    -------
    list of Posterior
        One per panel, as :func:`hierarchical_did` returns it (same levels, spec and convergence gate,
        ``spec.options["sampler"] == "blackjax"``), except that ``idata`` holds the ``posterior`` and
        ``sample_stats`` groups only (no prior or posterior predictive, no log-likelihood).
    """
    import arviz as az
    import jax
    import jax.numpy as jnp
    import pymc as pm

    from decrimkit.numerics.keys import key_from_seed

    from ._engine import initial_points
    from ._sampling import _seeds

    check_option("family", family, Family)
    check_option("deviations", deviations, Deviations)
    panels = list(panels)
    seeds = [int(s) for s in seeds]
    if not panels:
        raise SpecificationError("hierarchical_did_batch needs at least one panel.")
    if len(seeds) != len(panels):
        raise SpecificationError(f"hierarchical_did_batch: {len(seeds)} seeds for {len(panels)} panels; pass one each.")
    for s in seeds:
        validate_sampling(sampler="blackjax", chains=chains, draws=draws, tune=tune, seed=s)
    size = len(panels) if batch_size is None else int(batch_size)
    if size < 1:
        raise SpecificationError(f"batch_size must be a positive integer, got {batch_size!r}.")
    pri = merge_priors(HDID_PRIORS, priors, "bayes.hierarchical_did")
    designs = [hdid_design(p, policy_model=m, family=family, exposure=exposure)
               for p, m in zip(panels, _batch_policy_models(policy_model, len(panels)))]
    shape = _structure(designs[0])
    for i, des in enumerate(designs[1:], start=1):
        if _structure(des) != shape:
            raise DesignError(f"hierarchical_did_batch: panel {i} differs from panel 0 in its units, periods or "
                              f"treated jurisdictions' policy models; batch panels of one shape only.")
    comp = _compiled(designs[0], family=family, priors=pri, deviations=deviations, tune=tune, draws=draws,
                     target_accept=target_accept)
    model, fns = comp.model, comp.fns
    options = {"sampler": "blackjax", "chains": chains, "draws": draws, "tune": tune, "target_accept": target_accept}
    dims = {name: list(model.named_vars_to_dims.get(name, ())) for name in fns.posterior_names}
    out: list[Posterior] = []
    for start in range(0, len(panels), size):
        idx = list(range(start, min(start + size, len(panels))))
        idx_padded = idx + [idx[-1]] * (size - len(idx))
        keys, inits, datas = [], [], []
        for i in idx_padded:
            data = designs[i].data(family)
            seed_nuts = _seeds(seeds[i])[1]  # the sampler's share of the seed, as sample() splits it
            with model:
                pm.set_data(dict(zip(HDID_DATA, data)))  # PyMC's initial point reads the containers (intercept centre)
            stacked = tuple(np.stack([np.asarray(v)] * chains) for v in data)
            inits.append(initial_points(model, chains, seed_nuts, fns, stacked))
            keys.append(jax.random.split(key_from_seed(seed_nuts), chains))
            datas.append(stacked)
        data_b = tuple(jnp.asarray(np.concatenate([d[k] for d in datas])) for k in range(len(HDID_DATA)))
        init_b = [jnp.asarray(np.concatenate([p[k] for p in inits])) for k in range(len(inits[0]))]
        positions, stats = comp.run(jnp.concatenate(keys), init_b, data_b)
        for j, i in enumerate(idx):
            rows = slice(j * chains, (j + 1) * chains)
            data_i = tuple(jnp.asarray(v) for v in designs[i].data(family))
            post = comp.post([p[rows] for p in positions], data_i)
            des = designs[i]
            coords = {"unit": des.units, "time": des.times, "jurisdiction": des.jurisdictions,
                      "policy_model": des.models}
            idata = az.from_dict(
                posterior={k: np.asarray(v) for k, v in zip(fns.posterior_names, post)},
                sample_stats={k: np.asarray(v[rows]) for k, v in stats.items()},
                coords=coords, dims=dims,
                attrs={"inference_library": "blackjax", "tuning_steps": tune},
            )
            out.append(_result(idata, model, des, panels[i], family=family, exposure=exposure, priors=pri,
                               deviations=deviations, sampling=options, seed=seeds[i], strict=strict))
    return out
