"""Turn any decrimkit result into what a report shows: headline rows, tables, figures and notes.

:meth:`decrimkit.reporting.Report.add_result` calls :func:`entries` when it is given a result object,
so studies and analysis plans report every estimator the same way. Every result keeps the result
contract (:class:`decrimkit.results.Result`), and the numbers of every headline row come from its
``tidy(alpha)``: estimate, standard error, interval and p-value from the one method named in its
``inference`` column. What a result offers beyond the contract adds to that, found by what the result
answers, never by its class name:

- the generic rule (any result): the ``tidy(alpha)`` table, the ``plot()`` figure and one headline row
  per term that has an interval or a p-value (``<name>.<term>``), its note naming the method;
- an overall effect (``overall_inference``: TWFE, event study, imputation, two-stage, Sun-Abraham, PPML,
  aggregated ATT): the overall effect when the result has one, else the one term; the coefficient figure;
- group-time cells with ``aggregate()`` and ``pretest()`` (Callaway-Sant'Anna): the cell table and figure,
  plus each requested aggregation (default ``"simple"``, the overall ATT) as a headline row with its table
  and figure;
- donor ``weights`` and a ``gap`` (synthetic control): the average post-period effect; an interval only
  when the method has a standard error, otherwise the placebo rank p-value (when placebo runs were made)
  and a note saying so;
- a posterior (``hdi``, ``p_negative``): posterior mean, sd and highest-density interval (no p-value; the
  note gives P(effect < 0) and the convergence verdict);
- robust confidence sets (``original``, ``breakdown``: Rambachan-Roth) and a decomposition (``by_type``:
  Goodman-Bacon): their table and figure, headline as documented in each rule;
- instrument diagnostics (``first_stage_f``, ``effective_f``: leniency IV): every term as a headline row.

Estimator notes (``spec.notes``, e.g. units left out of a donor pool) are kept in each row's note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from decrimkit.results import p_clause

__all__ = ["Entries", "Row", "entries", "humanize"]

_NAMES = {
    "did.twfe": "TWFE",
    "did.event_study": "Event study",
    "did.att_gt": "Callaway-Sant'Anna ATT(g,t)",
    "did.sun_abraham": "Sun-Abraham",
    "did.imputation": "Imputation (Borusyak-Jaravel-Spiess)",
    "did.two_stage": "Two-stage DiD (Gardner)",
    "did.poisson": "Poisson (PPML) DiD",
    "did.honest": "Honest DiD (Rambachan-Roth)",
    "did.bacon": "Goodman-Bacon decomposition",
    "synth.scm": "Synthetic control",
    "synth.augsynth": "Augmented synthetic control",
    "synth.augmented": "Augmented synthetic control",
    "synth.sdid": "Synthetic DiD",
    "bayes.hierarchical_did": "Bayesian hierarchical DiD",
    "iv.leniency": "Leniency IV (2SLS)",
}


_ACRONYMS = {
    "att": "ATT",
    "bjs": "BJS",
    "cds": "CDS",
    "ci": "CI",
    "covid": "COVID",
    "did": "DiD",
    "hdi": "HDI",
    "iv": "IV",
    "its": "ITS",
    "jhu": "JHU",
    "mcnnm": "MC-NNM",
    "late": "LATE",
    "mde": "MDE",
    "mspe": "MSPE",
    "ols": "OLS",
    "ppml": "PPML",
    "rmspe": "RMSPE",
    "scm": "SCM",
    "sdid": "SDID",
    "se": "SE",
    "twfe": "TWFE",
    "us": "US",
}


def humanize(name: str) -> str:
    """A readable label from a result or table name: ``"cs.overall_att"`` -> ``"Cs: overall ATT"``,
    ``"its_single_series_rate_ratio"`` -> ``"ITS single series rate ratio"``."""
    head, _, rest = str(name).partition(".")

    def words(s: str) -> str:
        return " ".join(_ACRONYMS.get(w.lower(), w) for w in s.replace("_", " ").replace(".", " ").split())

    text = words(head) if not rest else f"{words(head)}: {words(rest)}"
    return text[:1].upper() + text[1:]


def estimator_label(estimator: str) -> str:
    """A human name of an estimator (``"did.att_gt"`` -> ``"Callaway-Sant'Anna ATT(g,t)"``)."""
    return _NAMES.get(estimator, estimator)


@dataclass
class Row:
    """One headline number, as :meth:`Report.add_result` takes it."""

    name: str
    label: str
    estimate: float
    se: float | None = None
    conf_int: tuple[float, float] | None = None
    p_value: float | None = None
    method: str = ""
    unit: str = ""
    note: str = ""


@dataclass
class Entries:
    """What one result adds to a report."""

    label: str = ""
    rows: list[Row] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)  # (name, frame, caption)
    figures: list[tuple[str, Callable[[], Any], str]] = field(default_factory=list)  # (name, make, caption)
    notes: list[str] = field(default_factory=list)


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if np.isfinite(v) else None


def _ci(lo: Any, hi: Any) -> tuple[float, float] | None:
    lo, hi = _finite(lo), _finite(hi)
    return None if lo is None or hi is None else (lo, hi)


def _spec_notes(result: Any) -> list[str]:
    spec = getattr(result, "spec", None)
    out = [str(n) for n in getattr(spec, "notes", ())]
    out += [f"{n} rows excluded ({r})" for n, r in getattr(spec, "excluded", ())]
    return out


def _join(*parts: str | Sequence[str]) -> str:
    flat: list[str] = []
    for p in parts:
        flat.extend([p] if isinstance(p, str) else list(p))
    return "; ".join(p for p in flat if p)


def _normal_p(est: float, se: float, df: float | None) -> float | None:
    if not (np.isfinite(se) and se > 0):
        return None
    z = abs(est / se)
    return float(2 * (stats.t.sf(z, df) if df is not None else stats.norm.sf(z)))


def _q(alpha: float, df: float | None) -> float:
    return float(stats.t.ppf(1 - alpha / 2, df) if df is not None else stats.norm.ppf(1 - alpha / 2))


def _inference(result: Any) -> str:
    """The method behind an Effect's intervals and p-values, as far as the spec says."""
    few = getattr(result, "inference", None)
    if few is not None and hasattr(few, "describe"):  # a few-treated method chosen with inference=
        return f"p-values and intervals: {few.describe()} (the SE shown is the analytic one)"
    opts = getattr(getattr(result, "spec", None), "options", {}) or {}
    se = opts.get("se_method") or opts.get("vcov")
    cluster = opts.get("cluster")
    dist = f"t({result.df:g})" if getattr(result, "df", None) is not None else "normal"
    text = f"{se} SE" if se else "analytic SE"
    if cluster:
        text += f" clustered by {cluster}"
    return f"{text}, {dist} intervals"


