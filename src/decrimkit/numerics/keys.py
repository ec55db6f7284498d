"""Seeds in, explicit keys out: no global random state anywhere in decrimkit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from decrimkit.errors import SpecificationError

MAX_SEED = 2**63 - 1  # a seed must fit a signed 64-bit integer (JAX keys and NumPy arrays hold it as int64)


def check_seed(seed: object, name: str = "seed") -> int:
    """Return ``seed`` as a Python int if it is an integer in ``[0, 2**63 - 1]``, else raise.

    Every estimator's seed passes through here (``key_from_seed``, ``numpy_rng``, the samplers), so
    one rule holds everywhere: a bool, a float, a negative number or one that does not fit a signed
    64-bit integer is refused before any random number is drawn (JAX raised a raw ``OverflowError``
    from 2**63 on).

    Raises
    ------
    SpecificationError
        Naming the value given and the range allowed.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise SpecificationError(
            f"{name} must be an integer from 0 to 2**63 - 1 ({MAX_SEED}), got {seed!r}. Any value in that "
            f"range gives reproducible draws; e.g. reduce a large seed with seed % 2**63."
        )
    return int(seed)




def key_from_seed(seed: int) -> jax.Array:
    """A JAX PRNG key made once from a user seed (split it, never reuse it)."""
    return jax.random.key(check_seed(seed))


def numpy_rng(seed: int) -> np.random.Generator:
    """A NumPy generator from a user seed."""
    return np.random.default_rng(check_seed(seed))


def as_float64(x: object) -> jax.Array:
    """A float64 JAX array; refuses to run in float32 (x64 mode must be on)."""
    a = jnp.asarray(x, dtype=jnp.float64)
    if a.dtype != jnp.float64:
        raise RuntimeError("decrimkit kernels need JAX's x64 mode; import decrimkit before creating arrays.")
    return a
