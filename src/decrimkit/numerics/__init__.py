"""Shared numerical kernels: PRNG keys from seeds, float64 checks, fixed-effect demeaning."""

from decrimkit.numerics.keys import as_float64, key_from_seed, numpy_rng

__all__ = ["key_from_seed", "numpy_rng", "as_float64"]