def _effect(name: str, result: Any, label: str, method: str, unit: str, alpha: float) -> Entries:
    ent = Entries()
    tidy = result.tidy(alpha)
    by = result.label_name.replace("_", " ")
    ent.tables.append((name, tidy, f"{label}: estimates by {by}"))
    ent.figures.append((name, lambda: result.plot(), f"{label}: estimates by {by}"))
    notes = _spec_notes(result)
    how = _inference(result)
    if result.overall is not None:
        est, se = (float(v) for v in result.overall)
        if hasattr(result, "overall_inference"):  # one method for the overall p-value and interval
            _, p_overall, lo, hi, _ = result.overall_inference(alpha)
        else:
            q = _q(alpha, result.df)
            p_overall, lo, hi = _normal_p(est, se, result.df), est - q * se, est + q * se
        ent.rows.append(
            Row(
                f"{name}.overall",
                f"{label}: overall effect",
                est,
                _finite(se),
                _ci(lo, hi),
                _finite(p_overall),
                method=method,
                unit=unit,
                note=_join(f"overall post-treatment effect; {how}", notes),
            )
        )
        return ent
    if len(result.label) != 1:  # an event study without an overall effect: its table and figure say it all
        ent.notes.append(_join(f"{label}: {how}", notes))
        return ent
    row = result.tidy(alpha).iloc[0]
    ent.rows.append(
        Row(
            f"{name}.{result.label[0]}",
            label,
            float(row["estimate"]),
            _finite(row["se"]),
            _ci(row["conf_low"], row["conf_high"]),
            _finite(row["p_value"]),
            method=method,
            unit=unit,
            note=_join(how, notes),
        )
    )
    return ent


