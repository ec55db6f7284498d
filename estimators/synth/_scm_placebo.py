"""Placebo runs for an ADH synthetic control fit: in space (every donor as if treated) and in time.

In space, W of every placebo is solved in one vmapped batch, V fixed at the treated fit's or
re-chosen per placebo (``refit_v=True``); in time, the start is backdated and the SCM refitted (the
refit function is passed in by ``_scm.placebo``, which keeps this module below ``_scm.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from decrimkit.errors import DesignError
from decrimkit.panel import Panel
from decrimkit.progress import track
from decrimkit.results import Spec

from ._design import SynthDesign
from ._scm_cv import placebo_cv_v
from ._scm_fit import _choose_v, _normalise, _one_blas_thread
from ._simplex import donor_bucket, pad_donors, simplex_ls, valid_donors
from .results import PlaceboResult

if TYPE_CHECKING:
    from ._scm import SCMResult


@jax.jit
def _placebo_w(v, x0, valid):
    """W for every donor j as the treated unit, the other donors as its pool (vmapped over j).

    Under ``vmap`` every placebo runs as many active-set steps (one (k, J) SVD each) as the slowest,
    so the start matters more than the projected-gradient pre-solve: 30 pre-solve iterations, then
    three pruning solves that drop every negative weight at once (``prune``), leave Prop 99's 38
    placebos 7-9 exact steps on average instead of 16 (measured), for the same certified optimum
    (the weights came out bit-identical on the benchmark's 10, 20 and 38 donors).
    """
    a = jnp.sqrt(v)[:, None] * x0  # column j: the treated vector of placebo j
    masks = ~jnp.eye(x0.shape[1], dtype=bool) & valid[None, :]
    sols = jax.vmap(lambda bj, mj: simplex_ls(a, bj, mj, max_iter=30, prune=3))(a.T, masks)
    return sols.w, sols.kkt


@jax.jit
def _placebo_w_refit(v_all, x0, valid, starts):
    """W for every donor j as the treated unit with its own V (row j of ``v_all``) and warm start, vmapped."""

    def one(v, xj, mj, w0):
        root = jnp.sqrt(v)
        return simplex_ls(root[:, None] * x0, root * xj, mj, max_iter=100, init=w0)

    masks = ~jnp.eye(x0.shape[1], dtype=bool) & valid[None, :]
    sols = jax.vmap(one)(v_all, x0.T, masks, starts)
    return sols.w, sols.kkt


EXACT_FIT = 1e-9  # pre-period RMSPE below this, relative to the outcome scale, is an exact fit


def _rmspe(gap: np.ndarray, n_pre: int) -> tuple[np.ndarray, np.ndarray]:
    pre = np.sqrt(np.mean(gap[:n_pre] ** 2, axis=0))
    post = np.sqrt(np.mean(gap[n_pre:] ** 2, axis=0))
    return pre, post


def _placebo_v(result: SCMResult, design: SynthDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalised donor predictors, (J, k) V and (J, J) warm-start W of each placebo), V re-chosen per placebo.

    Each placebo's units are the donors (the treated unit is in no placebo's pool), so the predictors
    are normalised by their SD across the donors, as a separate fit on that pool would be.
    """
    divisor = np.std(design.x_donors, axis=1, ddof=1)
    x0 = design.x_donors / np.where(divisor > 0, divisor, 1.0)[:, None]
    lo, hi = result.extra["window"]
    z = design.y_donors[lo : hi + 1]
    call = result.extra["call"]
    v_method = call["v"] if isinstance(call["v"], str) else result.v.to_numpy()
    if v_method == "cv":  # the cross-validation repeated for each placebo (training predictors, validation window)
        return x0, *placebo_cv_v(design, result.extra["cv"], call.get("seed", 0))
    j = x0.shape[1]
    v_all = np.empty((j, x0.shape[0]))
    starts = np.zeros((j, j))
    for d in track(range(j), "SCM placebo in space (V re-optimised)", total=j):
        others = np.arange(j) != d
        v_all[d], w = _choose_v(v_method, x0[:, others], x0[:, d], z[:, others], z[:, d], call.get("seed", 0))
        starts[d, others] = 1.0 / (j - 1) if w is None else w
    return x0, v_all, starts


def _placebo_solves(result, x0, j, width, v_all, starts) -> tuple[np.ndarray, np.ndarray]:
    """((J, J) placebo weights, (width,) KKT violations): V fixed (``v_all`` None) or one V per placebo."""
    if v_all is None:
        w_all, kkt = _placebo_w(jnp.asarray(result.v.to_numpy()), jnp.asarray(pad_donors(x0, width)), valid_donors(j))
    else:
        pad = width - j  # padded placebo rows reuse the first one; their results are dropped
        w_all, kkt = _placebo_w_refit(
            jnp.asarray(np.vstack([v_all, np.tile(v_all[:1], (pad, 1))])),
            jnp.asarray(pad_donors(x0, width)),
            valid_donors(j),
            jnp.asarray(np.vstack([pad_donors(starts, width), np.tile(pad_donors(starts[:1], width), (pad, 1))])),
        )
    return np.asarray(w_all)[:j, :j], np.asarray(kkt)  # row j = weights of placebo j


def _placebo_space(result: SCMResult, design: SynthDesign, ratio_cut: float | None, refit_v: bool) -> PlaceboResult:
    j = design.n_donors
    width = donor_bucket(j)
    if refit_v:
        x0, v_all, starts = _placebo_v(result, design)
    else:
        (x0, _, _), v_all, starts = _normalise(design), None, None
    with _one_blas_thread():
        w_all, kkt = _placebo_solves(result, x0, j, width, v_all, starts)
    if not float(np.max(kkt[:j])) <= 1e-8:
        raise RuntimeError("simplex solver did not reach the KKT conditions in a placebo run.")
    gaps_p = design.y_donors - design.y_donors @ w_all.T  # (T, J)
    gaps = np.column_stack([result.gap.to_numpy(), gaps_p])
    pre, post = _rmspe(gaps, design.n_pre)
    # a run that fits its pre-period exactly (RMSPE at rounding level) has a post/pre ratio of rounding
    # noise, which would rank it at random: such runs tie at +inf instead
    scale = np.sqrt(np.mean(np.column_stack([design.y_treated, design.y_donors])[: design.n_pre] ** 2))
    exact = pre <= EXACT_FIT * (1.0 + scale)
    ratio = np.where(exact, np.inf, post / np.where(exact, 1.0, pre))
    keep = np.ones(len(ratio), dtype=bool)
    if ratio_cut is not None:
        keep = pre**2 <= ratio_cut * pre[0] ** 2
    p = float(np.mean(ratio[keep] >= ratio[0]))
    runs = [design.treated, *design.donors]
    table = pd.DataFrame(
        {
            "run": runs,
            "treated": [True] + [False] * design.n_donors,
            "pre_rmspe": pre,
            "post_rmspe": post,
            "ratio": ratio,
            "included": keep,
            "mean_post_gap": gaps[design.n_pre :].mean(axis=0),
        }
    )
    frame = pd.DataFrame(gaps, index=pd.Index(list(design.times), name="time"), columns=runs)
    v_rule = "refit" if refit_v else "fixed"
    table["v_rule"] = [v_rule] * len(runs)
    if refit_v:
        notes = (
            f"V re-optimised for each placebo (v={result.spec.options['v']!r}, predictors normalised over the "
            f"donors); W of every placebo solved in one vmapped batch",
        )
    else:
        notes = ("V fixed at the treated unit's fit; W re-solved for each placebo (one vmapped batch)",)
    spec = Spec(
        "synth.scm.placebo",
        options={"kind": "space", "exclude_mspe_ratio": ratio_cut, "refit_v": refit_v, "v_rule": v_rule},
        n_units=len(runs),
        n_periods=len(design.times),
        notes=notes,
    )
    return PlaceboResult(
        kind="space",
        table=table,
        gaps=frame,
        p_value=p,
        treated=design.treated,
        start=design.start,
        spec=spec,
        title="SCM placebo in space",
    )


def _placebo_time(
    result: SCMResult, design: SynthDesign, fake_starts: Sequence[Any] | None, refit: Callable[..., SCMResult]
) -> PlaceboResult:
    """In-time placebo; ``refit`` is :func:`decrimkit.estimators.synth.scm` (passed in, not imported)."""
    panel: Panel = result.extra["panel"]
    call = result.extra["call"]
    n_pre = design.n_pre
    times = list(design.times)
    if fake_starts is None:
        fake_pos = list(range(max(2, n_pre // 2), n_pre))
    else:
        fake_pos = [panel.time_position(t) for t in fake_starts]
        if any(not 2 <= p < n_pre for p in fake_pos):
            raise DesignError(
                f"fake_starts must be pre-periods with at least two periods before them "
                f"({times[2]} .. {times[n_pre - 1]})."
            )
    if not fake_pos:
        raise DesignError("too few pre-periods for an in-time placebo (need at least three).")
    frame = panel.frame.loc[panel.frame["t"] < n_pre].reset_index(drop=True)
    early = Panel(
        frame=frame,
        roles=panel.roles,
        times=panel.times[:n_pre],
        units=panel.units,
        time_kind=panel.time_kind,
        covariates=panel.covariates,
        excluded=panel.excluded,
    )
    runs, cols, pre_r, post_r, means = [], [], [], [], []
    pre0, post0 = _rmspe(result.gap.to_numpy()[:, None], n_pre)
    for pos in track(fake_pos, description="SCM placebo in time", total=len(fake_pos)):
        preds, kept = _clip_predictors(call["predictors"], panel, pos)
        v_run = call["v"]
        if not isinstance(v_run, str):
            v_run = np.asarray(v_run)[kept] if kept is not None else np.asarray(v_run)[:pos]
            if not v_run.sum() > 0:
                raise DesignError(
                    f"the custom V puts no weight on predictors observed before the fake start {times[pos]}; "
                    f"choose later fake_starts."
                )
        win = call["mspe_window"]
        if win is not None:
            lo, hi = panel.time_position(win[0]), min(panel.time_position(win[1]), pos - 1)
            win = (times[min(lo, hi)], times[hi])
        fit = refit(
            early,
            treated=design.treated,
            start=times[pos],
            predictors=preds,
            v=v_run,
            donors=list(design.donors),
            mspe_window=win,
            seed=call.get("seed", 0),
        )
        g = fit.gap.to_numpy()
        pre, post = _rmspe(g[:, None], pos)
        runs.append(times[pos])
        cols.append(np.concatenate([g, np.full(len(times) - n_pre, np.nan)]))
        pre_r.append(pre[0])
        post_r.append(post[0])
        means.append(g[pos:].mean())
    pre = np.array([pre0[0], *pre_r])
    post = np.array([post0[0], *post_r])
    ratio = post / pre
    table = pd.DataFrame(
        {
            "run": [f"actual {design.start}", *[f"fake {r}" for r in runs]],
            "start": [design.start, *runs],
            "pre_rmspe": pre,
            "post_rmspe": post,
            "ratio": ratio,
            "included": True,
            "mean_post_gap": [result.estimate, *means],
        }
    )
    gaps = pd.DataFrame(
        np.column_stack([result.gap.to_numpy(), *cols]),
        index=pd.Index(times, name="time"),
        columns=table["run"].tolist(),
    )
    spec = Spec(
        "synth.scm.placebo",
        options={"kind": "time", "fake_starts": runs},
        n_units=design.n_donors + 1,
        n_periods=n_pre,
        notes=("fake starts use only data before the real start; V re-optimised",),
    )
    return PlaceboResult(
        kind="time",
        table=table,
        gaps=gaps,
        p_value=float(np.mean(ratio >= ratio[0])),
        treated=design.treated,
        start=design.start,
        spec=spec,
        title="SCM placebo in time",
    )


def _clip_predictors(predictors, panel: Panel, pos: int):
    """Predictor windows clipped before position ``pos`` and the positions of those kept (None: all outcomes)."""
    if predictors is None:
        return None, None
    out, kept = [], []
    for i, (col, lo, hi) in enumerate(predictors):
        a, b = panel.time_position(lo), min(panel.time_position(hi), pos - 1)
        if a <= b:
            out.append((col, panel.times[a], panel.times[b]))
            kept.append(i)
    if not out:
        raise DesignError("no predictor window starts before the fake start; choose later fake_starts.")
    return [(c, _plain(a), _plain(b)) for c, a, b in out], np.asarray(kept)


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
