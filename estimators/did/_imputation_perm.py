"""The imputation estimator under every reassignment of the adoption dates at once.

Randomization inference for :func:`did.imputation` needs its estimates (each horizon and the overall
ATT) under hundreds of reassignments ``pi`` of the adoption dates, and each with the observed treatment
indicator as the outcome (the "dose" that turns the sharp null of a constant effect into a shift).
Each reassignment changes which observations are untreated, so the first stage

    Y_it = alpha_i + lambda_t + X_it' delta + e_it    on the untreated observations (weights w)

is a different least-squares problem every time. What does not change is its shape: unit effects are a
diagonal block of the normal equations, so eliminating them (a Schur complement) leaves a system in the
``T - 1`` period effects and the ``K`` covariates only,

    S = C - B' A^{-1} B,    A = diag(sum of untreated weights per unit),

with ``B`` (units x (periods, covariates)) and ``C`` sums of untreated weights (times covariates) that are
bincounts of the reassigned untreated mask. ``S`` is (T - 1 + K) square, so a chunk of reassignments is
solved as one batched dense solve, for the outcome and the dose together; the imputed ``Y(0)``, the
effects ``Y - Y(0)`` on the reassigned treated rows and their horizon weights (each horizon's weights
sum to one over its treated rows; the overall ATT over every treated row with ``e >= 0``) follow as in
:func:`~decrimkit.estimators.did._event_result.horizon_weights`.

The numbers are those of a refit (``tests/estimators/did/test_without_refits.py``
compares them on balanced and unbalanced panels, with weights, a covariate and anticipation), up to
the floating-point order of the solve. A reassignment that leaves the first stage unidentified (a
unit handed a date it has no observed period before; a period left with no untreated observation)
raises :class:`DesignError`, as the refit would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from decrimkit.errors import DesignError
from decrimkit.estimators.did._first_stage import obs_weights
from decrimkit.estimators.did._inference import sum_by
from decrimkit.panel import Panel

__all__ = ["permutation_batch"]

_CHUNK_VALUES = 1 << 22  # doubles in the largest per-chunk array (units x periods x reassignments)
_COND_MAX = 1e12  # the reduced normal equations of a reassignment are treated as singular above this


def _horizon_means(
    event: np.ndarray, target: np.ndarray, w: np.ndarray, effect: np.ndarray, horizons: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(P, H + 1, 2) weighted means of ``effect`` over the treated rows at each horizon, then over every
    treated row with ``e >= 0`` (the overall ATT), as ``horizon_weights``; and (P,) whether a column is empty."""
    p, n_h = event.shape[0], len(horizons)
    code = np.full(event.shape, n_h)  # n_h: rows no horizon takes (weight 0 below)
    for j, h in enumerate(horizons):
        code[event == h] = j
    sums, tot = np.zeros((p, n_h + 1)), np.zeros((p, n_h + 1, 2))
    overall = np.full(event.shape, n_h)
    for codes, keep in ((code, code < n_h), (overall, target & (event >= 0))):
        c_w = np.where(keep, w[None, :], 0.0)
        sums += sum_by(codes, n_h + 1, c_w)
        for j in range(2):
            tot[:, :, j] += sum_by(codes, n_h + 1, c_w * effect[:, :, j])
    empty = (sums <= 0).any(axis=1)
    return tot / np.where(sums > 0, sums, 1.0)[:, :, None], empty


