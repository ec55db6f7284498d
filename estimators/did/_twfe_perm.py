"""TWFE's treatment coefficient under every reassignment of the adoption dates at once.

Randomization inference (:func:`decrimkit.estimators.did._inference.randomization`) needs, for each
reassignment ``pi`` of the adoption dates across units, the TWFE coefficient ``beta_pi`` of the
reassigned indicator ``D_pi`` and its "dose" (the same regression with the observed indicator as the
outcome, which turns the sharp null of a constant effect ``tau`` into ``beta_pi - tau * dose_pi``).
Refitting the regression for each of hundreds of reassignments repeats everything that does not
depend on ``pi``. By Frisch-Waugh-Lovell, with ``M`` the (weighted) two-way within transformation and
``R_pi`` the part of ``M D_pi`` orthogonal (in the weighted inner product) to the demeaned covariates,

    beta_pi = <R_pi, M y> / <R_pi, R_pi>,    dose_pi = <R_pi, M D_obs> / <R_pi, R_pi>,

so one within transformation of the matrix of all reassigned indicators (in chunks, the panel's
factors and weights unchanged) and a few inner products give every ``beta_pi``. These are the numbers
a refit gives (``tests/estimators/did/test_without_refits.py`` compares them with refits,
balanced and unbalanced, weighted and with covariates); only the floating-point order differs.

A reassignment whose indicator is absorbed by the fixed effects (possible in an unbalanced panel: a
unit handed a date it has no observed period before, or after) does not identify ``beta_pi``; the
refit would stop on the collinear regressor, and so does this, with a :class:`DesignError` that says
which assignment.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from decrimkit.errors import ConvergenceError, DesignError
from decrimkit.estimators.did._ols import FEFit
from decrimkit.numerics.demean import demean
from decrimkit.panel import Panel

__all__ = ["permutation_batch"]

_CHUNK_VALUES = 1 << 22  # doubles of reassigned indicators demeaned at once (32 MiB)
_ABSORBED = 1e-9  # as fe_ols: a regressor whose demeaned norm is below this share of its raw norm is absorbed


def permutation_batch(panel: Panel, fit: FEFit) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``batch(g_rows) -> (stat, dose)``, each (P, 1), for ``g_rows`` (P, n_units) adoption positions.

    ``fit``: the TWFE fit on ``panel`` (its demeaned outcome, its demeaned regressors with the observed
    indicator first and the covariates after, its weights).
    """
    u, t = panel.unit_index, panel.time_index
    n = panel.n_obs
    w = np.ones(n) if fit.weights is None else np.asarray(fit.weights, dtype="float64")
    yd, d_obs, z = fit.y, fit.x[:, 0], fit.x[:, 1:]  # demeaned (within) outcome and regressors
    # weighted projection on the demeaned covariates: R = D - z (z'Wz)^{-1} z'W D
    z_solve = np.linalg.solve(z.T @ (w[:, None] * z), (w[:, None] * z).T) if z.shape[1] else None
    # a power of two, so the iterative demeaning compiles one shape for every chunk
    chunk = 1 << int(np.log2(max(1, min(256, _CHUNK_VALUES // max(n, 1)))))

    def batch(g_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g_rows = np.asarray(g_rows, dtype="float64")
        stat, dose = np.empty(len(g_rows)), np.empty(len(g_rows))
        for start in range(0, len(g_rows), chunk):
            rows = g_rows[start : start + chunk]
            keep = len(rows)
            rows = np.vstack([rows, np.repeat(rows[-1:], chunk - keep, axis=0)])
            d = (t[:, None] >= rows.T[u]).astype("float64")  # (n, chunk): the reassigned indicators
            dm = demean(d, [u, t], fit.weights)
            if not dm.converged:
                raise ConvergenceError(f"fixed-effect demeaning of the reassigned treatment indicators did not "
                                       f"converge in {dm.n_iter} sweeps; the panel may be badly connected.")
            r = dm.values if z_solve is None else dm.values - z @ (z_solve @ dm.values)
            rw = r * w[:, None]
            rr = np.einsum("ij,ij->j", rw, r)
            raw = np.sqrt(np.einsum("ij,ij->j", d * w[:, None], d))
            absorbed = np.sqrt(rr) <= _ABSORBED * np.maximum(raw, 1e-300)
            if np.any(absorbed[:keep]):
                which = start + int(np.flatnonzero(absorbed[:keep])[0])
                raise DesignError(
                    f"reassignment {which} of the adoption dates gives a treatment indicator absorbed by the unit "
                    f"and period effects (a unit handed a date it has no observed period before or after), so "
                    f"TWFE is not identified there; randomization inference needs a panel where every unit can "
                    f"take every adoption date (balance it, or use inference='wild')."
                )
            stat[start : start + keep] = (rw.T @ yd / rr)[:keep]
            dose[start : start + keep] = (rw.T @ d_obs / rr)[:keep]
        return stat[:, None], dose[:, None]

    return batch
