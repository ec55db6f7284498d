"""Documented upper bounds on replication counts, sampler sizes and analysis plans.

A request above a bound raises :class:`~decrimkit.errors.LimitError` (exit status 2 on the command
line) before any work, instead of running for days, exhausting memory or aborting inside XLA.
The bounds are far above what any inference needs (the Monte Carlo error of a p-value from
1,000,000 bootstrap draws is below 0.0005) and are listed in ``docs/cli.md`` ("Limits").

Estimators call :func:`check_replications` / :func:`check_sampler` in their own validation, so
the bounds hold for the Python API as well as for plans; plans also check their options up front
(:func:`check_options`) so that ``decrimkit run --check`` reports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decrimkit.errors import LimitError

__all__ = [
    "MAX_REPLICATIONS",
    "MAX_REFITS",
    "MAX_DRAWS",
    "MAX_CHAINS",
    "MAX_GRID",
    "MAX_ELEMENTS",
    "MAX_PLAN_BYTES",
    "MAX_PLAN_ENTRIES",
    "MAX_OPTION_DEPTH",
    "MAX_OPTION_ITEMS",
    "REPLICATION_OPTIONS",
    "check_replications",
    "check_sampler",
    "check_options",
]

MAX_REPLICATIONS = 1_000_000
"""Bootstrap, placebo, permutation and simulation replications (``n_boot``, ``n_reps``, ``n_perm``, ``n_draws``)."""
MAX_REFITS = 100_000
"""Replications that refit a whole estimator each (SDID and MC-NNM placebo/bootstrap, simulation-based calibration)."""
MAX_DRAWS = 100_000
"""MCMC draws and tuning steps per chain (``draws``, ``tune``, ``prior_draws``)."""
MAX_CHAINS = 64
"""MCMC chains."""
MAX_GRID = 100_000
"""Grid points and bins (``grid_size`` of conformal inference, ``n_bins`` of the leniency first-stage plot)."""
MAX_ELEMENTS = 2**28
"""Replications x numbers per replication held in memory at once (2**28 float64 = 2 GiB)."""
MAX_PLAN_BYTES = 1_000_000
"""Size of an analysis plan file."""
MAX_PLAN_ENTRIES = 500
"""``[[estimators]]`` plus ``[[robustness]]`` entries of one plan."""
MAX_OPTION_DEPTH = 2
"""Nesting of lists in an estimator option (a list of lists at most)."""
MAX_OPTION_ITEMS = 10_000
"""Items in one estimator option list."""

REPLICATION_OPTIONS: dict[str, int] = {
    "n_boot": MAX_REPLICATIONS,
    "n_reps": MAX_REFITS,
    "n_perm": MAX_REPLICATIONS,
    "n_draws": MAX_REPLICATIONS,
    "n_sims": MAX_REPLICATIONS,
    "draws": MAX_DRAWS,
    "tune": MAX_DRAWS,
    "prior_draws": MAX_DRAWS,
    "chains": MAX_CHAINS,
    "grid_size": MAX_GRID,
    "n_bins": MAX_GRID,
}
"""Option name -> upper bound, checked by :func:`check_options` (plans)."""


def _is_int(value: Any) -> bool:
    try:
        import numpy as np

        ints: tuple[type, ...] = (int, np.integer)
    except ImportError:  # pragma: no cover
        ints = (int,)
    return isinstance(value, ints) and not isinstance(value, bool)


def check_replications(
    name: str, value: Any, *, maximum: int = MAX_REPLICATIONS, per_replication: int | None = None, unit: str = ""
) -> None:
    """Raise :class:`LimitError` when ``value`` replications exceed ``maximum`` or the memory bound.

    ``per_replication`` is how many numbers one replication keeps in memory (e.g. one weight per
    cluster); the product must stay within :data:`MAX_ELEMENTS`. Non-integers are left to the
    caller's own type check.
    """
    if not _is_int(value):
        return
    value = int(value)
    if value > maximum:
        hint = (
            f" (Monte Carlo error shrinks as 1/sqrt({name}): 10,000 gives about 0.005 on a p-value)"
            if name.startswith("n_") and name != "n_bins"
            else ""
        )
        raise LimitError(f"{name}={value:,} is above decrimkit's limit of {maximum:,}; use at most {maximum:,}{hint}.")
    if per_replication is not None and value * int(per_replication) > MAX_ELEMENTS:
        most = max(MAX_ELEMENTS // max(int(per_replication), 1), 1)
        gib = value * int(per_replication) * 8 / 2**30
        raise LimitError(
            f"{name}={value:,} with {int(per_replication):,} {unit or 'numbers'} per replication needs about "
            f"{gib:,.1f} GiB; decrimkit's limit is {MAX_ELEMENTS * 8 / 2**30:.0f} GiB, so use {name} <= {most:,}."
        )


def check_sampler(*, draws: Any = None, tune: Any = None, chains: Any = None, prior_draws: Any = None) -> None:
    """Raise :class:`LimitError` when MCMC ``draws``/``tune``/``prior_draws`` exceed :data:`MAX_DRAWS` or
    ``chains`` :data:`MAX_CHAINS`."""
    for name, value, maximum in (
        ("draws", draws, MAX_DRAWS),
        ("tune", tune, MAX_DRAWS),
        ("chains", chains, MAX_CHAINS),
        ("prior_draws", prior_draws, MAX_DRAWS),
    ):
        if _is_int(value) and int(value) > maximum:
            raise LimitError(
                f"{name}={int(value):,} is above decrimkit's limit of {maximum:,}; use at most {maximum:,}."
            )


def check_options(options: Mapping[str, Any], where: str = "options") -> None:
    """Check the replication and sampler options of one estimator call against the limits (for plans)."""
    for key, maximum in REPLICATION_OPTIONS.items():
        value = options.get(key)
        if _is_int(value) and int(value) > maximum:
            raise LimitError(
                f"{where}.{key} = {int(value):,} is above decrimkit's limit of {maximum:,}; use at most {maximum:,} "
                f"(limits: docs/cli.md)."
            )