_AGG = {"simple": "overall ATT", "dynamic": "by event time", "group": "by cohort", "calendar": "by period"}


def _att_gt(
    name: str, result: Any, label: str, method: str, unit: str, alpha: float, aggregate: Sequence[str]
) -> Entries:
    ent = Entries()
    ent.tables.append((name, result.tidy(alpha), f"{label}: group-time ATT(g,t)"))
    ent.figures.append((name, lambda: result.plot(), f"{label}: group-time ATT(g,t) by cohort"))
    notes = _spec_notes(result)
    from decrimkit.errors import DesignError

    try:
        w = result.pretest()
        ent.notes.append(f"Wald pre-test of parallel trends W = {w.statistic:.3f}, df {w.df}, {p_clause(w.p_value)}")
    except DesignError as exc:  # no pre-periods, or a singular covariance: say why there is no pre-test
        ent.notes.append(f"no pre-test of parallel trends: {exc}")
    for kind in ["simple"] + [k for k in aggregate if k != "simple"]:  # the overall ATT always, then the rest
        agg = result.aggregate(kind)
        est, se = (float(v) for v in agg.overall)
        q = _q(alpha, None)
        what = _AGG.get(kind, kind)
        ent.rows.append(
            Row(
                f"{name}.{kind}",
                f"{label}: overall ATT" + ("" if kind == "simple" else f" (aggregated {what})"),
                est,
                _finite(se),
                _ci(est - q * se, est + q * se),
                _normal_p(est, se, None),
                method=method,
                unit=unit,
                note=_join(
                    f"aggregation '{kind}' of ATT(g,t); analytic SE from influence functions, normal intervals", notes
                ),
            )
        )
        if kind != "simple":
            ent.tables.append((f"{name}.{kind}", agg.tidy(alpha), f"{label}: ATT {what}"))
            ent.figures.append((f"{name}.{kind}", lambda agg=agg: agg.plot(), f"{label}: ATT {what}"))
    return ent


def _synth(name: str, result: Any, label: str, method: str, unit: str, alpha: float, placebo: Any) -> Entries:
    ent = Entries()
    row = result.tidy(alpha).iloc[0]
    ci = _ci(row["conf_low"], row["conf_high"])
    notes = _spec_notes(result)
    if ci is not None:
        p, how = _finite(row["p_value"]), f"{result.se_method or 'analytic'} standard error"
    elif placebo is not None:
        p = _finite(placebo.p_value)
        n_runs = int(placebo.table["included"].sum()) if "included" in placebo.table else len(placebo.table)
        how = (
            f"no interval: this method has no standard error; p is the placebo-in-{placebo.kind} rank "
            f"p-value (post/pre RMSPE ratio, {n_runs} runs)"
        )
        notes = [n for n in notes if "use .placebo()" not in n]
    else:
        p, how = None, "no interval or p-value: this method has no standard error and no placebo runs were made"
    ent.rows.append(
        Row(
            f"{name}.att",
            f"{label}: average post-period effect",
            float(row["estimate"]),
            _finite(row["se"]),
            ci,
            p,
            method=method,
            unit=unit,
            note=_join(how, notes),
        )
    )
    ent.figures.append((name, lambda: result.plot("trajectory"), f"{label}: treated and synthetic paths"))
    w = result.weights[result.weights > 1e-6].sort_values(ascending=False)
    ent.tables.append(
        (
            f"{name}.weights",
            pd.DataFrame({"donor": [str(i) for i in w.index], "weight": w.to_numpy()}),
            f"{label}: donor weights above 1e-6",
        )
    )
    if placebo is not None:
        ent.tables.append((f"{name}.placebo", placebo.table.copy(), f"{label}: placebo runs in {placebo.kind}"))
        ent.figures.append((f"{name}.placebo", lambda: placebo.plot(), f"{label}: placebo gaps in {placebo.kind}"))
    return ent


