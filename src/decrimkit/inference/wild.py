"""The restricted wild cluster bootstrap (WCR) of one coefficient, invertible at any level.

Public functions (NumPy arrays in and out; float64):

``wild_cluster_bootstrap(x, y, cluster, *, coef, null=0.0, weights=None, n_params=None, n_boot=9999,
weights_dist="rademacher", seed=0) -> WildBootstrap``
    Restricted wild cluster bootstrap (WCR: the null ``beta[coef] = null`` imposed) for one
    coefficient of a least squares fit of ``y`` on ``x`` (fixed effects already partialled out,
    Frisch-Waugh-Lovell). Returns the CR1 t statistic, the symmetric two-tailed bootstrap p-value
    ``mean(|t*| > |t|)``, and a confidence interval by test inversion (the set of nulls not rejected
    at level ``alpha``), as in Stata's boottest, R's fwildclusterboot and Python's wildboottest.

``wild_cluster_test(x, y, cluster, *, coef, ..., bootcluster=None) -> WildInference``
    The same test as an invertible object (p-value at any null, interval at any level), as estimators
    attach it to their results; ``bootcluster`` nested in ``cluster`` gives the MacKinnon-Webb subcluster
    bootstrap. :class:`WildInferenceSet` holds one such test per coefficient.

Method
------
The bootstrap works at cluster level (Roodman, MacKinnon, Nielsen and Webb 2019): with ``a`` the row
of ``(X'X)^{-1}X'`` for the tested coefficient and ``u`` the restricted residuals, the bootstrap
statistic for cluster weights ``v`` is ``t*(v) = v'S / sqrt(adj * sum_g (v_g S_g - (C v)_g)^2)`` with
``S_g = sum_{i in g} a_i u_i`` and ``C = P Q'``, ``P_g = sum_{i in g} a_i x_i``,
``Q_h = sum_{i in h} (X'X)^{-1} x_i u_i``. ``S`` and ``C`` are linear in the null value, so test
inversion reuses the same draws: per draw, t*(r) = (n0 + r n1) / sqrt(adj (q00 + 2 r q01 + r^2 q11)). Weights: Rademacher (+-1) or Webb's six-point distribution
(+-sqrt(1/2), +-1, +-sqrt(3/2)), drawn per bootstrap replicate from split keys and vmapped.

References
----------
Cameron, A. C., Gelbach, J. B. and Miller, D. L. (2008). Bootstrap-based improvements for inference
with clustered errors. *Review of Economics and Statistics* 90(3), 414-427.
Roodman, D., MacKinnon, J. G., Nielsen, M. O. and Webb, M. D. (2019). Fast and wild: bootstrap
inference in Stata using boottest. *Stata Journal* 19(1), 4-60.
Webb, M. D. (2023). Reworking wild bootstrap-based inference for clustered errors. *Canadian Journal
of Economics* 56(3), 839-858.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.inference.cluster import _bread, _codes, _group_sum, _weighted, cluster_adjustment, sandwich
from decrimkit.limits import check_replications
from decrimkit.numerics.keys import key_from_seed
from decrimkit.options import WildWeights, check_option
from decrimkit.results import Spec, Summarised, tidy_frame

__all__ = ["WildBootstrap", "WildInference", "WildInferenceSet", "wild_cluster_bootstrap", "wild_cluster_test",
           "wild_weights"]

_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


@dataclass(frozen=True, repr=False)
class WildBootstrap(Summarised):
    """Result of :func:`wild_cluster_bootstrap` (and of ``did.twfe(..., inference="wild").wild``).

    ``estimate``, ``se``: the coefficient and its CR1 standard error; ``t_stat``: CR1 t statistic of the
    null; ``p_value``: bootstrap p-value of the null (two-tailed, symmetric); ``conf_int(alpha)``: the
    test-inversion interval at any level (the nulls the same draws do not reject); ``t_boot``: (n_boot,)
    bootstrap statistics under the null; ``n_clusters``: G; ``weights_dist``: the weight distribution.
    """

    t_stat: float
    p_value: float
    t_boot: np.ndarray
    n_clusters: int
    weights_dist: str
    test: WildInference = field(repr=False)
    null_value: float = 0.0
    spec: Spec = field(default_factory=lambda: Spec("inference.wild_cluster_bootstrap"))
    title: str = "Wild cluster bootstrap (restricted, WCR)"

    @property
    def estimate(self) -> float:
        return float(self.test.beta)

    @property
    def se(self) -> float:
        """The CR1 standard error the t statistic uses."""
        return float(self.test.se)

    def inference_method(self) -> str:
        return f"{self.test.describe()}; interval by test inversion"

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row, term ``coef``: the coefficient, its CR1 SE, the bootstrap interval at ``alpha`` and the
        bootstrap p-value of ``beta = null_value``; extra columns ``null`` and ``t_stat``."""
        if not 0 < alpha < 1:
            raise SpecificationError(f"alpha={alpha!r} must lie in (0, 1).")
        lo, hi = self.test.conf_int(alpha)[0]
        return tidy_frame(["coef"], self.estimate, self.se, lo, hi, self.p_value, self.inference_method(),
                          null=[self.null_value], t_stat=[self.t_stat])

    def summary(self) -> str:
        return super().summary() + (f"\n\np-value (null: coefficient = {self.null_value:g}) and interval: "
                                    f"{self.inference_method()}\n  assumes: {self.test.assumes}")

    def plot(self, kind: str = "distribution", ax: object = None) -> object:
        """Histogram of the bootstrap t statistics with the observed one (returns the Figure)."""
        from decrimkit.plotting.basic import bootstrap_plot

        return bootstrap_plot(self.t_boot, self.t_stat, ax=ax, title=self.title)


