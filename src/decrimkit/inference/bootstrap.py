"""Multiplier bootstrap over influence functions, with sup-t simultaneous critical values.

Given per-unit influence functions ``psi`` (n, k) of k asymptotically linear estimators
(``theta_hat - theta ~ mean_i psi_i``), one bootstrap replicate draws i.i.d. multipliers ``v`` with
mean 0 and variance 1, one per cluster, and forms ``sqrt(n) * mean_i v_{c(i)} psi_i``. This is the
procedure of R ``did``'s ``mboot`` (Callaway and Sant'Anna 2021, Algorithm 1):

- standard errors are the bootstrap interquartile range divided by ``qnorm(.75) - qnorm(.25)``
  and by ``sqrt(n)`` (robust to heavy tails);
- the simultaneous critical value is the ``1 - alpha`` quantile (R's ``type = 1``) over replicates of
  ``max_j |draw_j / sigma_j|`` (sup-t band, Montiel Olea and Plagborg-Moller 2019);
- with clusters coarser than units, influence functions are averaged within cluster and the draw is
  ``sqrt(G) * mean_c v_c psi_c`` (R ``did``'s ``clustervars``); the default cluster is the unit.

Multipliers are Mammen's two-point weights (as R ``did``, via ``BMisc::multiplier_bootstrap``) or
Rademacher, drawn as one ``vmap`` over split keys inside one ``jax.jit``; the replicates are then one
matrix product. The same key gives the same multipliers for any influence-function matrix with the
same rows, so effects aggregated from one ATT(g,t) fit share one joint bootstrap distribution.

References
----------
Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
*Journal of Econometrics* 225(2), 200-230.
Mammen, E. (1993). Bootstrap and wild bootstrap for high dimensional linear models.
*Annals of Statistics* 21(1), 255-285.
"""

from __future__ import annotations

from functools import partial
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from decrimkit.errors import DataError
from decrimkit.options import check_option

__all__ = [
    "Multipliers",
    "MultiplierBootstrap",
    "multiplier_weights",
    "multiplier_draws",
    "multiplier_bootstrap",
    "quantile_type1",
]

Multipliers = Literal["mammen", "rademacher"]

_SQRT5 = np.sqrt(5.0)
_MAMMEN_LOW = (1 - _SQRT5) / 2
_MAMMEN_HIGH = (1 + _SQRT5) / 2
_MAMMEN_P_LOW = (_SQRT5 + 1) / (2 * _SQRT5)
_IQR_NORMAL = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)
_DEGENERATE = np.sqrt(np.finfo(float).eps) * 10  # R did: sqrt(.Machine$double.eps) * 10


class MultiplierBootstrap(NamedTuple):
    """Result of :func:`multiplier_bootstrap`.

    draws: (n_boot, k) replicates ``sqrt(G) * mean_c v_c psi_c``; se: (k,) IQR-based standard errors
    (NaN where the influence function is degenerate); crit: sup-t critical value for simultaneous
    ``1 - alpha`` bands (NaN when no column is usable); n_clusters: G; dist: the multiplier law.
    """

    draws: np.ndarray
    se: np.ndarray
    crit: float
    n_clusters: int
    dist: str


def _one_replicate(key: jax.Array, *, n_clusters: int, dist: str) -> jax.Array:
    if dist == "rademacher":
        return jax.random.rademacher(key, (n_clusters,), dtype=jnp.float64)
    low = jax.random.bernoulli(key, _MAMMEN_P_LOW, (n_clusters,))
    return jnp.where(low, _MAMMEN_LOW, _MAMMEN_HIGH)


@partial(jax.jit, static_argnames=("n_boot", "n_clusters", "dist"))
def multiplier_weights(key: jax.Array, *, n_boot: int, n_clusters: int, dist: str = "mammen") -> jax.Array:
    """(n_boot, n_clusters) multipliers, one replicate per split key (``vmap`` over draws).

    The shape depends only on the number of draws and clusters, so every aggregation of one fit
    reuses one compiled kernel and one set of multipliers.
    """
    draw = partial(_one_replicate, n_clusters=n_clusters, dist=dist)
    return jax.vmap(draw)(jax.random.split(key, n_boot))


