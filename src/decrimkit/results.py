"""Result base classes: one vocabulary for every estimator (the :class:`Result` protocol).

Every result is a frozen dataclass holding read-only NumPy arrays, labels and a :class:`Spec`.
It answers ``estimate``, ``se``, ``conf_int(alpha=0.05)`` (a DataFrame indexed by term with columns
``conf_low``, ``conf_high``), ``tidy(alpha=0.05)`` (a DataFrame whose first columns are
:data:`TIDY_COLUMNS`), ``summary()`` (text naming the inference method; also ``repr()`` and ``str()``,
HTML in notebooks), ``plot_data(kind=)`` and ``plot(kind=, ax=None)``. Where a method gives no interval
or no p-value, the cell is NaN and ``summary()`` says so; none is invented.
Another inference choice gives a new result (``dataclasses.replace``), never an edited one.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from scipy import stats

from decrimkit.errors import SpecificationError

__all__ = [
    "Result", "Spec", "Summarised", "Effect", "TIDY_COLUMNS", "check_alpha", "interval_frame", "tidy_frame",
    "frozen_array",
    "format_p", "p_clause", "P_VALUE_COLUMNS",
]

# The first columns of every result's tidy(alpha), in this order; a result may add columns after them.
TIDY_COLUMNS = ("term", "estimate", "se", "conf_low", "conf_high", "p_value", "inference")

# Columns holding p-values: printed as ``<0.001`` or with 3 decimals in summaries and reports;
# tidy() frames and results.json keep full precision.
P_VALUE_COLUMNS = frozenset({"p_value", "p", "p_floor"})

# Design options named in every summary() header (as R's did and statsmodels do), in this order.
_CONTROL = {"never": "never treated", "notyet": "not yet treated"}
_METHOD = {
    "dr": "doubly robust",
    "dr_imp": "improved doubly robust",
    "ipw": "inverse probability weighting",
    "reg": "outcome regression",
}


def format_p(p: Any) -> str:
    """A p-value for display: ``<0.001`` below 0.001, else 3 decimals; empty when missing."""
    if p is None or isinstance(p, str):
        return "" if p is None else p
    v = float(p)
    if not np.isfinite(v):
        return ""
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def p_clause(p: Any) -> str:
    """``"p < 0.001"`` or ``"p = 0.042"`` for running text; ``"p n/a"`` when missing."""
    shown = format_p(p)
    if not shown:
        return "p n/a"
    return "p < 0.001" if shown.startswith("<") else f"p = {shown}"


def _design_line(options: Mapping[str, Any]) -> str | None:
    parts = []
    if options.get("control") is not None:
        control = options["control"]
        parts.append(f"control group: {_CONTROL.get(control, control)}")
    if options.get("anticipation") is not None:
        parts.append(f"anticipation periods: {options['anticipation']}")
    if isinstance(options.get("method"), str):
        method = options["method"]
        parts.append(f"estimation method: {_METHOD[method]} ({method})" if method in _METHOD
                     else f"method: {method}")
    if options.get("covariates"):
        parts.append("covariates: " + ", ".join(map(str, options["covariates"])))
    return "; ".join(parts) if parts else None


def frozen_array(x: Any, dtype: str = "float64") -> np.ndarray:
    """A read-only float64 copy of ``x`` (results never share memory with kernels or callers)."""
    a = np.array(x, dtype=dtype, copy=True)
    a.setflags(write=False)
    return a


def _version() -> str:
    from decrimkit import __version__

    return __version__


@dataclass(frozen=True)
class Spec:
    """What made a result: the estimator, its options, the seed, sample sizes, rows excluded and why."""

    estimator: str
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    n_units: int | None = None
    n_periods: int | None = None
    n_obs: int | None = None
    excluded: tuple[tuple[int, str], ...] = ()
    notes: tuple[str, ...] = ()
    version: str = field(default_factory=_version)

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "options": {k: _plain(v) for k, v in self.options.items()},
            "seed": self.seed,
            "n_units": self.n_units,
            "n_periods": self.n_periods,
            "n_obs": self.n_obs,
            "excluded": [{"rows": n, "reason": r} for n, r in self.excluded],
            "notes": list(self.notes),
            "version": self.version,
        }


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


@runtime_checkable
class Result(Protocol):
    """What every decrimkit result answers (``isinstance(x, Result)`` checks the names are there).

    ``estimate`` and ``se``: the point estimate(s) and standard error(s) (NaN where the method has none);
    ``conf_int(alpha)``: DataFrame indexed by ``term`` with ``conf_low``, ``conf_high`` (NaN where the
    method gives no interval); ``tidy(alpha)``: DataFrame whose first columns are :data:`TIDY_COLUMNS`,
    its interval and p-value from the method named in ``inference``; ``summary()``: text naming that
    method (also ``repr()``); ``plot()``: a matplotlib Figure; ``spec``: what made the result.
    """

    spec: Spec

    @property
    def estimate(self) -> Any: ...

    @property
    def se(self) -> Any: ...

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame: ...

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame: ...

    def summary(self) -> str: ...

    def plot(self, *args: Any, **kwargs: Any) -> Any: ...


def interval_frame(terms: Sequence[Any], low: Any, high: Any) -> pd.DataFrame:
    """The ``conf_int`` frame: one row per term (index ``term``), columns ``conf_low``, ``conf_high``."""
    terms = list(terms)
    low = np.asarray(low, dtype="float64").reshape(-1)
    high = np.asarray(high, dtype="float64").reshape(-1)
    return pd.DataFrame({"conf_low": low, "conf_high": high}, index=pd.Index(terms, name="term"))


def tidy_frame(
    term: Sequence[Any],
    estimate: Any,
    se: Any,
    conf_low: Any,
    conf_high: Any,
    p_value: Any,
    inference: Any,
    **extra: Any,
) -> pd.DataFrame:
    """A tidy() frame: the :data:`TIDY_COLUMNS` in order (scalars broadcast), then ``extra`` columns."""
    term = list(term)
    n = len(term)

    def col(v: Any, dtype: str | None = "float64") -> Any:
        if isinstance(v, str) or v is None or np.ndim(v) == 0:
            v = [np.nan if v is None else v] * n
        return np.asarray(v, dtype=dtype).reshape(-1) if dtype else list(v)

    out = pd.DataFrame({
        "term": term,
        "estimate": col(estimate),
        "se": col(se),
        "conf_low": col(conf_low),
        "conf_high": col(conf_high),
        "p_value": col(p_value),
        "inference": col(inference, None),
    })
    for k, v in extra.items():
        out[k] = v
    return out


def check_alpha(alpha: float, made_at: float, rerun: str) -> None:
    """Refuse an ``alpha`` other than the one a fixed-level result was computed at (its sets invert a test
    at that level only); ``rerun`` names the call that gives the other level."""
    if not 0 < alpha < 1:
        raise SpecificationError(f"alpha={alpha!r} must lie in (0, 1).")
    if not np.isclose(alpha, made_at, rtol=0, atol=1e-12):
        raise SpecificationError(
            f"this result's intervals were computed at alpha={made_at:g} and cannot be read at alpha={alpha:g}; "
            f"rerun {rerun} with alpha={alpha:g}."
        )


class Summarised:
    """Mixin: ``repr()``, ``str()`` and ``_repr_html_`` show ``summary()``; ``conf_int(alpha)`` reads
    ``tidy(alpha)``; subclasses implement ``tidy(alpha)``."""

    title: str = "decrimkit result"

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:  # pragma: no cover - every subclass overrides
        raise TypeError(f"{type(self).__name__} must define tidy()")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """``1 - alpha`` intervals by term (``conf_low``, ``conf_high``), from the method tidy() names."""
        t = self.tidy(alpha)
        return interval_frame(t["term"], t["conf_low"], t["conf_high"])

    def _header(self) -> list[str]:
        spec: Spec | None = getattr(self, "spec", None)
        lines = [self.title]
        if spec is not None:
            sizes = ", ".join(
                f"{k} {v}"
                for k, v in (("units", spec.n_units), ("periods", spec.n_periods), ("obs", spec.n_obs))
                if v is not None
            )
            lines.append(f"estimator: {spec.estimator}" + (f"  ({sizes})" if sizes else ""))
            design = _design_line(spec.options)
            if design:
                lines.append(design)
            if spec.seed is not None:
                lines.append(f"seed: {spec.seed}")
            for n, r in spec.excluded:
                lines.append(f"excluded: {n} rows ({r})")
            lines.extend(f"note: {n}" for n in spec.notes)
        return lines

    def _display(self) -> pd.DataFrame:
        """tidy() for reading: p-value columns as ``<0.001`` / 3 decimals (tidy() keeps full precision)."""
        frame = self.tidy()
        for col in frame.columns:
            if col in P_VALUE_COLUMNS:
                frame[col] = [format_p(v) for v in frame[col]]
        return frame

    def summary(self) -> str:
        table = self._display().to_string(index=False, float_format=lambda v: f"{v:.6g}")
        return "\n".join(self._header() + ["", table])

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(line) for line in self._header())
        table = self._display().to_html(index=False, float_format=lambda v: f"{v:.6g}")
        return f"<div><p>{head}</p>{table}</div>"


@dataclass(frozen=True, repr=False)
class Effect(Summarised):
    """Estimated effects with standard errors. ``estimate``, ``se``: (k,) float64, one per label.

    ``crit`` is an optional critical value for simultaneous (uniform) bands, e.g. from a multiplier
    bootstrap; ``df`` switches intervals and p-values from the normal to Student's t.
    ``vcov`` (k, k) is kept when known (Wald tests, sensitivity analysis).
    """

    label: tuple[Any, ...]
    estimate: np.ndarray
    se: np.ndarray
    spec: Spec
    label_name: str = "term"
    vcov: np.ndarray | None = None
    df: float | None = None
    crit: float | None = None
    overall: tuple[float, float] | None = None  # (estimate, se) of an overall summary, if any
    scale: str = "difference"
    title: str = "Effect estimates"
    # a few-treated inference (decrimkit.inference: randomization, Conley-Taber, Ferman-Pinto, wild): when
    # set, its p-values and intervals replace the analytic ones for the rows it covers, at every alpha
    inference: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimate", frozen_array(self.estimate).reshape(-1))
        object.__setattr__(self, "se", frozen_array(self.se).reshape(-1))
        if self.vcov is not None:
            object.__setattr__(self, "vcov", frozen_array(self.vcov))
        if len(self.label) != len(self.estimate) or len(self.se) != len(self.estimate):
            raise ValueError("label, estimate and se must have the same length")

    def _q(self, alpha: float) -> float:
        if self.df is not None:
            return float(stats.t.ppf(1 - alpha / 2, self.df))
        return float(stats.norm.ppf(1 - alpha / 2))

    def _rows(self) -> list[int]:
        """Rows of ``estimate`` covered by ``inference``."""
        rows = getattr(self.inference, "rows", None)
        return list(range(len(self.estimate))) if rows is None else list(rows)

    def conf_int(self, alpha: float = 0.05, *, uniform: bool = False) -> pd.DataFrame:
        """Pointwise ``1 - alpha`` intervals by term; ``uniform=True`` gives the simultaneous band.

        With a few-treated ``inference`` the rows it covers hold its interval at this ``alpha``.
        """
        ci = self._interval(alpha, uniform=uniform)
        return interval_frame(self.label, ci[:, 0], ci[:, 1])

    def _interval(self, alpha: float = 0.05, *, uniform: bool = False) -> np.ndarray:
        """(k, 2) array of :meth:`conf_int`."""
        q = self.crit if (uniform and self.crit is not None) else self._q(alpha)
        half = q * self.se
        ci = np.column_stack([self.estimate - half, self.estimate + half])
        if self.inference is not None and not uniform:
            rows = self._rows()
            ci[rows] = self.inference.conf_int(alpha)[: len(rows)]
        return ci

    def inference_method(self, row: int | None = None) -> str:
        """Name of the method behind the p-value and interval of ``row`` (or of the overall effect)."""
        if self.inference is not None and (row is None and getattr(self.inference, "overall", False)
                                           or row is not None and row in self._rows()):
            return str(self.inference.method)
        if self.df is not None:
            return f"t({self.df:g})"
        return "normal"

    def _inference_lines(self) -> list[str]:
        lines = []
        if self.inference is not None:
            inf = self.inference
            lines.append(f"p-values and intervals: {inf.describe()}")
            lines.append(f"  null tested: {inf.null}")
            lines.append(f"  assumes: {inf.assumes}")
            rest = [str(self.label[i]) for i in range(len(self.label)) if i not in self._rows()]
            if rest:
                lines.append(f"  other rows ({', '.join(rest)}): {self.inference_method(-1)} "
                             f"with the standard errors shown")
        else:
            lines.append(f"p-values and intervals: {self.inference_method()} with the standard errors shown")
        return lines

    @property
    def statistic(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.estimate / self.se

    @property
    def p_value(self) -> np.ndarray:
        z = np.abs(self.statistic)
        p = 2 * stats.t.sf(z, self.df) if self.df is not None else 2 * stats.norm.sf(z)
        if self.inference is not None:
            p = np.array(p, dtype="float64")
            rows = self._rows()
            p[rows] = self.inference.p_value()[: len(rows)]
        return p

    def __getitem__(self, label: Any) -> float:
        return float(self.estimate[list(self.label).index(label)])

    def tidy(self, alpha: float = 0.05) -> pd.DataFrame:
        """:data:`TIDY_COLUMNS`, then ``statistic``, the label column under its own name (e.g.
        ``event_time``) when it is not ``term``, and the simultaneous band when there is one."""
        ci = self._interval(alpha)
        out = tidy_frame(self.label, self.estimate, self.se, ci[:, 0], ci[:, 1], self.p_value,
                         [self.inference_method(i) for i in range(len(self.label))], statistic=self.statistic)
        if self.label_name != "term":
            out[self.label_name] = list(self.label)
        if self.crit is not None:
            band = self._interval(alpha, uniform=True)
            out["band_low"], out["band_high"] = band[:, 0], band[:, 1]
        return out

    def overall_inference(self, alpha: float = 0.05) -> tuple[float, float, float, float, str] | None:
        """(estimate, p-value, conf_low, conf_high, method) of the overall effect, one method throughout."""
        if self.overall is None:
            return None
        est, se = self.overall
        if self.inference is not None and getattr(self.inference, "overall", False):
            ci = self.inference.conf_int(alpha)[-1]
            return est, float(self.inference.p_value()[-1]), float(ci[0]), float(ci[1]), self.inference.method
        q = self._q(alpha)
        z = abs(est / se) if se > 0 else np.nan
        p = 2 * stats.t.sf(z, self.df) if self.df is not None else 2 * stats.norm.sf(z)
        return est, float(p), est - q * se, est + q * se, self.inference_method(-1)

    def summary(self) -> str:
        text = super().summary()
        text += "\n\n" + "\n".join(self._inference_lines())
        if self.overall is not None:
            est, p, lo, hi, method = self.overall_inference(0.05)  # type: ignore[misc]
            se = self.overall[1]
            text += f"\n\noverall: {est:.6g} (se {se:.6g}; p {format_p(p)}; 95% CI {lo:.6g} .. {hi:.6g}; {method})"
        return text

    def _display(self) -> pd.DataFrame:
        frame = super()._display()
        if self.label_name != "term":  # one label column, under its own name
            frame = frame.drop(columns=[self.label_name]).rename(columns={"term": self.label_name})
        return frame

    def plot_data(self, kind: str = "coef", alpha: float = 0.05) -> pd.DataFrame:
        return self.tidy(alpha)

    def plot(self, kind: str = "coef", ax: Any = None, alpha: float = 0.05) -> Any:
        from decrimkit.plotting import coef_plot

        return coef_plot(self.plot_data(kind, alpha), x=self.label_name, ax=ax, title=self.title)


def stack_labels(labels: Sequence[Any]) -> tuple[Any, ...]:
    """Labels as a tuple of plain Python scalars (NumPy scalars unwrapped)."""
    return tuple(x.item() if isinstance(x, np.generic) else x for x in labels)