def _one_weight(key: jax.Array, *, n_clusters: int, dist: str) -> jax.Array:
    if dist == "rademacher":
        return jax.random.rademacher(key, (n_clusters,), dtype=jnp.float64)
    return jnp.asarray(_WEBB)[jax.random.randint(key, (n_clusters,), 0, 6)]


@partial(jax.jit, static_argnames=("n_boot", "n_clusters", "dist"))
def wild_weights(key: jax.Array, *, n_boot: int, n_clusters: int, dist: str) -> jax.Array:
    """(n_boot, n_clusters) cluster weights, one replicate per split key (Rademacher or Webb)."""
    draw = partial(_one_weight, n_clusters=n_clusters, dist=dist)
    return jax.vmap(draw)(jax.random.split(key, n_boot))


class _Moments(NamedTuple):
    """Per-draw pieces of t*(r) = (n0 + r n1) / sqrt(adj (q00 + 2 r q01 + r^2 q11)); each (n_boot,)."""

    n0: jax.Array
    n1: jax.Array
    q00: jax.Array
    q01: jax.Array
    q11: jax.Array


def _moments_one(v: jax.Array, s0: jax.Array, s1: jax.Array, m0: jax.Array, m1: jax.Array) -> _Moments:
    """One replicate: bootstrap-cluster weights v (H,) -> the pieces of its bootstrap t statistic."""
    e0 = m0 @ v
    e1 = m1 @ v
    return _Moments(v @ s0, v @ s1, e0 @ e0, e0 @ e1, e1 @ e1)


@jax.jit
def _wild_moments(v: jax.Array, s0: jax.Array, s1: jax.Array, m0: jax.Array, m1: jax.Array) -> _Moments:
    """Vmapped over the rows of v (n_boot, H)."""
    return jax.vmap(_moments_one, in_axes=(0, None, None, None, None))(v, s0, s1, m0, m1)


def _t_boot(m: _Moments, r: np.ndarray, adj: float) -> np.ndarray:
    """(len(r), n_boot) bootstrap statistics at the null values r."""
    r = np.asarray(r, dtype="float64")[:, None]
    den = adj * (np.asarray(m.q00) + 2 * r * np.asarray(m.q01) + r**2 * np.asarray(m.q11))
    return (np.asarray(m.n0) + r * np.asarray(m.n1)) / np.sqrt(np.maximum(den, 0.0))


