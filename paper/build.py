"""Build the manuscript (or a per-study grant report) from the study outputs.

    outputs/<study>/results.json, provenance.json, figures/*.png
        -> paper/build/values.json      every number the manuscript prints, already formatted
        -> paper/main.typ (Typst)       reads values.json; no number is typed by hand
        -> paper/build/decrimkit-evaluations.pdf

``python paper/build.py --format report --study baltimore`` builds the plain-language grant report
``paper/build/report-baltimore.pdf`` from ``paper/report.typ`` instead.

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

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "paper"
BUILD = PAPER / "build"
STUDIES = ("baltimore", "suffolk", "oregon", "policy-models")
KEY_PATTERN = re.compile(r'val\("([^"]+)"\)')

# Study tables the manuscript prints whole (robustness checks, pooled posteriors, power), by file and
# columns. Numbers are formatted here like every other value; a listed column that the study no longer
# writes stops the build, a table whose study has not run is left out with a sentence in the PDF.
PAPER_TABLES: dict[tuple[str, str], tuple[str, ...]] = {
    ("baltimore", "robustness"): ("run", "rate_ratio", "rate_ratio_low", "rate_ratio_high", "averted"),
    ("oregon", "robustness"): ("check", "what changes", "estimate", "pre_rmspe", "donors"),
    ("policy-models", "posterior_effects"): ("source", "level", "label", "mean", "hdi_low", "hdi_high",
                                             "p_negative", "r_hat"),
    ("policy-models", "mde"): ("model", "estimator", "adopters", "reps", "size", "mean_coverage", "mde_log"),
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
        if r.get("n") is not None:
            out[f"{base}.n"] = fmt_number(int(r["n"]))
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
                "estimate": fmt_number(r.get("estimate")),
                "ci": values.get(f"{study}.{r['name']}.ci", ""),
                "p": fmt_p(r.get("p_value")),
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


def check_keys(source: Path, values: dict[str, str]) -> None:
    wanted = set(KEY_PATTERN.findall(_code(source)))
    for inc in PAPER.glob("*.typ"):
        wanted |= set(KEY_PATTERN.findall(_code(inc)))
    missing = sorted(k for k in wanted if k not in values)
    if missing:
        raise SystemExit(
            "paper/build.py: the manuscript asks for values the study outputs do not have:\n  "
            + "\n  ".join(missing)
            + "\nRun the studies (make studies) or fix the key names."
        )


def build(fmt: str = "paper", study: str | None = None, outputs: Path | None = None) -> Path:
    import typst

    outputs = outputs or ROOT / "outputs"
    BUILD.mkdir(parents=True, exist_ok=True)
    data = collect(outputs)
    if study is not None:
        data["values"]["report.study"] = study
    (BUILD / "values.json").write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    if fmt == "paper":
        source, target = PAPER / "main.typ", BUILD / "decrimkit-evaluations.pdf"
    else:
        if study not in STUDIES:
            raise SystemExit(f"paper/build.py: --study must be one of {', '.join(STUDIES)}")
        if study not in data["tables"]:
            raise SystemExit(f"paper/build.py: outputs/{study}/results.json is missing; run make study-{study}")
        source, target = PAPER / "report.typ", BUILD / f"report-{study}.pdf"
    check_keys(source, data["values"])
    typst.compile(str(source), output=str(target), root=str(ROOT),
                  sys_inputs={"study": study or ""})
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--format", choices=("paper", "report"), default="paper")
    ap.add_argument("--study", default=None)
    ap.add_argument("--outputs", type=Path, default=None)
    args = ap.parse_args(argv)
    target = build(args.format, args.study, args.outputs)
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
