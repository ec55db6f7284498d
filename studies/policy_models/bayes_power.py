"""Bayesian hierarchical DiD in the power grid: one compiled sampler per design, replicates vmapped.

``bayes.hierarchical_did`` builds a PyMC model whose data (death counts, log-population offset and the
intercept's prior centre) are constants of the graph, so every call re-derives, re-jaxifies and
recompiles the model (about 20 CPU seconds a fit, almost all compilation; sampling 300 + 300 steps
takes about 1). The power grid fits the *same* model to many panels of the same shape, so here:

1. **One model per design.** The placebo-treated states of a replicate are relabelled ``u00..`` (in
   cohort order) and the other pool states after them, so the unit index, the treatment indicator, the
   jurisdiction index and the ATT weights are identical in every replicate of a policy model. The
   model is exchangeable in units (iid unit effects), so the labels do not change the posterior.
2. **The same PyMC graph.** The model is built by the estimator's own ``hdid_design`` and
   ``hdid_model`` (negative binomial, population offset, ``HDID_PRIORS``) from a template replicate;
   the three data constants (``y``, the offset, the intercept's prior centre) are located in its log
   density graph (each must match exactly one constant) and replaced by inputs, and the log density
   and the ``att`` deterministic are jaxified with PyMC's own ``get_jaxified_graph``.
3. **One jit, vmapped.** NUTS as in ``hierarchical_did(sampler="blackjax")``: blackjax window
   adaptation (step size to ``target_accept`` 0.9, diagonal mass matrix) for ``tune`` steps, then
   ``draws`` transitions, from PyMC's jittered initial points; ``chains`` chains per replicate, all
   (replicate, effect, chain) triples ``vmap``-ed under one ``jax.jit``.

Each replicate's ``att`` posterior is summarised as ``hierarchical_did`` does (mean, sd, 95% HDI) with
its convergence diagnostics (rank-normalised r-hat, bulk ESS, divergences) so the share of replicates
that fail the package's convergence gate (r-hat > 1.01, ESS < 400, any divergence) is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import SpecificationError

from .placebo_design import PowerDesign, injected_frame

__all__ = ["BayesPowerEngine", "relabelled_frame"]


def relabelled_frame(design: PowerDesign, treated: np.ndarray, delta: float) -> pd.DataFrame:
    """The injected-effect frame with treated states first: labels ``u00..`` (treated, cohort order), then the rest."""
    fr = injected_frame(design, treated, delta)
    n = len(design.states)
    chosen = [int(i) for i in treated]
    order = chosen + [i for i in range(n) if i not in set(chosen)]
    lab = {design.states[i]: f"u{k:02d}" for k, i in enumerate(order)}
    return fr.assign(state=fr["state"].map(lab))


def _constant(consts: list[Any], value: np.ndarray, name: str) -> Any:
    hits = [c for c in consts if c.data.shape == np.shape(value) and np.array_equal(c.data, value)]
    if len(hits) != 1:
        raise SpecificationError(
            f"bayes power: found {len(hits)} graph constants equal to {name} (expected exactly one); "
            f"the hierarchical_did model changed shape, so the compiled power sampler cannot reuse it."
        )
    return hits[0]


class BayesPowerEngine:
    """Compiled ``hierarchical_did`` (negative binomial, population offset) for every replicate of one design.

    Parameters
    ----------
    design : PowerDesign
        The policy model's placebo design.
    chains, draws, tune : int
        NUTS chains per replicate, kept draws and warm-up steps per chain.
    target_accept : float
        NUTS target acceptance rate (``hierarchical_did``'s default 0.9).
    """

    def __init__(
        self, design: PowerDesign, *, chains: int = 2, draws: int = 500, tune: int = 500, target_accept: float = 0.9
    ) -> None:
        from pymc.sampling.jax import get_jaxified_graph
        from pytensor.graph.replace import graph_replace
        from pytensor.graph.traversal import ancestors
        from pytensor.tensor.variable import TensorConstant

        from decrimkit.estimators.bayes import _hierarchical_did as hdid

        self.design, self.chains, self.draws, self.tune = design, int(chains), int(draws), int(tune)
        self.target_accept = float(target_accept)
        k = len(design.cohorts)
        panel = self._panel(np.arange(k), 0.0)
        des = hdid.hdid_design(
            panel,
            policy_model={u: design.model for u in panel.treated_units},
            family="negative_binomial",
            exposure="population",
        )
        model = hdid.hdid_model(des, family="negative_binomial", priors=dict(hdid.HDID_PRIORS))
        self.model, self._template = model, des
        logp = model.logp()
        consts = [v for v in ancestors([logp]) if isinstance(v, TensorConstant)]
        y_c = _constant(consts, des.y, "the death counts")
        off_c = _constant(consts, des.offset, "the log-population offset")
        cen_c = _constant(consts, np.float64(des.centre), "the intercept's prior centre")
        self._y_in, self._off_in, self._cen_in = y_c.type("y_in"), off_c.type("offset_in"), cen_c.type("centre_in")
        self._y_dtype = y_c.dtype
        data = {y_c: self._y_in, off_c: self._off_in, cen_c: self._cen_in}
        (logp_in,) = graph_replace([logp], data, strict=False)
        values = list(model.value_vars)
        self._logp = get_jaxified_graph(inputs=values + [self._y_in, self._off_in, self._cen_in], outputs=[logp_in])
        (att,) = model.replace_rvs_by_values([model["att"]])
        self._att = get_jaxified_graph(inputs=values, outputs=[att])
        self._n_values = len(values)
        self._run = self._compile()

    def _panel(self, treated: np.ndarray, delta: float) -> Any:
        from decrimkit import Panel

        fr = relabelled_frame(self.design, treated, delta)
        return Panel.from_frame(
            fr, unit="state", time="year", outcome="deaths", cohort="cohort", population="population"
        )

    def data(self, treated: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray, float]:
        """(y, offset, centre) of one replicate's panel, checked against the template's fixed arrays."""
        from decrimkit.estimators.bayes import _hierarchical_did as hdid

        panel = self._panel(treated, delta)
        des = hdid.hdid_design(
            panel,
            policy_model={u: self.design.model for u in panel.treated_units},
            family="negative_binomial",
            exposure="population",
        )
        t = self._template
        for name in ("unit", "time", "d", "jur", "model_of_jur"):
            if not np.array_equal(getattr(des, name), getattr(t, name)):
                raise SpecificationError(f"bayes power: replicate design differs from the template in {name!r}.")
        return des.y, des.offset, float(des.centre)

    def _compile(self) -> Any:
        import blackjax
        import jax
        from blackjax.adaptation.base import get_filter_adapt_info_fn

        n_values, logp_fn, att_fn = self._n_values, self._logp, self._att
        tune, draws, target = self.tune, self.draws, self.target_accept

        def one_chain(key: Any, position: list[Any], y: Any, off: Any, cen: Any) -> tuple[Any, Any]:
            def logdensity(pos: list[Any]) -> Any:
                return logp_fn(*pos, y, off, cen)[0]

            k_warm, k_draw = jax.random.split(key)
            warm = blackjax.window_adaptation(
                blackjax.nuts, logdensity, target_acceptance_rate=target, adaptation_info_fn=get_filter_adapt_info_fn()
            )
            (state, params), _ = warm.run(k_warm, position, num_steps=tune)
            step = blackjax.nuts(logdensity, **params).step

            def transition(st: Any, kk: Any) -> tuple[Any, tuple[Any, Any]]:
                st, info = step(kk, st)
                return st, (att_fn(*st.position)[0], info.is_divergent)

            _, (att, div) = jax.lax.scan(transition, state, jax.random.split(k_draw, draws))
            return att, div

        del n_values
        return jax.jit(jax.vmap(one_chain))

    def fit(self, batch: Sequence[tuple[np.ndarray, float, int]], *, size: int | None = None) -> pd.DataFrame:
        """Sample every ``(treated indices, delta, seed)`` of ``batch``; one row per element.

        Each element's NUTS keys come from its own seed; the jittered initial points come from the
        first element's seed. ``size`` pads the batch (repeating its last element, whose extra fits are
        dropped) so that every call has one shape and the jitted sampler compiles once. Columns: ``estimate`` (posterior mean of
        ``att``), ``se`` (posterior sd), ``conf_low``/``conf_high`` (95% HDI, the package's ``hdi``),
        ``r_hat``, ``ess_bulk``, ``divergences`` and ``converged`` (r-hat <= 1.01, bulk ESS >= 400, no
        divergence: the package's gate).
        """
        import arviz as az
        import jax
        import jax.numpy as jnp
        from pymc.sampling.jax import _get_batched_jittered_initial_points

        from decrimkit.estimators.bayes.results import hdi
        from decrimkit.numerics.keys import key_from_seed

        if not batch:
            return pd.DataFrame()
        n_real = len(batch)
        if size is not None:
            if size < n_real:
                raise SpecificationError(f"bayes power: batch of {n_real} exceeds size={size}.")
            batch = list(batch) + [batch[-1]] * (size - n_real)
        ys, offs, cens, keys = [], [], [], []
        for treated, delta, seed in batch:
            y, off, cen = self.data(treated, delta)
            ys.append(y)
            offs.append(off)
            cens.append(cen)
            keys.append(jax.random.split(key_from_seed(int(seed)), self.chains))
        rep = np.repeat(np.arange(len(batch)), self.chains)
        n = len(rep)
        init = _get_batched_jittered_initial_points(self.model, chains=n, initvals=None, random_seed=int(batch[0][2]))
        init = [jnp.asarray(np.asarray(v) if n > 1 else np.asarray(v)[None]) for v in init]
        att, div = self._run(
            jnp.concatenate(keys),
            init,
            jnp.asarray(np.stack(ys)[rep].astype(self._y_dtype)),
            jnp.asarray(np.stack(offs)[rep]),
            jnp.asarray(np.asarray(cens)[rep]),
        )
        att = np.asarray(att).reshape(len(batch), self.chains, self.draws)
        div = np.asarray(div).reshape(len(batch), self.chains, self.draws).sum(axis=(1, 2))
        rows = []
        for i in range(n_real):
            a = att[i]
            lo, hi = hdi(a.reshape(-1))
            r_hat = float(az.rhat(a)) if self.chains > 1 else float("nan")
            ess = float(az.ess(a))
            rows.append(
                {
                    "estimate": float(a.mean()),
                    "se": float(a.std(ddof=1)),
                    "conf_low": float(lo),
                    "conf_high": float(hi),
                    "r_hat": r_hat,
                    "ess_bulk": ess,
                    "divergences": int(div[i]),
                    "converged": bool((self.chains < 2 or r_hat <= 1.01) and ess >= 400 and div[i] == 0),
                }
            )
        return pd.DataFrame(rows)
