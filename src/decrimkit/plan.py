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
    options = { cluster = "unit" }   # keyword options passed to the estimator

    [[robustness]]               # optional, same fields as [[estimators]]; reported separately

    [outputs]
    out = "outputs/mpdta_twfe"   # str; default outputs/<name>
    seed = 0                     # int; passed to estimators that take a seed
    suppress_below = 11          # int; small-cell threshold of the report

    allow_outside_paths = false  # top level; true lifts the data/ and outputs/ restriction

Relative paths are resolved against the current directory. A data path must lie in a ``data/``
folder, an output folder in an ``outputs/`` folder, of either the current directory or the plan's
own folder (symbolic links and ``..`` are resolved first).
"""

from __future__ import annotations

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

__all__ = ["ALLOWLIST", "Plan", "EstimatorCall", "load_plan", "parse_plan", "run_plan"]

# Estimators that take the case-level data frame itself (one row per case), not a Panel; a plan that
# calls only these needs no [design] table, and their column roles go in ``options``.
CASE_LEVEL: frozenset[str] = frozenset({"iv.leniency"})

# plan name -> (module, function). Only these can be called from a plan.
ALLOWLIST: dict[str, tuple[str, str]] = {
    "did.twfe": ("decrimkit.estimators.did.twfe", "twfe"),
    "did.event_study": ("decrimkit.estimators.did.event_study", "event_study"),
    "did.att_gt": ("decrimkit.estimators.did.att_gt", "att_gt"),
    "did.sun_abraham": ("decrimkit.estimators.did.sun_abraham", "sun_abraham"),
    "did.efficient": ("decrimkit.estimators.did.efficient", "efficient"),
    "did.imputation": ("decrimkit.estimators.did.imputation", "imputation"),
    "did.two_stage": ("decrimkit.estimators.did.two_stage", "two_stage"),
    "did.poisson": ("decrimkit.estimators.did.poisson", "poisson"),
    "synth.scm": ("decrimkit.estimators.synth.scm", "scm"),
    "synth.augsynth": ("decrimkit.estimators.synth.augmented", "augmented"),
    "synth.sdid": ("decrimkit.estimators.synth.sdid", "sdid"),
    "iv.leniency": ("decrimkit.estimators.iv.leniency", "leniency"),
}

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
ESTIMATOR_KEYS: dict[str, Any] = {"name": _STR, "label": _STR, "options": "table"}
TOP_LEVEL = {"plan", "data", "design", "estimators", "robustness", "outputs", "allow_outside_paths"}
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")


@dataclass(frozen=True)
class EstimatorCall:
    """One estimator run: its allowlisted ``name``, a ``label`` and keyword ``options``."""

    name: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)

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
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise PlanError(f"data.path {self.data['path']!r} could not be read as CSV: {exc}") from exc

    def panel(self) -> Any:
        from decrimkit.panel import Panel

        return Panel.from_frame(self.load_data(), **self.design)

    def run(self, out: str | Path | None = None, seed: int | None = None) -> Path:
        """Run every estimator and robustness check and write the report; returns the output folder."""
        from decrimkit.reporting.output import check_output_folder, output_lock

        seed = self.seed if seed is None else int(seed)
        out_dir = (
            self.out if out is None else _check_path(Path(out), "outputs", self._bases(), self.allow_outside_paths)
        )
        check_output_folder(out_dir)  # refuse a foreign folder before any work
        with output_lock(out_dir):  # one run per folder, for the whole run
            return self._run(out_dir, seed)

    def _run(self, out_dir: Path, seed: int) -> Path:
        from decrimkit.reporting import Report

        calls = [(c, c.resolve()) for c in (*self.estimators, *self.robustness)]  # fail before any work
        frame = self.load_data() if any(c.name in CASE_LEVEL for c, _ in calls) else None
        panel = self.panel() if any(c.name not in CASE_LEVEL for c, _ in calls) else None
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
        robust = {id(c) for c in self.robustness}
        for call, fn in calls:
            kwargs = dict(call.options)
            if "seed" in inspect.signature(fn).parameters and "seed" not in kwargs:
                kwargs["seed"] = seed
            result = fn(frame if call.name in CASE_LEVEL else panel, **kwargs)
            outcome = kwargs.get("outcome") if call.name in CASE_LEVEL else self.design["outcome"]
            _report_result(rep, call, result, robustness=id(call) in robust, unit=f"units of {outcome}")
        return rep.write()

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


def _report_result(rep: Any, call: EstimatorCall, result: Any, robustness: bool, unit: str) -> None:
    tidy = result.tidy() if callable(getattr(result, "tidy", None)) else None
    if not isinstance(tidy, pd.DataFrame) or "estimate" not in tidy.columns:
        raise PlanError(f"estimator {call.name!r} returned a result without a tidy() table of estimates.")
    rep.add_table(
        call.label, tidy, count_columns=(), caption=f"{'Robustness: ' if robustness else ''}{call.name} ({call.label})"
    )
    spec = getattr(result, "spec", None)
    n = getattr(spec, "n_obs", None)
    known = {"estimate", "se", "statistic", "p_value", "conf_low", "conf_high", "band_low", "band_high"}
    label_cols = [c for c in tidy.columns if c not in known]
    for i, row in enumerate(tidy.itertuples(index=False)):
        r = row._asdict()
        lab = "_".join(str(r[c]) for c in label_cols[:1]) if label_cols else str(i)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{call.label}.{lab}").strip("_")[:80]
        ci = (r["conf_low"], r["conf_high"]) if {"conf_low", "conf_high"} <= set(r) else None
        rep.add_result(
            name,
            estimate=r["estimate"],
            se=r.get("se"),
            conf_int=ci,
            p_value=r.get("p_value"),
            n=n,
            method=call.name,
            unit=unit,
            note="robustness check" if robustness else "",
        )


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
    return False


def _option_size(where: str, key: str, value: Any) -> None:
    stack, n = [value], 0
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            n += len(v)
            stack.extend(v)
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
            if isinstance(v, list):
                _option_size(where, k, v)
            if not _option_ok(v):
                raise PlanError(
                    f"plan key {where}.options.{k} must be a string, number, boolean or list of them "
                    f"(lists nested at most {MAX_OPTION_DEPTH} deep), got {type(v).__name__}."
                )
        check_options(options, where=f"plan key {where}.options")
        label = item.get("label", item["name"])
        if not _LABEL.match(label):
            raise PlanError(f"plan key {where}.label = {label!r} must be letters, digits, '_', '-' or '.'.")
        calls.append(EstimatorCall(item["name"], label, dict(options)))
    return tuple(calls)


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