def permutation_batch(
    panel: Panel,
    *,
    covariates: Sequence[str],
    anticipation: int,
    weights: str | None,
    horizons: tuple[int, ...],
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``batch(g_rows) -> (stat, dose)``, each (P, H + 1), for ``g_rows`` (P, n_units) adoption positions.

    Columns: the ``horizons`` in order, then the overall ATT (as :func:`did.imputation`'s ``refit``).
    """
    f = panel.frame
    u, t = panel.unit_index, panel.time_index
    n_u, n_t, n = panel.n_units, panel.n_periods, panel.n_obs
    w = obs_weights(panel, weights)
    x = f.loc[:, list(covariates)].to_numpy(dtype="float64") if covariates else np.zeros((n, 0))
    k = x.shape[1]
    outcomes = np.column_stack([f["y"].to_numpy(dtype="float64"), f["d"].to_numpy(dtype="float64")])  # y, dose
    q = n_t - 1 + k  # period effects (the first period is the reference) and covariates
    chunk = int(max(1, min(256, _CHUNK_VALUES // max(n_u * max(q, 1), q * q, 4 * n))))

    def solve_chunk(g_rows: np.ndarray, offset: int) -> np.ndarray:
        p = len(g_rows)
        g = g_rows[:, u]  # (P, n): each row's reassigned adoption position
        with np.errstate(invalid="ignore"):
            target = np.isfinite(g) & (t[None, :] >= g - anticipation)
        m = w[None, :] * ~target  # weights of the untreated rows
        a = sum_by(u, n_u, m)  # (P, n_u)
        has_target = sum_by(u, n_u, target.astype("float64")) > 0
        lonely = (a <= 0) & has_target
        if lonely.any():
            which = offset + int(np.flatnonzero(lonely.any(axis=1))[0])
            raise DesignError(f"reassignment {which} of the adoption dates hands a unit a date with no untreated "
                              f"observation before it, so its unit effect is not identified; randomization "
                              f"inference for did.imputation needs every unit to have an untreated period under "
                              f"every reassignment (balance the panel, or use inference='conley_taber').")
        ct = sum_by(t, n_t, m)
        t_target = sum_by(t, n_t, target.astype("float64")) > 0
        if ((ct <= 0) & t_target).any():
            which = offset + int(np.flatnonzero(((ct <= 0) & t_target).any(axis=1))[0])
            raise DesignError(f"reassignment {which} of the adoption dates leaves a period with treated but no "
                              f"untreated observations, so Y(0) cannot be imputed there.")
        a_inv = np.where(a > 0, 1.0 / np.where(a > 0, a, 1.0), 0.0)
        # B: (P, n_u, q); C: (P, q, q) — sums of untreated weights over (unit, period) and covariates
        b = np.zeros((p, n_u, n_t))
        b[:, u, t] = m  # one row per (unit, period)
        b = b[:, :, 1:]
        c = np.zeros((p, q, q))
        idx = np.arange(n_t - 1)
        c[:, idx, idx] = ct[:, 1:]
        if k:
            mx = m[:, :, None] * x[None, :, :]  # (P, n, K)
            bx = np.stack([sum_by(u, n_u, mx[:, :, j]) for j in range(k)], axis=2)
            cx = np.stack([sum_by(t, n_t, mx[:, :, j]) for j in range(k)], axis=2)[:, 1:, :]
            b = np.concatenate([b, bx], axis=2)
            c[:, : n_t - 1, n_t - 1 :] = cx
            c[:, n_t - 1 :, : n_t - 1] = np.swapaxes(cx, 1, 2)
            c[:, n_t - 1 :, n_t - 1 :] = np.einsum("pnj,nl->pjl", mx, x)
        bt = np.swapaxes(b * a_inv[:, :, None], 1, 2)  # (P, q, n_u): B' A^{-1}
        s = c - bt @ b
        # right-hand sides for y and the dose: unit sums and (period, covariate) sums of w * untreated * outcome
        my = m[:, :, None] * outcomes[None, :, :]  # (P, n, 2)
        r_u = np.stack([sum_by(u, n_u, my[:, :, j]) for j in range(2)], axis=2)
        r_t = np.stack([sum_by(t, n_t, my[:, :, j]) for j in range(2)], axis=2)[:, 1:, :]
        r_d = np.concatenate([r_t, np.einsum("pnj,nl->plj", my, x)], axis=1) if k else r_t
        rhs = r_d - bt @ r_u
        scale = 1.0 / np.sqrt(np.maximum(np.einsum("pii->pi", s), 1e-300))  # unit diagonal: a fair condition
        ev = np.linalg.eigvalsh(s * scale[:, :, None] * scale[:, None, :])  # ascending
        ok = ev[:, 0] > ev[:, -1] / _COND_MAX
        if not ok.all():
            which = offset + int(np.flatnonzero(~ok)[0])
            raise DesignError(f"reassignment {which} of the adoption dates leaves the first stage (unit and period "
                              f"effects{' and covariates' if k else ''} on the untreated observations) singular.")
        gamma = np.linalg.solve(s, rhs)  # (P, q, 2)
        alpha = a_inv[:, :, None] * (r_u - b @ gamma)  # (P, n_u, 2)
        lam = np.concatenate([np.zeros((p, 1, 2)), gamma[:, : n_t - 1, :]], axis=1)  # (P, n_t, 2)
        y0 = alpha[:, u, :] + lam[:, t, :]
        if k:
            y0 = y0 + np.einsum("nl,plj->pnj", x, gamma[:, n_t - 1 :, :])
        effect = outcomes[None, :, :] - y0  # (P, n, 2): Y - Y(0)_hat, used on the treated rows only
        event = np.where(target, t[None, :] - np.where(np.isfinite(g), g, 0.0), np.inf)
        means, empty = _horizon_means(event, target, w, effect, horizons)
        if empty.any():
            which = offset + int(np.flatnonzero(empty)[0])
            raise DesignError(f"reassignment {which} of the adoption dates leaves a reported horizon without "
                              f"treated observations; randomization inference needs the same event times under "
                              f"every reassignment (a balanced panel has them).")
        return means

    def batch(g_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g_rows = np.asarray(g_rows, dtype="float64")
        out = np.concatenate([solve_chunk(g_rows[i : i + chunk], i) for i in range(0, len(g_rows), chunk)])
        return out[:, :, 0], out[:, :, 1]

    return batch
