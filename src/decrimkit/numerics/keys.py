"""Seeds in, explicit keys out: no global random state anywhere in decrimkit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from decrimkit.errors import SpecificationError


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SpecificationError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def key_from_seed(seed: int) -> jax.Array:
    """A JAX PRNG key made once from a user seed (split it, never reuse it)."""
    return jax.random.key(_check_seed(seed))


def numpy_rng(seed: int) -> np.random.Generator:
    """A NumPy generator from a user seed."""
    return np.random.default_rng(_check_seed(seed))


def as_float64(x: object) -> jax.Array:
    """A float64 JAX array; refuses to run in float32 (x64 mode must be on)."""
    a = jnp.asarray(x, dtype=jnp.float64)
    if a.dtype != jnp.float64:
        raise RuntimeError("decrimkit kernels need JAX's x64 mode; import decrimkit before creating arrays.")
    return a
