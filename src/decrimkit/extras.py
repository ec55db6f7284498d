"""Optional dependency groups: what each extra brings and a named error when one is missing.

``pip install decrimkit`` gives the core: the Panel, the DiD, synthetic-control and IV estimators,
plotting and reports (NumPy, SciPy, pandas, JAX, statsmodels, linearmodels, matplotlib). Heavier
parts are extras, declared in ``pyproject.toml`` under the same names:

* ``bayes``: the Bayesian estimators (PyMC, sampled by the package's NUTS engine on blackjax; ArviZ);
* ``dask``: the Dask grid of the power and validation simulations;
* ``studies``: both, for the study replications (``decrimkit study NAME``).

:func:`require` is called where an optional part starts (the ``bayes`` family on first use, the
study runner, the Dask cluster); it looks the modules up without importing them.
"""

from __future__ import annotations

import importlib.util

from decrimkit.errors import MissingExtraError

__all__ = ["EXTRAS", "missing", "require"]

# extra -> the top-level modules it must make importable
EXTRAS: dict[str, tuple[str, ...]] = {
    "bayes": ("pymc", "pytensor", "blackjax", "arviz"),
    "dask": ("dask", "distributed"),
    "studies": ("pymc", "pytensor", "blackjax", "arviz", "dask", "distributed"),
}


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here (none when the extra is installed)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` naming the extra to install when ``what`` cannot run here."""
    gone = missing(extra)
    if gone:
        raise MissingExtraError(
            f"{what} needs the optional dependencies {', '.join(gone)}, which are not installed. "
            f"Install them with: pip install 'decrimkit[{extra}]'"
        )
