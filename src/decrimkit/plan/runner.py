"""A validated plan and its run: import each allowlisted estimator, call it, put its result in the report.

:class:`EstimatorCall` is one ``[[estimators]]``/``[[robustness]]`` entry; :class:`Plan` is the whole plan,
built by :func:`decrimkit.plan.parse.parse_plan`. Nothing here reads the plan file.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from decrimkit.errors import PlanError
from decrimkit.plan.schema import ALLOWLIST, CASE_LEVEL, TAKES_RESULT

__all__ = ["EstimatorCall", "Plan"]


@dataclass(frozen=True)
class EstimatorCall:
    """One estimator run: its allowlisted ``name``, a ``label``, keyword ``options`` and follow-up steps.

    ``aggregate`` lists Callaway-Sant'Anna aggregations to report, ``placebo`` asks a synthetic control
    for placebo runs (``"space"`` or ``"time"``; ``refit_v`` re-chooses V in each placebo fit), ``of`` names the entry whose result ``did.honest``
    analyses; ``where`` is the entry's place in the plan (for messages).
    """

    name: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)
    aggregate: tuple[str, ...] = ()
    placebo: str | None = None
    of: str | None = None
    where: str = ""
    refit_v: bool = False

    def resolve(self) -> Any:
        """Import and return the estimator function (PlanError if this installation lacks it: a broken install;
        ``tests/test_registry.py`` checks that every allowlisted module exists)."""
        module, attr = ALLOWLIST[self.name]
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            raise PlanError(
                f"estimator {self.name!r} is missing from this installation of decrimkit (no module {module}); "
                f"reinstall decrimkit."
            )
        fn = getattr(importlib.import_module(module), attr, None)
        if not callable(fn):
            raise PlanError(
                f"estimator {self.name!r} is missing from this installation of decrimkit ({module} has no {attr}()); "
                f"reinstall decrimkit."
            )
        return fn

    def check_options(self, fn: Any) -> None:
        """PlanError naming the allowed options when an option is not a keyword of ``fn``, or a required one is missing."""
        params = list(inspect.signature(fn).parameters.values())[1:]  # the first takes the data (or a result)
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return
        allowed = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        unknown = [k for k in self.options if k not in allowed]
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PlanError(
                f"plan key {self.where}.options.{unknown[0]}: {self.name} has no option {unknown[0]!r}{hint}; "
                f"allowed: {', '.join(allowed)}."
            )
        missing = [
            p.name
            for p in params
            if p.default is inspect.Parameter.empty
            and p.name not in self.options
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if missing:
            raise PlanError(
                f"plan key {self.where}.options needs {', '.join(missing)} for {self.name} "
                f"(e.g. options = {{ {missing[0]} = ... }})."
            )


@dataclass(frozen=True)
class Plan:
    """A validated analysis plan. Build it with :func:`load_plan` or :func:`parse_plan`."""

    name: str
    title: str
    description: str
    data: dict[str, str]
    design: dict[str, Any]
    estimators: tuple[EstimatorCall, ...]
    robustness: tuple[EstimatorCall, ...]
    out: Path
    seed: int
    suppress_below: int
    source: Path | None = None
    allow_outside_paths: bool = False

    def load_data(self) -> pd.DataFrame:
        """The plan's data frame (bundled dataset, verified, or the CSV at ``data.path``)."""
        if "dataset" in self.data:
            from decrimkit.datasets import load_dataset

            return load_dataset(self.data["dataset"], self.data.get("file"))
        try:
            return pd.read_csv(self.data["path"])
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise PlanError(f"data.path {self.data['path']!r} could not be read as CSV: {exc}") from exc

    def panel(self) -> Any:
        from decrimkit.panel import Panel

        return Panel.from_frame(self.load_data(), **self.design)

    def check(self) -> tuple[list[tuple[EstimatorCall, Any]], pd.DataFrame | None, Any]:
        """Everything short of estimating: import each estimator, check its options against its
        signature, load the data and build the panel. Returns (calls with functions, frame, panel)."""
        calls = [(c, c.resolve()) for c in (*self.estimators, *self.robustness)]
        for call, fn in calls:
            call.check_options(fn)
        uses = {c.name for c, _ in calls if c.name not in TAKES_RESULT}
        frame = self.load_data() if uses & CASE_LEVEL else None
        panel = None
        if uses - CASE_LEVEL:
            from decrimkit.panel import Panel

            panel = Panel.from_frame(frame if frame is not None else self.load_data(), **self.design)
        return calls, frame, panel

    def run(self, out: str | Path | None = None, seed: int | None = None) -> Path:
        """Run every estimator and robustness check and write the report; returns the output folder.

        ``out`` given here (e.g. ``decrimkit run --out``) is the caller's own choice and, like
        ``decrimkit study --out``, may be any folder (it must not hold files decrimkit did not write);
        the plan file's ``outputs.out`` stays inside ``outputs/`` unless the plan sets
        ``allow_outside_paths``.
        """
        from decrimkit.reporting.output import check_output_folder, output_lock

        seed = self.seed if seed is None else int(seed)
        out_dir = self.out if out is None else Path(out).expanduser().resolve()
        check_output_folder(out_dir)  # refuse a foreign folder before any work
        with output_lock(out_dir):  # one run per folder, for the whole run
            return self._run(out_dir, seed)

    def _run(self, out_dir: Path, seed: int) -> Path:
        from decrimkit.reporting import Report
        from decrimkit.reporting.entries import estimator_label

        calls, frame, panel = self.check()  # fail before any work
        rep = Report(
            self.name,
            out=out_dir,
            seed=seed,
            title=self.title,
            suppress_below=self.suppress_below,
            command=f"decrimkit run {self.source.name if self.source else '<plan>'}",
        )
        if "dataset" in self.data:
            rep.use_dataset(self.data["dataset"])
        else:
            rep.use_file(self.data["path"])
        rep.add_section("Plan", (self.description + "\n\n" if self.description else "") + self._summary_md(panel))
        results: dict[str, Any] = {}
        robustness = {id(c) for c in self.robustness}
        for call, fn in calls:
            kwargs = dict(call.options)
            if "seed" in inspect.signature(fn).parameters and "seed" not in kwargs:
                kwargs["seed"] = seed
            if call.of is not None:
                data = results[call.of]
                if type(data).__name__ == "AttGt":  # honest() takes the event-study aggregate of att_gt
                    data = data.aggregate("dynamic")
            else:
                data = frame if call.name in CASE_LEVEL else panel
            result = fn(data, **kwargs)
            results[call.label] = result
            placebo = None
            if call.placebo is not None:
                placebo = result.placebo(call.placebo, refit_v=call.refit_v)
            outcome = kwargs.get("outcome") if call.name in CASE_LEVEL else self.design.get("outcome")
            if (getattr(getattr(result, "spec", None), "options", None) or {}).get("scale") == "rate":
                outcome = f"{outcome} per 100,000 population"  # synthetic control fits rates when it can
            robust = id(call) in robustness
            human = estimator_label(call.name) + ("" if call.label == call.name else f" [{call.label}]")
            rep.add_result(
                call.label,
                result,
                label=("Robustness: " if robust else "") + human,
                method=call.name,
                unit=f"units of {outcome}" if outcome else "",
                aggregate=call.aggregate,
                placebo=placebo,
                note="robustness check" if robust else "",
                counts=self._outcome_is_count(),
            )
        return rep.write()

    def _outcome_is_count(self) -> bool | None:
        """The design's ``count`` (true by default with a population); None lets the report guess (conservatively)."""
        if "count" in self.design:
            return bool(self.design["count"])
        return True if "population" in self.design else None

    def _bases(self) -> list[Path]:
        return [Path.cwd()] + ([self.source.parent] if self.source is not None else [])

    def _data_shown(self) -> str:
        """The data as the report names it: the dataset, or the CSV relative to the folder holding its data/
        (the plan's folder or the current one), never the absolute path of this machine."""
        if "dataset" in self.data:
            return self.data["dataset"]
        path = Path(self.data["path"])
        for base in self._bases()[::-1]:  # the plan's folder first
            try:
                return path.relative_to(base.resolve()).as_posix()
            except ValueError:
                continue
        return path.name  # a plan with allow_outside_paths: the file's name (its sha256 is in the Data section)

    def _summary_md(self, panel: Any) -> str:
        data = self._data_shown()
        lines = [f"- data: `{data}`" + (f" (file `{self.data['file']}`)" if "file" in self.data else "")]
        lines.append("- design: " + ", ".join(f"{k}=`{v}`" for k, v in self.design.items()))
        for c in self.estimators:
            lines.append(f"- estimator `{c.name}` as `{c.label}`, options {c.options or '{}'}")
        for c in self.robustness:
            lines.append(f"- robustness `{c.name}` as `{c.label}`, options {c.options or '{}'}")
        if panel is not None:
            lines.append(f"- panel: {panel.n_obs} rows, {panel.n_units} units x {panel.n_periods} periods")
        return "\n".join(lines)
