"""map_chunks: fixed-shape calls of a batched kernel give the same answers as one call over all problems."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decrimkit.numerics.chunks import map_chunks


class Out(NamedTuple):
    total: jax.Array
    scaled: jax.Array


@jax.jit
def kernel(a, b):
    return Out(total=jnp.sum(a, axis=1) + b, scaled=a * b[:, None])


@pytest.mark.parametrize("n", [1, 7, 8, 9, 24])
def test_same_as_one_batch_and_one_shape(n):
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=(n, 3)), rng.normal(size=n)
    shapes = set()

    def counted(x, y):
        shapes.add(x.shape)
        return kernel(jnp.asarray(x), jnp.asarray(y))

    out = map_chunks(counted, (a, b), chunk=8)
    whole = kernel(jnp.asarray(a), jnp.asarray(b))
    assert isinstance(out, Out)
    assert out.total.shape == (n,) and out.scaled.shape == (n, 3)
    # a row sum may be vectorised differently at another batch shape on another CPU: rounding-level
    # agreement (a few ulps of the summed magnitudes); the elementwise product is exact
    bound = 4 * np.finfo(float).eps * (np.abs(a).sum(axis=1) + np.abs(b))
    assert np.all(np.abs(out.total - np.asarray(whole.total)) <= bound)
    np.testing.assert_array_equal(out.scaled, np.asarray(whole.scaled))
    assert shapes == {(8, 3)}  # every call at the chunk shape: one compilation


def test_real_marks_the_padding_problems():
    """With ``real=True`` the kernel gets, last, a mask that is False exactly on the padding problems."""
    masks = []

    def kernel_with_mask(x, real):
        masks.append(np.asarray(real))
        return jnp.asarray(x).sum(axis=1)

    a = np.arange(30.0).reshape(10, 3)
    out = map_chunks(kernel_with_mask, (a,), chunk=4, real=True)
    np.testing.assert_array_equal(out, a.sum(axis=1))
    assert [m.tolist() for m in masks] == [[True] * 4, [True] * 4, [True, True, False, False]]