@dataclass(frozen=True)
class WildInference:
    """A restricted wild cluster bootstrap test of one coefficient, invertible at any level.

    ``beta``, ``se``: the estimate and its CR1 standard error; ``adj``: the CR1 factor; ``moments``: the
    per-draw pieces of the bootstrap statistic as a function of the null (see the module docstring);
    ``n_clusters``: G; ``n_bootclusters``: H, the level the weights are drawn at (H > G for the
    MacKinnon-Webb subcluster bootstrap); ``rows``: the result rows it covers.
    """

    beta: float
    se: float
    adj: float
    moments: _Moments
    n_clusters: int
    n_bootclusters: int
    weights_dist: str
    n_boot: int
    seed: int
    rows: tuple[int, ...] | None = (0,)
    overall: bool = False
    method: str = "wild"

    def _pvals(self, nulls: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nulls = np.atleast_1d(np.asarray(nulls, dtype="float64"))
        tb = _t_boot(self.moments, nulls, self.adj)
        t_obs = (self.beta - nulls) / self.se
        return np.mean(np.abs(tb) > np.abs(t_obs)[:, None], axis=1), tb

    def p_value(self, null: float = 0.0) -> np.ndarray:
        """(1,) symmetric bootstrap p-value of ``beta = null``."""
        return self._pvals(np.array([null]))[0]

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """(1, 2) test-inversion interval: the nulls not rejected at level ``alpha``."""
        return np.array([[_invert(self._pvals, self.beta, self.se, alpha, side) for side in (-1.0, 1.0)]])

    @property
    def null(self) -> str:
        return "the coefficient equals the stated value (0 for the p-value), imposed on the bootstrap DGP"

    @property
    def assumes(self) -> str:
        level = ("weights drawn per observation within clusters (MacKinnon-Webb subcluster bootstrap)"
                 if self.n_bootclusters > self.n_clusters else "weights drawn per cluster")
        return (f"errors independent across {self.n_clusters} clusters; {level}; conservative (under-rejects) "
                f"with very few treated clusters")

    def describe(self) -> str:
        sub = " subcluster" if self.n_bootclusters > self.n_clusters else ""
        return (f"restricted wild cluster{sub} bootstrap (WCR, {self.weights_dist} weights, {self.n_boot} draws, "
                f"seed {self.seed}, G={self.n_clusters})")


@dataclass(frozen=True)
class WildInferenceSet:
    """Restricted wild cluster bootstrap tests of several coefficients, each with its own null imposed.

    ``tests``: one :class:`WildInference` per covered row (in row order), all from the same seed, so the
    same bootstrap weights; ``rows``: the result rows they cover. Each coefficient is tested on its own
    (the others free): p-values and intervals are pointwise, not joint.
    """

    tests: tuple[WildInference, ...]
    rows: tuple[int, ...] | None = None
    overall: bool = False
    method: str = "wild"

    def p_value(self, null: float = 0.0) -> np.ndarray:
        return np.concatenate([t.p_value(null) for t in self.tests])

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        return np.vstack([t.conf_int(alpha) for t in self.tests])

    @property
    def null(self) -> str:
        return ("each coefficient on its own equals the stated value (0 for the p-value), imposed on the "
                "bootstrap DGP; the other coefficients are re-estimated under it")

    @property
    def assumes(self) -> str:
        return self.tests[0].assumes

    def describe(self) -> str:
        return self.tests[0].describe() + f", {len(self.tests)} coefficients each tested on its own"


def wild_cluster_test(
    x: object,
    y: object,
    cluster: object,
    *,
    coef: int,
    weights: object = None,
    n_params: int | None = None,
    n_boot: int = 9999,
    weights_dist: WildWeights = "rademacher",
    seed: int = 0,
    bootcluster: object = None,
    row: int | None = None,
) -> WildInference:
    """The restricted wild cluster bootstrap of ``beta[coef]`` as an invertible :class:`WildInference`.

    ``bootcluster`` (n,) labels of the level the bootstrap weights are drawn at; None draws them per
    cluster; labels nested within ``cluster`` (e.g. one per observation) give the MacKinnon-Webb (2018)
    subcluster bootstrap, the CR1 statistic still clustered by ``cluster``.
    """
    check_option("weights_dist", weights_dist, WildWeights)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 99:
        raise SpecificationError(f"n_boot must be an integer of at least 99, got {n_boot!r}.")
    check_replications("n_boot", n_boot)
    xa, ya = _weighted(x, y, weights)
    n, p = xa.shape
    if not 0 <= coef < p:
        raise SpecificationError(f"coef={coef} is not a column of x (0..{p - 1}).")
    codes, g = _codes(cluster, n)
    if bootcluster is None:
        hcodes, h = codes, g
    else:
        hcodes, h = _codes(bootcluster, n)
        pairs = pd.DataFrame({"h": hcodes, "g": codes})
        if (pairs.groupby("h")["g"].nunique() > 1).any():
            raise SpecificationError("bootcluster must be nested within the clusters (each bootstrap cluster "
                                     "inside one cluster), e.g. one per observation.")
    # the weights and the bootstrap moments hold about 6 numbers per bootstrap cluster and replication
    check_replications("n_boot", n_boot, per_replication=6 * h, unit="numbers (6 per cluster)")
    k = p if n_params is None else int(n_params)
    adj = cluster_adjustment(n, k, g)
    bread = _bread(xa)
    beta = bread @ (xa.T @ ya)
    resid = ya - xa @ beta
    se = float(np.sqrt(sandwich(bread, xa * resid[:, None], codes, adj)[coef, coef]))
    if not se > 0:
        raise DesignError("the cluster-robust standard error is zero; the tested coefficient is not identified.")

    a = bread[coef] @ xa.T  # (n,)
    others = np.delete(xa, coef, axis=1)
    xj = xa[:, coef]
    if others.shape[1]:
        proj = others @ np.linalg.solve(others.T @ others, others.T @ np.column_stack([ya, xj]))
        u0, u1 = ya - proj[:, 0], -(xj - proj[:, 1])
    else:
        u0, u1 = ya, -xj
    pg = _group_sum(a[:, None] * xa, codes, g)  # (G, p)
    ax = bread @ xa.T  # (p, n)

    def parts(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = _group_sum(a * u, hcodes, h)  # (H,)
        sgh = np.zeros((g, h))
        np.add.at(sgh, (codes, hcodes), a * u)
        q = _group_sum((ax * u).T, hcodes, h)  # (H, p)
        return s, sgh - pg @ q.T

    s0, m0 = parts(u0)
    s1, m1 = parts(u1)
    v = wild_weights(key_from_seed(seed), n_boot=int(n_boot), n_clusters=h, dist=weights_dist)
    mom = _wild_moments(v, *(jnp.asarray(z) for z in (s0, s1, m0, m1)))
    mom = _Moments(*(np.asarray(z) for z in mom))
    return WildInference(float(beta[coef]), se, float(adj), mom, g, h, str(weights_dist), int(n_boot), int(seed),
                         rows=(coef if row is None else row,))


def wild_cluster_bootstrap(
    x: object,
    y: object,
    cluster: object,
    *,
    coef: int,
    null: float = 0.0,
    weights: object = None,
    n_params: int | None = None,
    n_boot: int = 9999,
    weights_dist: WildWeights = "rademacher",
    seed: int = 0,
    bootcluster: object = None,
) -> WildBootstrap:
    """Restricted wild cluster bootstrap test of ``beta[coef] = null`` and its test-inversion interval.

    ``x`` (n, p) and ``y`` (n,) must already have the fixed effects partialled out. ``n_params`` is the K
    of the CR1 factor (see :func:`fixef_dof`). See the module docstring for the method. The interval is
    inverted from the same draws when asked for, at any level: ``conf_int(alpha)``, ``tidy(alpha)``.
    """
    test = wild_cluster_test(x, y, cluster, coef=coef, weights=weights, n_params=n_params, n_boot=n_boot,
                             weights_dist=weights_dist, seed=seed, bootcluster=bootcluster)
    pv, tb = test._pvals(np.array([null]))
    spec = Spec("inference.wild_cluster_bootstrap",
                options={"coef": coef, "null": null, "n_boot": n_boot, "weights_dist": weights_dist}, seed=seed,
                n_obs=int(np.asarray(y).shape[0]))
    return WildBootstrap(float((test.beta - null) / test.se), float(pv[0]), tb[0], test.n_clusters, weights_dist,
                         test, float(null), spec)


def _invert(pvals: object, b: float, se: float, alpha: float, side: float) -> float:
    """Bisection for the null value on one side of ``b`` where the bootstrap p-value falls to ``alpha``."""
    inner, step = b, 2.0 * se
    outer = b + side * step
    for _ in range(60):
        if pvals(np.array([outer]))[0][0] <= alpha:  # type: ignore[operator]
            break
        inner, step = outer, step * 2.0
        outer = b + side * step
    else:
        return float(side * np.inf)
    for _ in range(8):  # each round scans 64 points of the bracket at once
        grid = np.linspace(inner, outer, 65)
        reject = pvals(grid)[0] <= alpha  # type: ignore[operator]
        first = int(np.argmax(reject))  # reject[-1] is True (the outer end)
        inner, outer = grid[first - 1], grid[first]
        if abs(outer - inner) < 1e-10 * max(se, 1e-300):
            break
    return float(0.5 * (inner + outer))