def _posterior(name: str, result: Any, label: str, method: str, alpha: float) -> Entries:
    ent = Entries()
    lo, hi = result.hdi(alpha)
    level, term = result.headline
    verdict = "passed" if result.converged else "FAILED (" + "; ".join(result.diagnostics_.problems) + ")"
    ent.rows.append(
        Row(
            f"{name}.{term}",
            f"{label}: {level} effect ({term})",
            result.estimate,
            result.se,
            _ci(lo, hi),
            None,
            method=method,
            unit=result.scale,
            note=_join(
                f"posterior mean, sd and {100 * (1 - alpha):g}% highest-density interval (no p-value); "
                f"P(effect < 0) = {result.p_negative:.3f}; convergence {verdict}",
                [n for n in _spec_notes(result) if not n.startswith("convergence gate failed")],
            ),
        )
    )
    ent.tables.append((name, result.tidy(alpha), f"{label}: posterior effects by level ({result.scale})"))
    ent.figures.append((name, lambda: result.plot(), f"{label}: posterior effects (forest plot)"))
    return ent


def _honest(name: str, result: Any, label: str, method: str, unit: str) -> Entries:
    ent = Entries()
    bd = "none on the grid" if result.breakdown is None else f"{result.breakdown:g}"
    row = result.tidy(result.alpha).set_index("term").loc["original"]
    ent.rows.append(
        Row(
            f"{name}.theta",
            f"{label}: post-period effect (robust sets in the table)",
            float(row["estimate"]),
            _finite(row["se"]),
            _ci(row["conf_low"], row["conf_high"]),
            None,
            method=method,
            unit=unit,
            note=_join(
                f"interval: original (parallel trends) confidence set; Rambachan-Roth {result.method} "
                f"robust sets by M in the table; breakdown value {bd}",
                _spec_notes(result),
            ),
        )
    )
    ent.tables.append((name, result.plot_data(), f"{label}: robust confidence sets by M ({result.method})"))
    ent.figures.append((name, lambda: result.plot(), f"{label}: sensitivity of the confidence set to M"))
    return ent


def _bacon(name: str, result: Any, label: str, method: str, unit: str, alpha: float) -> Entries:
    ent = Entries()
    row = result.tidy(alpha).iloc[0]  # the TWFE coefficient; the 2x2 comparisons follow
    ent.rows.append(
        Row(
            f"{name}.twfe",
            f"{label}: TWFE coefficient",
            float(row["estimate"]),
            _finite(row["se"]),
            _ci(row["conf_low"], row["conf_high"]),
            _finite(row["p_value"]),
            method=method,
            unit=unit,
            note=_join("the TWFE coefficient decomposed into 2x2 comparisons (table); CR1 SE", _spec_notes(result)),
        )
    )
    ent.tables.append((name, result.by_type(), f"{label}: weight and average estimate by comparison type"))
    ent.figures.append((name, lambda: result.plot(), f"{label}: 2x2 estimates against their weights"))
    return ent


