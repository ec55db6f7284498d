"""Build the manuscript (or a per-study grant report) from the study outputs.

    outputs/<study>/results.json, provenance.json, figures/*.png
        -> paper/build/values.json      every number the manuscript prints, already formatted
        -> paper/main.typ (Typst)       reads values.json; no number is typed by hand
        -> paper/build/decrimkit-evaluations.pdf

``python paper/build.py --format report --study baltimore`` builds the plain-language grant report
``paper/build/report-baltimore.pdf`` from ``paper/report.typ`` instead, from the outputs that one study
has (``outputs/baltimore``; nothing is rerun, and ``--seed N`` checks they were made with seed N).
``--plan PLAN.toml`` does the same for an analysis plan's output folder (running the plan first only
when it has no outputs), and ``--outputs DIR`` for any folder a decrimkit ``Report`` wrote.

Every ``val("key")`` the Typst source asks for must exist in values.json; a missing key stops the build
with the list of missing keys (a study that did not run, or a renamed result), never a blank in the PDF.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from decrimkit.studies import STUDIES as REGISTERED
from decrimkit.studies.registry import paper_studies

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "paper"
BUILD = PAPER / "build"
KEY_PATTERN = re.compile(r'val\("([^"]+)"\)')

# The studies whose outputs the manuscript reads, and the study tables it prints whole (robustness
# checks, pooled posteriors, power) by file and columns: both from the study registry
# (decrimkit.studies.registry, each record's ``in_paper`` and ``paper_tables``). Numbers are formatted
# here like every other value; a listed column that the study no longer writes stops the build, a table
# whose study has not run is left out with a sentence in the PDF.
STUDIES: tuple[str, ...] = paper_studies()
PAPER_TABLES: dict[tuple[str, str], tuple[str, ...]] = {
    (name, table): columns for name, study in REGISTERED.items() for table, columns in study.paper_tables
}


def fmt_number(x: Any, digits: int = 3) -> str:
    """Format a number for prose: ``digits`` significant digits, no exponent for everyday sizes."""
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    x = float(x)
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag < -4:  # e.g. a pre-period RMSPE of 1e-13: an exact fit, shown as such
        return f"{x:.1e}".replace("-", "\u2212")
    if mag >= 4:
        return f"{x:,.0f}"
    decimals = max(0, digits - 1 - mag)
    text = f"{x:,.{decimals}f}"
    return text.replace("-", "\u2212")  # typographic minus


def fmt_p(p: Any) -> str:
    if p is None or not math.isfinite(float(p)):
        return "n/a"
    return "< 0.001" if p < 0.001 else fmt_number(p, 2)


def study_values(study: str, results: dict[str, Any], provenance: dict[str, Any] | None) -> dict[str, str]:
    """Flatten one study's results.json (and provenance.json) into ``study.name.field`` strings."""
    out: dict[str, str] = {f"{study}.seed": str(results.get("seed"))}
    for r in results.get("results", []):
        base = f"{study}.{r['name']}"
        out[f"{base}.estimate"] = fmt_number(r.get("estimate"))
        out[f"{base}.se"] = fmt_number(r.get("se"))
        ci = r.get("conf_int")
        if ci:
            lo, hi = fmt_number(ci[0]), fmt_number(ci[1])
            out[f"{base}.lo"], out[f"{base}.hi"] = lo, hi
            out[f"{base}.ci"] = f"[{lo}, {hi}]"
        out[f"{base}.p"] = fmt_p(r.get("p_value"))
        if isinstance(r.get("n"), int):
            out[f"{base}.n"] = fmt_number(int(r["n"]))
        elif r.get("n") is not None:  # a suppressed count ("(S)"): the paper shows the marker, never a number
            out[f"{base}.n"] = str(r["n"])
        out[f"{base}.unit"] = r.get("unit", "")
        out[f"{base}.method"] = r.get("method", "")
    if provenance:
        for d in provenance.get("datasets", []):
            files = d.get("files", {})
            items = files.items() if isinstance(files, dict) else [(f.get("name"), f.get("sha256")) for f in files]
            for fname, sha in items:
                out[f"{study}.data.{d['name']}.{fname}.sha256"] = str(sha)[:16]
        for pkg, ver in (provenance.get("packages") or {}).items():
            out[f"versions.{pkg}"] = str(ver)
        commit = provenance.get("git") or {}
        if isinstance(commit, dict) and commit.get("commit"):
            out["git.commit"] = str(commit["commit"])[:12]
    return out