def multiplier_draws(key: jax.Array, psi: np.ndarray, *, n_boot: int, dist: str = "mammen") -> np.ndarray:
    """(n_boot, k) replicates ``sqrt(G) * mean_c v_c psi_c`` for cluster-level influence functions (G, k)."""
    psi = np.asarray(psi, dtype="float64")
    g = psi.shape[0]
    v = np.asarray(multiplier_weights(key, n_boot=int(n_boot), n_clusters=g, dist=dist))
    return (v @ psi) / np.sqrt(g)


def quantile_type1(x: np.ndarray, q: float, axis: int = 0) -> np.ndarray:
    """R's ``quantile(type = 1)``: the inverse of the empirical distribution function."""
    s = np.sort(x, axis=axis)
    m = s.shape[axis]
    idx = max(int(np.ceil(m * q - 1e-12)) - 1, 0)
    return np.take(s, idx, axis=axis)


def multiplier_bootstrap(
    psi: np.ndarray,
    key: jax.Array,
    *,
    n_boot: int = 999,
    dist: Multipliers = "mammen",
    alpha: float = 0.05,
    cluster: np.ndarray | None = None,
) -> MultiplierBootstrap:
    """Multiplier bootstrap of estimators with per-unit influence functions ``psi`` (n,) or (n, k).

    Parameters
    ----------
    psi : (n,) or (n, k) float array
        Influence functions, one row per unit (``sqrt(n)``-scaled so that ``se = sqrt(mean(psi**2) / n)``).
    key : jax PRNG key
        Made once from the caller's seed (:func:`decrimkit.numerics.keys.key_from_seed`).
    n_boot : int
        Number of replicates.
    dist : {"mammen", "rademacher"}
        Multiplier distribution.
    alpha : float
        One minus the simultaneous coverage of the sup-t band.
    cluster : (n,) array, optional
        Cluster labels coarser than units (influence functions are averaged within cluster).

    Returns
    -------
    MultiplierBootstrap
    """
    check_option("dist", dist, Multipliers)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise DataError(f"n_boot must be an integer of at least 2, got {n_boot!r}.")
    psi = np.asarray(psi, dtype="float64")
    psi = psi[:, None] if psi.ndim == 1 else psi
    n = psi.shape[0]
    if cluster is not None:
        labels = np.asarray(cluster)
        if labels.shape != (n,):
            raise DataError(f"cluster must hold one label per unit ({n}), got shape {labels.shape}.")
        codes = np.unique(labels, return_inverse=True)[1].reshape(-1)
        g = int(codes.max()) + 1
        sums = np.zeros((g, psi.shape[1]))
        np.add.at(sums, codes, psi)
        counts = np.bincount(codes, minlength=g)
        psi_c = sums / counts[:, None]
    else:
        g, psi_c = n, psi
    draws = multiplier_draws(key, psi_c, n_boot=int(n_boot), dist=dist)
    ok = np.isfinite(draws).all(axis=0) & (np.sum(draws**2, axis=0) > _DEGENERATE)
    sigma = np.full(psi.shape[1], np.nan)
    if ok.any():
        q75 = quantile_type1(draws[:, ok], 0.75)
        q25 = quantile_type1(draws[:, ok], 0.25)
        sigma[ok] = (q75 - q25) / _IQR_NORMAL
    sigma[~(sigma > _DEGENERATE)] = np.nan
    usable = np.isfinite(sigma)
    if usable.any():
        t_max = np.max(np.abs(draws[:, usable] / sigma[usable]), axis=1)
        crit = float(quantile_type1(t_max[np.isfinite(t_max)], 1 - alpha))
    else:
        crit = float("nan")
    return MultiplierBootstrap(draws=draws, se=sigma / np.sqrt(n), crit=crit, n_clusters=g, dist=dist)
