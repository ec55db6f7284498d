"""Bayesian hierarchical DiD in the power grid: one compiled sampler per design, replicates vmapped.

``bayes.hierarchical_did`` builds a PyMC model whose data (death counts, log-population offset and the
intercept's prior centre) are ``pm.Data`` containers (``HDID_DATA``), so one compiled program serves
every data set of the same shape. The power grid fits the *same* model to many panels, so here:

1. **One model per design.** The placebo-treated states of a replicate are relabelled ``u00..`` (in
   cohort order) and the other pool states after them, so the unit index, the treatment indicator, the
   jurisdiction index and the ATT weights are identical in every replicate of a policy model. The
   model is exchangeable in units (iid unit effects), so the labels do not change the posterior.
2. **The same PyMC model.** Built by the estimator's own ``hdid_design`` and ``hdid_model`` (negative
   binomial, population offset, ``HDID_PRIORS``) from a template replicate; its data containers become
   inputs of the JAX log density (the package's engine, ``estimators/bayes/_engine.py``).
3. **One jit, vmapped.** The package's one NUTS loop (``_engine.nuts``: Stan's windowed warm-up, step
   size to ``target_accept`` 0.9, diagonal mass matrix, for ``tune`` steps, then ``draws`` transitions)
   from PyMC's jittered initial points; ``chains`` chains per replicate, all (replicate, effect, chain)
   triples ``vmap``-ed under one ``jax.jit``.

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
from decrimkit.estimators.bayes import _hierarchical_did as hdid
from decrimkit.estimators.bayes._engine import initial_points, model_functions, nuts

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
    deviations : {"ar1", "none"}
        ``hierarchical_did``'s ``deviations`` (its default ``"ar1"``, the variant whose HDIs held on the real
        state placebo laws).
    """

    FAMILY = "negative_binomial"

    def __init__(
        self, design: PowerDesign, *, chains: int = 2, draws: int = 500, tune: int = 500, target_accept: float = 0.9,
        deviations: str = "ar1",
    ) -> None:
        self.design, self.chains, self.draws, self.tune = design, int(chains), int(draws), int(tune)
        self.target_accept, self.deviations = float(target_accept), deviations
        k = len(design.cohorts)
        des = self._design(np.arange(k), 0.0)
        self.model, self._template = hdid.hdid_model(des, family=self.FAMILY, priors=dict(hdid.HDID_PRIORS),
                                                    deviations=deviations), des
        self._fns = model_functions(self.model, data=hdid.HDID_DATA, outputs=("att",))
        self._run = self._compile()

    def _panel(self, treated: np.ndarray, delta: float) -> Any:
        from decrimkit import Panel

        fr = relabelled_frame(self.design, treated, delta)
        return Panel.from_frame(
            fr, unit="state", time="year", outcome="deaths", cohort="cohort", population="population"
        )

    def _design(self, treated: np.ndarray, delta: float) -> Any:
        panel = self._panel(treated, delta)
        return hdid.hdid_design(
            panel,
            policy_model={u: self.design.model for u in panel.treated_units},
            family=self.FAMILY,
            exposure="population",
        )

    def data(self, treated: np.ndarray, delta: float) -> tuple[np.ndarray, ...]:
        """Values of the model's data containers for one replicate, its design checked against the template's."""
        des = self._design(treated, delta)
        t = self._template
        for name in ("unit", "time", "d", "jur", "model_of_jur"):
            if not np.array_equal(getattr(des, name), getattr(t, name)):
                raise SpecificationError(f"bayes power: replicate design differs from the template in {name!r}.")
        return des.data(self.FAMILY)

    def _compile(self) -> Any:
        fns = self._fns

        def logdensity(pos: list[Any], data: tuple[Any, ...]) -> Any:
            return fns.logp(*pos, *data)[0]

        def collect(state: Any, info: Any, params: dict[str, Any]) -> Any:
            return fns.outputs(*state.position, *params["data"])[0], info.is_divergent

        return nuts(logdensity, tune=self.tune, draws=self.draws, target_accept=self.target_accept,
                    collect=collect)

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

        from decrimkit.estimators.bayes.results import hdi
        from decrimkit.numerics.keys import key_from_seed

        if not batch:
            return pd.DataFrame()
        n_real = len(batch)
        if size is not None:
            if size < n_real:
                raise SpecificationError(f"bayes power: batch of {n_real} exceeds size={size}.")
            batch = list(batch) + [batch[-1]] * (size - n_real)
        datasets, keys = [], []
        for treated, delta, seed in batch:
            datasets.append(self.data(treated, delta))
            keys.append(jax.random.split(key_from_seed(int(seed)), self.chains))
        rep = np.repeat(np.arange(len(batch)), self.chains)
        data = tuple(jnp.asarray(np.stack([d[k] for d in datasets])[rep]) for k in range(len(datasets[0])))
        init = initial_points(self.model, len(rep), int(batch[0][2]), self._fns, data)
        att, div = self._run(jnp.concatenate(keys), [jnp.asarray(v) for v in init], data)
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