def csv_table(path: Path, columns: tuple[str, ...]) -> dict[str, Any]:
    """A study table as formatted strings: ``{"header": [...], "rows": [[...], ...]}``."""
    import csv

    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    have = set(rows[0]) if rows else set(columns)
    missing = [c for c in columns if c not in have]
    if missing:
        raise SystemExit(f"paper/build.py: {path.name} has no column(s) {missing}; update PAPER_TABLES in paper/build.py")

    def cell(text: str) -> str:
        if re.fullmatch(r"-?\d+", text.strip()):
            return fmt_number(int(text))
        try:
            return fmt_number(float(text)) if text.strip() else ""
        except ValueError:
            return text

    return {"header": list(columns), "rows": [[cell(r[c] or "") for c in columns] for r in rows]}


def _not_converged(result: dict[str, Any]) -> bool:
    """A result whose MCMC failed the convergence gate (the study's note says so); the tables mark it."""
    return (result.get("note") or "").startswith("NOT CONVERGED")


def collect(outputs: Path) -> dict[str, Any]:
    """values.json content: formatted scalars in ``values``, raw result rows per study in ``tables``."""
    values: dict[str, str] = {}
    tables: dict[str, list[dict[str, Any]]] = {}
    figures: dict[str, list[str]] = {}
    csv_tables: dict[str, dict[str, Any]] = {}
    runs: dict[str, str] = {}
    for study in STUDIES:
        folder = outputs / study
        rfile = folder / "results.json"
        if not rfile.exists():
            continue
        results = json.loads(rfile.read_text(encoding="utf-8"))
        pfile = folder / "provenance.json"
        provenance = json.loads(pfile.read_text(encoding="utf-8")) if pfile.exists() else None
        values.update(study_values(study, results, provenance))
        runs[study] = "quick" if results.get("quick") else "full"
        for (name_study, table), columns in PAPER_TABLES.items():
            tfile = folder / "tables" / f"{table}.csv"
            if name_study == study and tfile.exists():
                csv_tables[f"{study}/{table}"] = csv_table(tfile, columns)
        tables[study] = [
            {
                "name": r["name"],
                "label": r.get("label") or _humanize(r["name"]),
                "estimate": fmt_number(r.get("estimate")),
                "ci": values.get(f"{study}.{r['name']}.ci", "\u2013"),
                "p": fmt_p(r.get("p_value")) if r.get("p_value") is not None else "\u2013",
                "unit": r.get("unit", ""),
                "method": r.get("method", "") + (" (NOT CONVERGED: not a result)" if _not_converged(r) else ""),
            }
            for r in results.get("results", [])
        ]
        figures[study] = sorted(
            str(p.relative_to(ROOT)) for p in (folder / "figures").glob("*.png")
        ) if (folder / "figures").exists() else []
    values.setdefault("git.commit", "not recorded")
    return {"values": values, "tables": tables, "figures": figures, "csv_tables": csv_tables, "runs": runs}


