"""Run a batched JAX kernel over any number of problems at one compiled shape.

A jitted kernel compiles once per input shape, and on CPU a compilation (seconds) can cost more than
the problems it solves (milliseconds). An estimator whose fit, cross-validation grid and placebo batch
differ only in their number of problems therefore calls the kernel on fixed-size chunks: the last
chunk is padded by repeating its final problem and the padding is dropped from the output. Repeating a
real problem (rather than padding with zeros) keeps every lane well posed, and under ``vmap`` a
while-loop then runs no longer than the chunk's real problems need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from decrimkit.progress import track

__all__ = ["map_chunks"]


def map_chunks(kernel: Callable[..., Any], batched: Sequence[np.ndarray], *, chunk: int,
               description: str = "fitting", real: bool = False) -> Any:
    """``kernel`` on ``chunk``-sized slices of the ``batched`` arrays (leading axis), concatenated.

    Parameters
    ----------
    kernel : callable
        Takes one slice of each array in ``batched`` (leading dimension ``chunk``) and returns an array
        or a pytree of arrays (e.g. a NamedTuple) whose leaves have the problems on their leading axis.
    batched : sequence of arrays
        Per-problem inputs, all with the same leading dimension (the number of problems).
    chunk : int
        Problems per call: every call has this leading dimension, so the kernel compiles once.
    description : str
        Label of the progress bar over the chunks (:func:`decrimkit.progress.track`; shown only
        for runs longer than a second).
    real : bool
        Also pass the kernel, as its last argument, a boolean slice that is False on the padding
        problems (for a kernel that can skip them rather than solve a repeat).

    Returns
    -------
    The kernel's output structure with numpy leaves holding exactly the input problems, in order.
    """
    n = int(batched[0].shape[0])
    pad = -n % chunk
    if pad:
        batched = [np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) for a in batched]
    if real:
        batched = [*batched, np.arange(n + pad) < n]
    starts = range(0, n + pad, chunk)
    parts = [kernel(*(a[i : i + chunk] for a in batched)) for i in track(starts, description)]
    return jax.tree_util.tree_map(lambda *leaves: np.concatenate([np.asarray(v) for v in leaves])[:n], *parts)
