"""The event-study coefficients under every reassignment of the adoption dates at once.

Randomization inference for :func:`~decrimkit.estimators.did.event_study` needs, for each reassignment
``pi`` of the adoption dates across units, the coefficients ``beta_pi`` (m,) of the reassigned event-time
indicators ``E_pi`` (n, m) and their "dose" (the same regression with the observed treatment indicator
as the outcome, which turns the sharp null of a constant effect into ``beta_pi - tau * dose_pi``). By
Frisch-Waugh-Lovell, with ``F`` the unit and period dummies, ``W`` the weights, ``M = I - F S F'W`` the
two-way within transformation (``S`` a generalised inverse of ``F'WF``, applied through the periods' Schur
complement, so that nothing units x units is formed) and
``Z`` the demeaned covariates,

    beta_pi = G_pi^{-1} E_pi' W (My - Z g_y),    dose_pi = G_pi^{-1} E_pi' W (M d_obs - Z g_d),
    G_pi = E_pi' W E_pi - Q_pi' S Q_pi - (E_pi' W Z)(Z'WZ)^{-1}(Z'W E_pi),   Q_pi = F'W E_pi,

(``g_y``, ``g_d``: the coefficients of ``Z`` in the regressions of ``My`` and ``M d_obs`` on it). The event-time
indicators of one assignment are exclusive (a row has one event time), so ``E_pi'WE_pi`` is diagonal and
every product with ``E_pi`` is a weighted count by event time, by unit and event time, or by period and
event time: no reassigned indicator is materialised or demeaned. ``tests/estimators/did/test_without_refits.py``
compares these with refits (balanced and unbalanced, weighted, a covariate, binned endpoints); only the
floating-point order differs.

A reassignment whose indicators the fixed effects absorb, or that leaves an event time with no row (an
unbalanced panel), does not identify ``beta_pi``: the refit would stop on the collinear regressors, and
so does this, with a :class:`DesignError` naming the assignment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from decrimkit.errors import DesignError
from decrimkit.estimators.did._inference import sum_by
from decrimkit.estimators.did._ols import FEFit
from decrimkit.panel import Panel

__all__ = ["permutation_batch"]

_CHUNK_VALUES = 1 << 22  # values per chunk of reassignments (their counts by unit or period and event time)
_COND = 1e12  # a reassignment's scaled Gram matrix above this condition number is not identified


def permutation_batch(
    panel: Panel, fit: FEFit, keep: Sequence[int], leads: int | None, lags: int | None
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``batch(g_rows) -> (stat, dose)``, each (P, m), for ``g_rows`` (P, n_units) adoption positions.

    ``fit``: the event-study fit on ``panel`` (demeaned regressors with the ``m`` event-time indicators first
    and the covariates after, weights); ``keep``: its event times (reference left out); ``leads``, ``lags``:
    the binned endpoints, as the fit used them.
    """
    u, t = panel.unit_index, panel.time_index
    n_u, n_t, m = panel.n_units, panel.n_periods, len(keep)
    w = np.ones(panel.n_obs) if fit.weights is None else np.asarray(fit.weights, dtype="float64")
    # F'WF = [[D_u, C], [C', D_t]]: the units are eliminated (D_u is diagonal), leaving the periods' Schur
    # complement S_t = D_t - C' D_u^-1 C (T x T, rank T - 1 in a connected panel), so that nothing of size
    # units x units is formed
    c = np.bincount(u * n_t + t, weights=w, minlength=n_u * n_t).reshape(n_u, n_t)
    du = c.sum(axis=1)
    du_inv = np.divide(1.0, du, out=np.zeros_like(du), where=du > 0)
    st_inv = _pinv_psd(np.diag(c.sum(axis=0)) - c.T @ (du_inv[:, None] * c))

    def within(v: np.ndarray) -> np.ndarray:  # M v, exactly: v minus its fitted unit and period effects
        a_u = np.bincount(u, weights=w * v, minlength=n_u)
        c_t = st_inv @ (np.bincount(t, weights=w * v, minlength=n_t) - c.T @ (du_inv * a_u))
        c_u = du_inv * (a_u - c @ c_t)
        return v - c_u[u] - c_t[t]

    z = fit.x[:, m:]
    rhs = np.column_stack([within(np.asarray(panel.y, dtype="float64")),
                           within(panel.frame["d"].to_numpy(dtype="float64"))])  # My, M d_obs
    if z.shape[1]:
        zwz = z.T @ (w[:, None] * z)
        rhs = rhs - z @ np.linalg.solve(zwz, (w[:, None] * z).T @ rhs)
    # event time -> its position in keep (m: not a regressor: the reference period, or outside the window)
    lo = int(min(keep))
    lookup = np.full(int(max(keep)) - lo + 1, m)
    lookup[np.asarray(keep, dtype="int64") - lo] = np.arange(m)
    # reassignments per chunk: their count arrays (units and periods by event time) and their rows bounded
    chunk = max(1, min(_CHUNK_VALUES // ((n_u + n_t) * (m + 1)), _CHUNK_VALUES // panel.n_obs))

    def event_codes(rows: np.ndarray) -> np.ndarray:
        """(P, n) position in ``keep`` of each row's binned event time under each assignment (m: none)."""
        g = rows[:, u]
        e = np.where(np.isfinite(g), t[None, :] - np.where(np.isfinite(g), g, 0.0), np.nan)
        if leads is not None:
            e = np.where(e <= -leads, -leads, e)
        if lags is not None:
            e = np.where(e >= lags, lags, e)
        ok = np.isfinite(e) & (e >= lo) & (e <= lo + len(lookup) - 1)
        return np.where(ok, lookup[np.where(ok, e - lo, 0).astype("int64")], m)

    def counts(k: np.ndarray, v: np.ndarray, by: np.ndarray | None = None, levels: int = 1) -> np.ndarray:
        """(P, levels, m): sums of ``v`` by (assignment, ``by``, event time) over rows with an event time
        (``by`` None: by event time only, (P, m))."""
        vals = np.broadcast_to(v, k.shape)
        if by is None:
            return sum_by(k, m + 1, vals)[:, :m]
        return sum_by(by * (m + 1) + k, levels * (m + 1), vals).reshape(len(k), levels, m + 1)[:, :, :m]

    def batch(g_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g_rows = np.asarray(g_rows, dtype="float64")
        stat, dose = np.empty((len(g_rows), m)), np.empty((len(g_rows), m))
        for start in range(0, len(g_rows), chunk):
            k = event_codes(g_rows[start : start + chunk])
            diag = counts(k, w)  # (P, m): E'WE's diagonal
            q_u, q_t = counts(k, w, u, n_u), counts(k, w, t, n_t)  # F'WE: (P, N, m), (P, T, m)
            # E'WF (F'WF)^- F'WE = Q_u' D_u^-1 Q_u + R' S_t^+ R, R = Q_t - C' D_u^-1 Q_u
            r = q_t - c.T @ (du_inv[:, None] * q_u)
            gram = -(np.swapaxes(q_u, 1, 2) @ (du_inv[:, None] * q_u) + np.swapaxes(r, 1, 2) @ (st_inv @ r))
            gram[:, np.arange(m), np.arange(m)] += diag
            if z.shape[1]:
                ewz = np.stack([counts(k, w * z[:, j]) for j in range(z.shape[1])], axis=2)  # (P, m, q)
                gram -= ewz @ np.linalg.solve(zwz, np.swapaxes(ewz, 1, 2))
            b = np.stack([counts(k, w * rhs[:, j]) for j in range(2)], axis=2)
            # identification, on the Gram matrix scaled by the raw indicators' norms (fe_ols's scale)
            empty = diag <= 0
            scale = np.sqrt(np.where(empty, 1.0, diag))
            ev = np.linalg.eigvalsh(gram / (scale[:, :, None] * scale[:, None, :]))
            bad = empty.any(axis=1) | (ev[:, 0] <= ev[:, -1] / _COND)
            if np.any(bad):
                which = start + int(np.flatnonzero(bad)[0])
                raise DesignError(
                    f"reassignment {which} of the adoption dates gives event-time indicators that the unit and "
                    f"period effects absorb (or an event time with no row), so the event study is not identified "
                    f"there; randomization inference needs a panel where every unit can take every adoption date "
                    f"(balance it, or use inference='wild')."
                )
            sol = np.linalg.solve(gram, b)  # (P, m, 2)
            stat[start : start + len(k)] = sol[:, :, 0]
            dose[start : start + len(k)] = sol[:, :, 1]
        return stat, dose

    return batch


def _pinv_psd(a: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Pseudo-inverse of a symmetric positive semi-definite matrix, eigenvalues below ``rtol`` x the largest
    taken as zero (the Schur complement's null direction, the constant shared by unit and period effects,
    comes out of floating point at ~1e-15 of the largest: above NumPy's default cut-off)."""
    vals, vecs = np.linalg.eigh(a)
    keep = vals > rtol * max(vals[-1], 0.0)
    return (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
