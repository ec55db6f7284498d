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
Rademacher. They are never stored whole: units are split into tiles of ``TILE`` rows, the
multipliers of tile ``j`` come from their own counter-free stream (NumPy ``PCG64`` seeded by the
JAX key's data and ``j`` through ``SeedSequence``), one 16-bit integer per multiplier compared with
``round(P(low) * 2**16)`` (Mammen's ``P(low)`` to within ``2**-17``, i.e. 0.723602 for 0.723607, which
moves the multipliers' mean and variance by about 1e-5; Rademacher exactly). Within a tile
a draw is ``sum_i v_i psi_i = S * mean(psi) + (low - high) * sum_{i: v_i = low} (psi_i - mean(psi))``
with ``S = sum_i v_i`` counted exactly; the second sum is a ``(rows, TILE) @ (TILE, k)`` product of
the 0/1 multiplier slice and the tile-centred influence functions in single precision (centring keeps
its rounding at about 1e-7 of the draw's scale, far below the bootstrap's own Monte Carlo error of
about ``1 / sqrt(2 * n_boot)``), computed in slices of ``_ROWS`` replicates (the slice stays in cache
between the comparison and the product) on the influence-function columns that vary in that tile;
tiles are accumulated in double precision. Tiles are processed in parallel threads and summed in a
fixed order, so the same key gives the same numbers whatever the thread count. The same key gives the
same multipliers for any influence-function matrix with the same rows (:func:`multiplier_weights`
materialises them), so effects aggregated from one ATT(g,t) fit share one joint bootstrap distribution.

References
----------
Callaway, B. and Sant'Anna, P. H. C. (2021). Difference-in-differences with multiple time periods.
*Journal of Econometrics* 225(2), 200-230.
Mammen, E. (1993). Bootstrap and wild bootstrap for high dimensional linear models.
*Annals of Statistics* 21(1), 255-285.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, NamedTuple

import jax
import numpy as np
from scipy import stats

from decrimkit.errors import DataError
from decrimkit.limits import check_replications
from decrimkit.options import check_option
from decrimkit.progress import track

try:  # optional: without it tiles are processed in one thread (BLAS may still use several)
    from threadpoolctl import threadpool_limits as _blas_limits
except ImportError:  # pragma: no cover - depends on the environment
    _blas_limits = None

__all__ = [
    "Multipliers",
    "MultiplierBootstrap",
    "multiplier_weights",
    "multiplier_draws",
    "multiplier_bootstrap",
    "quantile_type1",
    "summarise_draws",
    "TILE",
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


TILE = 1024  # units per tile: each tile's multipliers come from their own stream
_GROUP = 8  # tiles summed in order within a group, groups summed in order: thread-count independent
_BITS = 2.0**16
_ROWS = 256  # replicates per slice of a tile's 0/1 multiplier matrix (1 MiB of float32)


def _law(dist: str) -> tuple[int, float, float]:
    """(threshold on a uniform 16-bit integer, low value, high value): low when ``bits < threshold``."""
    if dist == "rademacher":
        return 2**15, -1.0, 1.0
    return int(round(_MAMMEN_P_LOW * _BITS)), float(_MAMMEN_LOW), float(_MAMMEN_HIGH)


def _key_words(key: jax.Array) -> tuple[int, ...]:
    return tuple(int(w) for w in np.asarray(jax.random.key_data(key)).ravel())


def _tile_bits(words: tuple[int, ...], tile: int, n_boot: int, m: int) -> np.ndarray:
    """(n_boot, m) uniform 16-bit integers of one tile (its own PCG64 stream, four per 64-bit output)."""
    gen = np.random.PCG64(np.random.SeedSequence(words, spawn_key=(tile,)))
    raw = gen.random_raw((n_boot * m + 3) // 4).view(np.uint16)
    return raw[: n_boot * m].reshape(n_boot, m)


def _workers(n_tasks: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, n_tasks))


def multiplier_weights(key: jax.Array, *, n_boot: int, n_clusters: int, dist: str = "mammen") -> np.ndarray:
    """(n_boot, n_clusters) multipliers: column ``i`` is the multiplier of cluster (row of ``psi``) ``i``.

    Materialises what :func:`multiplier_draws` uses tile by tile (for tests and small problems; the
    draws themselves never build this matrix).
    """
    check_option("dist", dist, Multipliers)
    threshold, low, high = _law(dist)
    words = _key_words(key)
    out = np.empty((int(n_boot), int(n_clusters)))
    for j, start in enumerate(range(0, int(n_clusters), TILE)):
        m = min(TILE, int(n_clusters) - start)
        out[:, start : start + m] = np.where(_tile_bits(words, j, int(n_boot), m) < threshold, low, high)
    return out


def multiplier_draws(key: jax.Array, psi: np.ndarray, *, n_boot: int, dist: str = "mammen") -> np.ndarray:
    """(n_boot, k) replicates ``sqrt(G) * mean_c v_c psi_c`` for cluster-level influence functions (G, k).

    Equals ``multiplier_weights(key, ...) @ psi / sqrt(G)`` up to rounding (about 1e-7 of the draws'
    scale: the 0/1 products are single precision, see the module notes), without storing the
    multipliers. Each tile handles only the columns of ``psi`` that are not zero in it (influence
    functions of ATT(g,t) cells are zero outside the cohort and its comparison units, so sorting rows by
    cohort skips most of them), and columns constant on the tile (cohort-share terms) cost no product.
    """
    check_option("dist", dist, Multipliers)
    psi = np.ascontiguousarray(psi, dtype="float64")
    psi = psi[:, None] if psi.ndim == 1 else psi
    g, k = psi.shape
    n_boot = int(n_boot)
    w = _workers(-(-g // TILE) // _GROUP + 1)  # each worker holds an (n_boot, k) sum and an (n_boot, TILE) tile
    check_replications("n_boot", n_boot, per_replication=k + w * (k + TILE), unit="numbers")
    if k == 0 or g == 0:
        return np.zeros((n_boot, k))
    threshold, low, high = _law(dist)
    words = _key_words(key)
    n_tiles = -(-g // TILE)
    live = np.add.reduceat(np.abs(psi) > 0, np.arange(0, g, TILE), axis=0) > 0  # (n_tiles, k)

    def tile_terms(j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Columns, tile means, centred varying columns (float32, with a ones column), their indices, size."""
        cols = np.flatnonzero(live[j])
        block = psi[j * TILE : (j + 1) * TILE][:, cols]
        mean = block.mean(axis=0)
        varies = np.flatnonzero((block != block[:1]).any(axis=0))
        centred = np.empty((block.shape[0], varies.size + 1), dtype=np.float32)
        centred[:, :-1] = block[:, varies] - mean[varies]
        centred[:, -1] = 1.0  # its product counts the low multipliers of each replicate, exactly
        return cols, mean, centred, varies, block.shape[0]

    def group(first: int) -> np.ndarray:
        acc = np.zeros((n_boot, k))
        ind = np.empty((_ROWS, TILE), dtype=np.float32)
        for j in range(first, min(first + _GROUP, n_tiles)):
            if not live[j].any():
                continue
            cols, mean, centred, varies, m = tile_terms(j)
            bits = _tile_bits(words, j, n_boot, m)
            out = acc[:, cols]
            for r in range(0, n_boot, _ROWS):
                rows = min(_ROWS, n_boot - r)
                is_low = ind[:rows, :m]
                np.less(bits[r : r + rows], threshold, out=is_low, casting="unsafe")
                part = (is_low @ centred).astype(np.float64)
                total = high * m + (low - high) * part[:, -1]  # sum_i v_i of each replicate
                out[r : r + rows] += total[:, None] * mean
                out[r : r + rows, varies] += (low - high) * part[:, :-1]
            acc[:, cols] = out
        return acc

    firsts = range(0, n_tiles, _GROUP)
    n_workers = _workers(len(firsts)) if _blas_limits is not None else 1
    if n_workers == 1:
        partials = [group(f) for f in track(firsts, "multiplier bootstrap")]
    else:
        # one BLAS thread per worker: BLAS's own threads on top of ours would oversubscribe the cores
        with _blas_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_workers) as pool:
            partials = list(track(pool.map(group, firsts), "multiplier bootstrap", total=len(firsts)))
    total = partials[0]
    for p in partials[1:]:
        total += p
    return total / np.sqrt(g)


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
    check_replications("n_boot", n_boot)
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
    se, crit = summarise_draws(draws, n, alpha)
    return MultiplierBootstrap(draws=draws, se=se, crit=crit, n_clusters=g, dist=dist)


def summarise_draws(draws: np.ndarray, n: int, alpha: float = 0.05) -> tuple[np.ndarray, float]:
    """Standard errors and sup-t critical value from (n_boot, k) replicates of ``n``-unit influence functions.

    ``se`` is the interquartile range over ``qnorm(.75) - qnorm(.25)`` divided by ``sqrt(n)`` (NaN
    for degenerate columns); ``crit`` the ``1 - alpha`` quantile (type 1) of ``max_j |draw_j / sigma_j|``
    over usable columns (NaN if none), as R ``did``'s ``mboot``.
    """
    draws = np.asarray(draws, dtype="float64")
    draws = draws[:, None] if draws.ndim == 1 else draws
    ok = np.isfinite(draws).all(axis=0) & (np.sum(draws**2, axis=0) > _DEGENERATE)
    sigma = np.full(draws.shape[1], np.nan)
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
    return sigma / np.sqrt(n), crit
