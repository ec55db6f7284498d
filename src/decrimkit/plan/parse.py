"""Read a plan file and build the :class:`~decrimkit.plan.runner.Plan`: schema, limits, paths, cross-references.

The per-key rules are the pydantic schema's (:mod:`decrimkit.plan.schema`); here are the rules that
need the whole plan (labels unique, ``of`` names an earlier entry, ``[design]`` present when a panel is
needed), the bundled datasets, the file system (:mod:`decrimkit.plan.sandbox`) and the size limits.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

from decrimkit.errors import LimitError, PlanError
from decrimkit.limits import MAX_OPTION_DEPTH, MAX_OPTION_ITEMS, MAX_PLAN_BYTES, MAX_PLAN_ENTRIES, check_options
from decrimkit.plan.runner import EstimatorCall, Plan
from decrimkit.plan.sandbox import bases, check_path
from decrimkit.plan.schema import CASE_LEVEL, LABEL, TAKES_RESULT, EntryTable, validate_document

__all__ = ["load_plan", "parse_plan"]

_ENTRY_LISTS = ("estimators", "robustness")


def _check_counts(doc: dict[str, Any]) -> None:
    """LimitError before validation when a plan lists more entries than a plan may run."""
    sizes = {key: len(doc[key]) for key in _ENTRY_LISTS if isinstance(doc.get(key), list)}
    for key, n in sizes.items():
        if n > MAX_PLAN_ENTRIES:
            raise LimitError(
                f"plan has {n:,} [[{key}]] entries; the limit is {MAX_PLAN_ENTRIES} (docs/cli.md, Limits): "
                f"split it into several plans."
            )
    if sum(sizes.values()) > MAX_PLAN_ENTRIES:
        raise LimitError(
            f"plan has {sum(sizes.values()):,} [[estimators]] and [[robustness]] entries; the limit is "
            f"{MAX_PLAN_ENTRIES} (docs/cli.md, Limits): split it into several plans."
        )


def _option_items(value: Any) -> int:
    stack, n = [value], 0
    while stack:
        v = stack.pop()
        if isinstance(v, (list, dict)):
            n += len(v)
            stack.extend(v.values() if isinstance(v, dict) else v)
    return n


def _call(table: EntryTable, where: str) -> EstimatorCall:
    for key, value in table.options.items():
        n = _option_items(value)
        if n > MAX_OPTION_ITEMS:
            raise LimitError(
                f"plan key {where}.options.{key} holds {n:,} items; the limit is {MAX_OPTION_ITEMS:,} "
                f"(docs/cli.md, Limits)."
            )
    check_options(table.options, where=f"plan key {where}.options")
    return EstimatorCall(
        table.name, table.label or table.name, dict(table.options), tuple(table.aggregate), table.placebo,
        table.of, where, refit_v=bool(table.refit_v),
    )


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
    dup = sorted(label for label, n in Counter(c.label for c in calls).items() if n > 1)
    if dup:
        raise PlanError(f"estimator labels {dup} repeat; give each [[estimators]]/[[robustness]] entry its own label.")


def _data(data: dict[str, str], folders: list[Path], allow_outside: bool) -> dict[str, str]:
    """The ``[data]`` table with a bundled dataset checked, or its path checked and resolved."""
    if "dataset" in data:
        from decrimkit.datasets import dataset_info

        try:
            info = dataset_info(data["dataset"])
        except Exception as exc:
            raise PlanError(f"plan key data.dataset: {exc}") from exc
        if "file" in data and data["file"].removesuffix(".gz") not in {f["name"] for f in info["files"]}:
            raise PlanError(f"plan key data.file = {data['file']!r} is not a file of dataset {data['dataset']!r}.")
        return data
    p = check_path(Path(data["path"]), "data", folders, allow_outside)
    if p.suffix.lower() != ".csv":
        raise PlanError(f"plan key data.path = {data['path']!r} must be a .csv file.")
    if not p.is_file():
        raise PlanError(f"plan key data.path = {data['path']!r}: no such file.")
    return {**data, "path": str(p)}


def parse_plan(doc: dict[str, Any], source: Path | None = None) -> Plan:
    """Validate a parsed TOML document and return the :class:`Plan` (PlanError on any problem)."""
    _check_counts(doc)
    document = validate_document(doc)
    allow_outside = document.allow_outside_paths
    calls = {key: tuple(_call(t, f"{key}[{i}]") for i, t in enumerate(getattr(document, key))) for key in _ENTRY_LISTS}
    _check_references((*calls["estimators"], *calls["robustness"]))
    needs_panel = any(c.name not in CASE_LEVEL for c in (*calls["estimators"], *calls["robustness"]))
    if needs_panel and document.design is None:
        raise PlanError("plan has no [design] table; add one (see the schema in docs/cli.md).")
    folders = bases(source)
    data = _data(document.data.model_dump(exclude_none=True), folders, allow_outside)
    design = document.design.roles() if document.design is not None else {}
    for req in ("unit", "time", "outcome") if needs_panel else ():
        if req not in design:
            raise PlanError(f'plan [design] needs {req} = "<column>".')
    name = document.plan.name or (source.stem if source is not None else "plan")
    if not LABEL.match(name):
        raise PlanError(f"plan key plan.name = {name!r} must be letters, digits, '_', '-' or '.'.")
    outputs = document.outputs
    return Plan(
        name=name,
        title=document.plan.title or f"Analysis plan {name}",
        description=document.plan.description,
        data=data,
        design=design,
        estimators=calls["estimators"],
        robustness=calls["robustness"],
        out=check_path(Path(outputs.out or f"outputs/{name}"), "outputs", folders, allow_outside),
        seed=outputs.seed,
        suppress_below=outputs.suppress_below,
        source=source,
        allow_outside_paths=allow_outside,
    )


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file.

    Raises
    ------
    PlanError
        The file is missing, not valid TOML, or breaks the schema or the path rules.
    LimitError
        The file, an option or the number of entries is above decrimkit's limits (docs/cli.md).
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