def _code(path: Path) -> str:
    """Typst source without line comments."""
    return "\n".join(line.split("//", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())


IMPORT_PATTERN = re.compile(r'#(?:import|include)\s+"([^"]+\.typ)"')


def check_keys(source: Path, values: dict[str, str]) -> None:
    """Stop when ``source``, or a file it imports, asks for a value that is not in values.json."""
    wanted: set[str] = set()
    todo, seen = [source], set()
    while todo:
        f = todo.pop()
        if f in seen or not f.exists():
            continue
        seen.add(f)
        code = _code(f)
        wanted |= set(KEY_PATTERN.findall(code))
        todo += [f.parent / name for name in IMPORT_PATTERN.findall(code)]
    missing = sorted(k for k in wanted if k not in values)
    if missing:
        raise SystemExit(
            "paper/build.py: the manuscript asks for values the study outputs do not have:\n  "
            + "\n  ".join(missing)
            + "\nRun the studies (make studies) or fix the key names."
        )


def _study_names() -> tuple[str, ...]:
    """Every study decrimkit has (its registry), for grant reports; the manuscript uses STUDIES."""
    return tuple(sorted(set(STUDIES) | set(REGISTERED)))


def _humanize(name: str) -> str:
    from decrimkit.reporting.entries import humanize

    return humanize(name)


def report_data(folder: Path, key: str) -> dict[str, Any]:
    """What the grant report (report.typ) shows of one output folder: title, seed, headline rows with human
    labels, notes and figures. A row without a p-value or interval shows a dash; its note says why."""
    rfile = folder / "results.json"
    results = json.loads(rfile.read_text(encoding="utf-8"))
    rows, notes = [], []
    for r in results.get("results", []):
        label = r.get("label") or _humanize(r["name"])
        ci = r.get("conf_int")
        shown = ci is not None and None not in ci
        p = r.get("p_value")
        rows.append({
            "name": r["name"],
            "label": label,
            "estimate": fmt_number(r.get("estimate")),
            "ci": f"[{fmt_number(ci[0])}, {fmt_number(ci[1])}]" if shown else "–",
            "p": fmt_p(p) if p is not None else "–",
            "unit": r.get("unit", ""),
            "method": r.get("method", "") + (" (NOT CONVERGED: not a result)" if _not_converged(r) else ""),
        })
        if r.get("note"):
            notes.append({"label": label, "note": r["note"]})
    # figures in the order of the headline results they belong to (a figure named <result>[.<step>].png)
    prefixes = list(dict.fromkeys(r["name"].split(".")[0] for r in results.get("results", [])))
    found = sorted((folder / "figures").glob("*.png")) if (folder / "figures").exists() else []

    def rank(p: Path) -> tuple[int, int, str]:
        head = p.stem.split(".")[0]
        return (prefixes.index(head) if head in prefixes else len(prefixes), p.stem.count("."), p.stem)

    figures = [str(p.resolve()) for p in sorted(found, key=rank)]
    return {
        "key": key,
        "kind": "study" if key in _study_names() else "plan",
        "study": str(results.get("study", key)),
        "title": str(results.get("title", key)),
        "seed": str(results.get("seed")),
        "quick": bool(results.get("quick")),
        "rows": rows,
        "notes": notes,
        "figures": figures,
        "folder": str(folder.resolve().relative_to(ROOT)) if folder.resolve().is_relative_to(ROOT) else folder.name,
    }


def build_report(folder: Path, key: str, seed: int | None = None) -> Path:
    """The grant report of one output folder (a study's or a plan's), from its files alone."""
    import typst

    rfile = folder / "results.json"
    if not rfile.exists():
        raise SystemExit(f"paper/build.py: {rfile} is missing; run the study or plan first")
    made_with = json.loads(rfile.read_text(encoding="utf-8")).get("seed")
    if seed is not None and made_with != seed:
        raise SystemExit(
            f"paper/build.py: {folder} was made with seed {made_with}, not {seed}; rerun it with --seed {seed} "
            f"(make study-{key} SEED={seed}) or build the report with SEED={made_with}"
        )
    BUILD.mkdir(parents=True, exist_ok=True)
    data = {"values": {}, "report": report_data(folder, key)}
    (BUILD / "values.json").write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    source, target = PAPER / "report.typ", BUILD / f"report-{key}.pdf"
    check_keys(source, data["values"])
    # root "/": figures are read by absolute path, so a plan's output folder may lie anywhere
    typst.compile(str(source), output=str(target), root="/", sys_inputs={"study": key})
    return target


def build(fmt: str = "paper", study: str | None = None, outputs: Path | None = None) -> Path:
    """The manuscript from every study output under ``outputs`` (``fmt="report"``: one study's grant report)."""
    import typst

    if fmt == "report":
        if study not in _study_names():
            raise SystemExit(f"paper/build.py: --study must be one of {', '.join(_study_names())}")
        return build_report((outputs or ROOT / "outputs") / study, study)

    outputs = outputs or ROOT / "outputs"
    BUILD.mkdir(parents=True, exist_ok=True)
    data = collect(outputs)
    (BUILD / "values.json").write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    source, target = PAPER / "main.typ", BUILD / "decrimkit-evaluations.pdf"
    check_keys(source, data["values"])
    typst.compile(str(source), output=str(target), root=str(ROOT))
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", choices=("paper", "report"), default="paper")
    ap.add_argument("--study", default=None, help="report: a study, from outputs/<study> (or --outputs/<study>)")
    ap.add_argument("--plan", type=Path, default=None, help="report: an analysis plan, from its output folder")
    ap.add_argument("--outputs", type=Path, default=None,
                    help="paper: the outputs root (default outputs/); report: the folder itself, with neither "
                         "--study nor --plan")
    ap.add_argument("--seed", type=int, default=None, help="report: refuse outputs made with another seed")
    args = ap.parse_args(argv)
    if args.format == "paper":
        target = build("paper", outputs=args.outputs)
    elif args.study is not None:
        known = _study_names()
        if args.study not in known:
            raise SystemExit(f"paper/build.py: --study must be one of {', '.join(known)}")
        folder = (args.outputs or ROOT / "outputs") / args.study
        target = build_report(folder, args.study, args.seed)
    elif args.plan is not None:
        from decrimkit.plan import load_plan

        plan = load_plan(args.plan)
        if not (plan.out / "results.json").exists():
            print(f"{plan.out} has no outputs yet: running the plan (decrimkit run {args.plan})")
            plan.run()
        target = build_report(plan.out, plan.name, args.seed)
    elif args.outputs is not None:
        target = build_report(args.outputs, args.outputs.resolve().name, args.seed)
    else:
        raise SystemExit("paper/build.py --format report needs --study NAME, --plan PLAN.toml or --outputs DIR")
    print(f"wrote {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