def _leniency(name: str, result: Any, label: str, method: str, unit: str, alpha: float) -> Entries:
    """Examiner IV: one headline row per term (LATE, relative effect, first stage, ...), with the F statistics."""
    ent = Entries()
    how = _inference(result.effects)
    for i, r in enumerate(result.tidy(alpha).itertuples()):
        term = r.term
        ent.rows.append(
            Row(
                f"{name}.{term}",
                f"{label}: {str(term).replace('_', ' ')}",
                float(r.estimate),
                _finite(r.se),
                _ci(r.conf_low, r.conf_high),
                _finite(r.p_value),
                method=method,
                unit="ratio" if term == "relative_effect" else unit,
                note=how if i == 0 else "",
            )
        )
    ent.notes.append(
        _join(f"first-stage F {result.first_stage_f:.1f}, effective F {result.effective_f:.1f}", _spec_notes(result))
    )
    ent.tables.append((name, result.tidy(alpha), f"{label}: IV estimates"))
    if callable(getattr(result, "plot", None)):
        ent.figures.append((name, lambda: result.plot(), f"{label}: first stage"))
    return ent


def _generic(name: str, result: Any, label: str, method: str, unit: str, alpha: float) -> Entries:
    """Any result: its tidy(alpha) table and figure, and a headline row per term with an interval or p-value."""
    tidy = result.tidy(alpha)
    ent = Entries(tables=[(name, tidy, label)], notes=[f"{label}: " + n for n in _spec_notes(result)])
    for r in tidy.itertuples():
        ci, p = _ci(r.conf_low, r.conf_high), _finite(r.p_value)
        if ci is None and p is None:
            continue
        ent.rows.append(Row(f"{name}.{r.term}", f"{label}: {r.term}", float(r.estimate), _finite(r.se), ci, p,
                            method=method, unit=unit, note=f"p-value and interval: {r.inference}"))
    ent.figures.append((name, lambda: result.plot(), label))
    return ent


def _answers(result: Any, *names: str) -> bool:
    return all(hasattr(result, n) for n in names)


def entries(
    name: str,
    result: Any,
    *,
    label: str | None = None,
    method: str | None = None,
    unit: str = "",
    alpha: float = 0.05,
    aggregate: Sequence[str] = (),
    placebo: Any = None,
) -> Entries:
    """What ``result`` adds to a report under ``name`` (see the module docstring for the rules).

    ``aggregate`` lists the ATT(g,t) aggregations to report (Callaway-Sant'Anna only; default the
    overall ATT); ``placebo`` is a :class:`PlaceboResult` of a synthetic-control fit, used for its
    p-value, table and figure.
    """
    from decrimkit.results import Result

    if not isinstance(result, Result):
        from decrimkit.errors import SpecificationError

        raise SpecificationError(
            f"add_result({name!r}, ...) got a {type(result).__name__}, which does not keep the result contract "
            f"(estimate, se, conf_int, tidy, summary, plot, spec); pass a decrimkit result, or numbers with "
            f"estimate=..."
        )
    estimator = str(result.spec.estimator or "")
    label = label or estimator_label(estimator) or humanize(name)
    method = method if method is not None else estimator
    # the rules go by what a result answers beyond the contract (reporting imports no estimator)
    if _answers(result, "aggregate", "pretest"):
        ent = _att_gt(name, result, label, method, unit, alpha, aggregate)
    elif _answers(result, "overall_inference", "label_name"):
        ent = _effect(name, result, label, method, unit, alpha)
    elif _answers(result, "weights", "gap", "observed", "synthetic"):
        ent = _synth(name, result, label, method, unit, alpha, placebo)
    elif _answers(result, "hdi", "p_negative", "headline"):
        ent = _posterior(name, result, label, method, alpha)
    elif _answers(result, "original", "breakdown"):
        ent = _honest(name, result, label, method, unit)
    elif _answers(result, "first_stage_f", "effects"):
        ent = _leniency(name, result, label, method, unit, alpha)
    elif _answers(result, "by_type", "twfe_estimate"):
        ent = _bacon(name, result, label, method, unit, alpha)
    else:
        ent = _generic(name, result, label, method, unit, alpha)
    ent.label = label
    return ent
