"""Analysis plans: a pre-registrable TOML description of a study that ``decrimkit run`` executes.

A plan is untrusted input. It is parsed with :mod:`tomllib` (data only, nothing is evaluated),
checked against the schema below (unknown keys and wrong types raise :class:`PlanError` naming the
key), may read and write only inside the project's ``data/`` and ``outputs/`` folders, and can call
only the estimators on :data:`ALLOWLIST`, imported lazily when the plan runs.

Schema
------
::

    [plan]                       # optional
    name = "mpdta_twfe"          # str; default: the file name without .toml
    title = "..."                # str
    description = "..."          # str (Markdown; shown in the report)

    [data]                       # exactly one of dataset / path
    dataset = "mpdta"            # a bundled dataset (decrimkit data list)
    file = "mpdta.csv"           # optional: which file of the dataset
    path = "data/my_panel.csv"   # or a CSV inside a data/ folder

    [design]                     # column roles, as in Panel.from_frame
    unit = "countyreal"          # str, required
    time = "year"                # str, required
    outcome = "lemp"             # str, required
    cohort = "first.treat"       # str; or treated = "..." (not both)
    population = "pop"           # str, optional; also weights, group (str), covariates (list of str),
    allow_reversal = false       # bool; freq (str); count (bool)

    [[estimators]]               # one table per estimator to run (at least one)
    name = "did.twfe"            # str, one of ALLOWLIST
    label = "twfe"               # str, optional (default: the name); names results and tables
    options = { cluster = "unit" }   # keyword options passed to the estimator (checked against its
                                     # signature by --check; a table of plain values is allowed too)
    aggregate = ["dynamic"]      # did.att_gt only: aggregations reported besides the overall ATT
    placebo = "space"            # synth.scm only: placebo runs, whose rank p-value is reported
    of = "es"                    # did.honest only: the label of an earlier event-study entry

    [[robustness]]               # optional, same fields as [[estimators]]; reported separately

    [outputs]
    out = "outputs/mpdta_twfe"   # str; default outputs/<name> (run(out=...) / --out may be any folder)
    seed = 0                     # int; passed to estimators that take a seed
    suppress_below = 11          # int; small-cell threshold of the report

    allow_outside_paths = false  # top level; true lifts the data/ and outputs/ restriction

Relative paths are resolved against the current directory. A data path must lie in a ``data/``
folder, the plan's output folder in an ``outputs/`` folder, of either the current directory or the plan's
own folder (symbolic links and ``..`` are resolved first).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decrimkit.errors import LimitError, PlanError
from decrimkit.limits import MAX_OPTION_DEPTH, MAX_OPTION_ITEMS, MAX_PLAN_BYTES, MAX_PLAN_ENTRIES, check_options
from decrimkit.registry import ESTIMATORS, PLAN_ALIASES, entry

__all__ = ["ALLOWLIST", "Plan", "EstimatorCall", "load_plan", "parse_plan", "run_plan"]

# Estimators that take the case-level data frame itself (one row per case), not a Panel; a plan that
# calls only these needs no [design] table, and their column roles go in ``options``.
CASE_LEVEL: frozenset[str] = frozenset({"iv.leniency"})

# plan name -> (module, function). Only these can be called from a plan: the registry's entries with
# plan=True, under their registry names (the same as their results' Spec.estimator), and older aliases.
ALLOWLIST: dict[str, tuple[str, str]] = {
    **{e.name: (e.module, e.function) for e in ESTIMATORS if e.plan},
    **{alias: (entry(name).module, entry(name).function) for alias, name in PLAN_ALIASES.items()},
}

# Estimators that take another entry's result instead of the data: did.honest needs an event study.
# (From did.att_gt it gets the event-study aggregate, att_gt(...).aggregate("dynamic").)
TAKES_RESULT: dict[str, tuple[str, ...]] = {"did.honest": ("did.event_study", "did.sun_abraham", "did.att_gt")}
# Follow-up steps a plan entry may ask for, and the estimators that have them.
STEPS: dict[str, tuple[str, ...]] = {"aggregate": ("did.att_gt",), "placebo": ("synth.scm",), "of": tuple(TAKES_RESULT)}
AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
PLACEBOS = ("space", "time")

_STR, _BOOL, _INT = (str,), (bool,), (int,)
SCHEMA: dict[str, dict[str, Any]] = {
    "plan": {"name": _STR, "title": _STR, "description": _STR},
    "data": {"dataset": _STR, "file": _STR, "path": _STR},
    "design": {
        "unit": _STR,
        "time": _STR,
        "outcome": _STR,
        "cohort": _STR,
        "treated": _STR,
        "population": _STR,
        "weights": _STR,
        "group": _STR,
        "covariates": "list[str]",
        "allow_reversal": _BOOL,
        "freq": _STR,
        "count": _BOOL,
    },
    "outputs": {"out": _STR, "seed": _INT, "suppress_below": _INT},
}
ESTIMATOR_KEYS: dict[str, Any] = {
    "name": _STR,
    "label": _STR,
    "options": "table",
    "aggregate": "list[str]",
    "placebo": _STR,
    "of": _STR,
}
TOP_LEVEL = {"plan", "data", "design", "estimators", "robustness", "outputs", "allow_outside_paths"}
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")


@dataclass(frozen=True)
class EstimatorCall:
    """One estimator run: its allowlisted ``name``, a ``label``, keyword ``options`` and follow-up steps.

    ``aggregate`` lists Callaway-Sant'Anna aggregations to report, ``placebo`` asks a synthetic control
    for placebo runs (``"space"`` or ``"time"``), ``of`` names the entry whose result ``did.honest``
    analyses; ``where`` is the entry's place in the plan (for messages).
    """

    name: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)
    aggregate: tuple[str, ...] = ()
    placebo: str | None = None
    of: str | None = None
    where: str = ""

    def resolve(self) -> Any:
        """Import and return the estimator function (PlanError if it is not built yet)."""
        module, attr = ALLOWLIST[self.name]
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            raise PlanError(f"estimator {self.name!r} is not built yet in this version of decrimkit (no {module}).")
        fn = getattr(importlib.import_module(module), attr, None)
        if not callable(fn):
            raise PlanError(f"estimator {self.name!r} is not built yet ({module} has no {attr}()).")
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
                placebo = result.placebo(call.placebo)
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

    def _summary_md(self, panel: Any) -> str:
        data = self.data.get("dataset") or self.data.get("path")
        lines = [f"- data: `{data}`" + (f" (file `{self.data['file']}`)" if "file" in self.data else "")]
        lines.append("- design: " + ", ".join(f"{k}=`{v}`" for k, v in self.design.items()))
        for c in self.estimators:
            lines.append(f"- estimator `{c.name}` as `{c.label}`, options {c.options or '{}'}")
        for c in self.robustness:
            lines.append(f"- robustness `{c.name}` as `{c.label}`, options {c.options or '{}'}")
        if panel is not None:
            lines.append(f"- panel: {panel.n_obs} rows, {panel.n_units} units x {panel.n_periods} periods")
        return "\n".join(lines)


def _type_ok(value: Any, expected: Any) -> bool:
    if expected == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if expected == "table":
        return isinstance(value, dict)
    if expected == _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    return expected if isinstance(expected, str) else expected[0].__name__


def _section(doc: dict[str, Any], key: str, required: bool) -> dict[str, Any]:
    if key not in doc:
        if required:
            raise PlanError(f"plan has no [{key}] table; add one (see the schema in docs/cli.md).")
        return {}
    sec = doc[key]
    if not isinstance(sec, dict):
        raise PlanError(f"plan key {key!r} must be a table ([{key}]), got {type(sec).__name__}.")
    for k, v in sec.items():
        if k not in SCHEMA[key]:
            raise PlanError(f"unknown key {key}.{k} in the plan; allowed: {', '.join(SCHEMA[key])}.")
        if not _type_ok(v, SCHEMA[key][k]):
            raise PlanError(f"plan key {key}.{k} must be {_type_name(SCHEMA[key][k])}, got {type(v).__name__} {v!r}.")
    return sec


def _option_ok(value: Any, depth: int = 0) -> bool:
    if isinstance(value, (str, int, float, bool)):
        return not (isinstance(value, float) and not np.isfinite(value))
    if isinstance(value, list):
        return depth < MAX_OPTION_DEPTH and all(_option_ok(v, depth + 1) for v in value)
    if isinstance(value, dict) and depth == 0:  # e.g. policy_model = { Oregon = "de_jure" }: plain values
        return all(isinstance(k, str) and _option_ok(v, MAX_OPTION_DEPTH) for k, v in value.items())
    return False


def _option_size(where: str, key: str, value: Any) -> None:
    stack, n = [value], 0
    while stack:
        v = stack.pop()
        if isinstance(v, (list, dict)):
            n += len(v)
            stack.extend(v.values() if isinstance(v, dict) else v)
    if n > MAX_OPTION_ITEMS:
        raise LimitError(
            f"plan key {where}.options.{key} holds {n:,} items; the limit is {MAX_OPTION_ITEMS:,} (docs/cli.md, Limits)."
        )


def _calls(doc: dict[str, Any], key: str, required: bool) -> tuple[EstimatorCall, ...]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise PlanError(f"plan key {key!r} must be an array of tables ([[{key}]]).")
    if required and not items:
        raise PlanError(f'plan has no [[{key}]] entry; add at least one, e.g. name = "did.twfe".')
    if len(items) > MAX_PLAN_ENTRIES:
        raise LimitError(
            f"plan has {len(items):,} [[{key}]] entries; the limit is {MAX_PLAN_ENTRIES} (docs/cli.md, Limits): "
            f"split it into several plans."
        )
    calls = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        for k, v in item.items():
            if k not in ESTIMATOR_KEYS:
                raise PlanError(f"unknown key {where}.{k} in the plan; allowed: {', '.join(ESTIMATOR_KEYS)}.")
            if not _type_ok(v, ESTIMATOR_KEYS[k]):
                raise PlanError(
                    f"plan key {where}.{k} must be {_type_name(ESTIMATOR_KEYS[k])}, got {type(v).__name__}."
                )
        if "name" not in item:
            raise PlanError(f"plan key {where} has no name; give one of {', '.join(ALLOWLIST)}.")
        if item["name"] not in ALLOWLIST:
            raise PlanError(
                f"plan key {where}.name = {item['name']!r} is not an allowed estimator; use one of {', '.join(ALLOWLIST)}."
            )
        options = item.get("options", {})
        for k, v in options.items():
            if isinstance(v, (list, dict)):
                _option_size(where, k, v)
            if not _option_ok(v):
                raise PlanError(
                    f"plan key {where}.options.{k} must be a string, number, boolean, a list of them "
                    f"(lists nested at most {MAX_OPTION_DEPTH} deep) or a table of them, got {type(v).__name__}."
                )
        check_options(options, where=f"plan key {where}.options")
        label = item.get("label", item["name"])
        if not _LABEL.match(label):
            raise PlanError(f"plan key {where}.label = {label!r} must be letters, digits, '_', '-' or '.'.")
        for step, names in STEPS.items():
            if step in item and item["name"] not in names:
                raise PlanError(f"plan key {where}.{step} applies only to {', '.join(names)}, not {item['name']}.")
        aggregate = tuple(item.get("aggregate", ()))
        bad = [a for a in aggregate if a not in AGGREGATIONS]
        if bad:
            raise PlanError(
                f"plan key {where}.aggregate: {bad[0]!r} is not an aggregation; use {', '.join(AGGREGATIONS)}."
            )
        placebo = item.get("placebo")
        if placebo is not None and placebo not in PLACEBOS:
            raise PlanError(f"plan key {where}.placebo = {placebo!r}: use one of {', '.join(PLACEBOS)}.")
        if item["name"] in TAKES_RESULT and "of" not in item:
            raise PlanError(
                f'plan key {where} ({item["name"]}) needs of = "<label>", the label of an earlier entry using '
                f"{' or '.join(TAKES_RESULT[item['name']])}."
            )
        calls.append(EstimatorCall(item["name"], label, dict(options), aggregate, placebo, item.get("of"), where))
    return tuple(calls)


def _check_references(calls: tuple[EstimatorCall, ...]) -> None:
    seen: dict[str, str] = {}
    for c in calls:
        if c.of is not None:
            wanted = TAKES_RESULT[c.name]
            if seen.get(c.of) not in wanted:
                raise PlanError(
                    f"plan key {c.where}.of = {c.of!r} must be the label of an earlier entry using "
                    f"{' or '.join(wanted)}; earlier labels: {', '.join(seen) or 'none'}."
                )
        seen[c.label] = c.name


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _check_path(path: Path, folder: str, bases: list[Path], allow_outside: bool) -> Path:
    resolved = path.expanduser().resolve()
    if allow_outside:
        return resolved
    # the folder itself is not resolved: a data/ or outputs/ that is a symbolic link to elsewhere is
    # not a way out (the resolved path must lie under the real <base>/<folder>)
    roots = [b.resolve() / folder for b in bases]
    if not any(_inside(resolved, r) and not r.is_symlink() for r in roots):
        where = " or ".join(str(r) for r in dict.fromkeys(roots))
        raise PlanError(
            f"path {str(path)!r} resolves to {str(resolved)!r}, outside the project's {folder}/ folder ({where}; "
            f"symbolic links are followed before the check, and a {folder}/ that is itself a link does not count); "
            f"move it there, or set allow_outside_paths = true at the top of the plan if you trust it."
        )
    return resolved


def parse_plan(doc: dict[str, Any], source: Path | None = None) -> Plan:
    """Validate a parsed TOML document and return the :class:`Plan` (PlanError on any problem)."""
    unknown = sorted(set(doc) - TOP_LEVEL)
    if unknown:
        raise PlanError(f"unknown top-level key(s) {unknown} in the plan; allowed: {', '.join(sorted(TOP_LEVEL))}.")
    allow_outside = doc.get("allow_outside_paths", False)
    if not isinstance(allow_outside, bool):
        raise PlanError(f"plan key allow_outside_paths must be true or false, got {allow_outside!r}.")
    meta = _section(doc, "plan", required=False)
    data = dict(_section(doc, "data", required=True))
    estimators = _calls(doc, "estimators", required=True)
    robustness = _calls(doc, "robustness", required=False)
    _check_references((*estimators, *robustness))
    needs_panel = any(c.name not in CASE_LEVEL for c in (*estimators, *robustness))
    design = dict(_section(doc, "design", required=needs_panel))
    outputs = _section(doc, "outputs", required=False)
    bases = [Path.cwd()] + ([source.parent] if source is not None else [])

    if ("dataset" in data) == ("path" in data):
        raise PlanError('plan [data] needs exactly one of dataset = "<bundled name>" or path = "data/<file>.csv".')
    if "file" in data and "dataset" not in data:
        raise PlanError("plan key data.file goes with data.dataset (a file of a bundled dataset).")
    if "dataset" in data:
        from decrimkit.datasets import dataset_info

        try:
            info = dataset_info(data["dataset"])
        except Exception as exc:
            raise PlanError(f"plan key data.dataset: {exc}") from exc
        if "file" in data and data["file"].removesuffix(".gz") not in {f["name"] for f in info["files"]}:
            raise PlanError(f"plan key data.file = {data['file']!r} is not a file of dataset {data['dataset']!r}.")
    else:
        p = _check_path(Path(data["path"]), "data", bases, allow_outside)
        if p.suffix.lower() != ".csv":
            raise PlanError(f"plan key data.path = {data['path']!r} must be a .csv file.")
        if not p.is_file():
            raise PlanError(f"plan key data.path = {data['path']!r}: no such file.")
        data["path"] = str(p)
    for req in ("unit", "time", "outcome") if needs_panel else ():
        if req not in design:
            raise PlanError(f'plan [design] needs {req} = "<column>".')
    if "cohort" in design and "treated" in design:
        raise PlanError("plan [design] takes cohort or treated, not both.")
    if "covariates" in design:
        design["covariates"] = tuple(design["covariates"])

    name = meta.get("name") or (source.stem if source is not None else "plan")
    if not _LABEL.match(name):
        raise PlanError(f"plan key plan.name = {name!r} must be letters, digits, '_', '-' or '.'.")
    if len(estimators) + len(robustness) > MAX_PLAN_ENTRIES:
        raise LimitError(
            f"plan has {len(estimators) + len(robustness):,} [[estimators]] and [[robustness]] entries; the limit is "
            f"{MAX_PLAN_ENTRIES} (docs/cli.md, Limits): split it into several plans."
        )
    labels = Counter(c.label for c in (*estimators, *robustness))
    dup = sorted(lab for lab, n in labels.items() if n > 1)
    if dup:
        raise PlanError(f"estimator labels {dup} repeat; give each [[estimators]]/[[robustness]] entry its own label.")
    out = _check_path(Path(outputs.get("out", f"outputs/{name}")), "outputs", bases, allow_outside)
    seed = outputs.get("seed", 0)
    suppress_below = outputs.get("suppress_below", 11)
    if suppress_below < 1 or seed < 0:
        raise PlanError("plan keys outputs.seed must be >= 0 and outputs.suppress_below >= 1.")
    plan = Plan(
        name=name,
        title=meta.get("title", f"Analysis plan {name}"),
        description=meta.get("description", ""),
        data=data,
        design=design,
        estimators=estimators,
        robustness=robustness,
        out=out,
        seed=seed,
        suppress_below=suppress_below,
        source=source,
        allow_outside_paths=allow_outside,
    )
    return plan


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file.

    Raises
    ------
    PlanError
        The file is missing, not valid TOML, or breaks the schema or the path rules.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            text = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise PlanError(f"cannot read plan file {str(p)!r}: {exc.strerror or exc}.") from exc
    if len(text) > MAX_PLAN_BYTES:
        raise LimitError(
            f"plan file {str(p)!r} is larger than {MAX_PLAN_BYTES:,} bytes (docs/cli.md, Limits); a plan describes "
            f"an analysis, the data go in a CSV under data/."
        )
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PlanError(f"plan file {str(p)!r} is not valid TOML: {exc}.") from exc
    except RecursionError:
        raise LimitError(
            f"plan file {str(p)!r} nests arrays or tables too deeply to read; a plan needs at most "
            f"{MAX_OPTION_DEPTH} levels of lists in an option."
        ) from None
    return parse_plan(doc, source=p.resolve())


def run_plan(path: str | Path, out: str | Path | None = None, seed: int | None = None) -> Path:
    """Load, validate and run a plan; returns the output folder."""
    return load_plan(path).run(out=out, seed=seed)
