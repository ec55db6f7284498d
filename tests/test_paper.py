"""The manuscript types no number by hand, and builds from whatever study outputs exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "paper"
PROSE = ("main.typ", "report.typ")  # lib.typ is code (helpers), not prose

# Numbers allowed in prose, with the reason: years of policies and data, the rate denominator, and the
# confidence level of every interval the studies report.
YEARS = re.compile(r"^(19[5-9]\d|20[0-4]\d)$")
ALLOWED = {"100,000": "rates are per 100,000 population", "95%": "the confidence level of every interval",
           "80%": "the conventional power level of the minimum detectable effect",
           "5%": "the level of the tests whose size the power analysis reports"}
NAMES = {"Measure 110": "the ballot measure's name", "COVID-19": "the disease's name",
         "12-month": "the name of the CDC indicator's window"}
LENGTH = re.compile(r"\d+(?:\.\d+)?(?:pt|in|em|mm|cm|fr)\b|\d+(?:\.\d+)?%(?=\s*[,)])")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?%?")


def prose_numbers(text: str) -> list[str]:
    """Numeric literals left after removing comments, math, strings, lengths and val() look-ups."""
    text = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    for name in NAMES:
        text = text.replace(name, " ")
    text = re.sub(r"\$[^$]*\$", " ", text)          # equations: constants belong to the math
    text = re.sub(r'val\("[^"]*"\)', " ", text)      # generated values
    text = re.sub(r'"[^"\n]*"', " ", text)           # string literals (keys, paths, numbering patterns)
    text = re.sub(r"@[\w-]+", " ", text)             # citation keys such as @agan2021
    text = LENGTH.sub(" ", text)                     # layout lengths in #set rules
    found = []
    for tok in NUMBER.findall(text):
        tok = tok.rstrip(",")
        if YEARS.match(tok) or tok in ALLOWED:
            continue
        found.append(tok)
    return found


@pytest.mark.parametrize("name", PROSE)
def test_manuscript_has_no_hand_typed_numbers(name):
    offending = prose_numbers((PAPER / name).read_text(encoding="utf-8"))
    assert offending == [], f"{name} types numbers by hand: {offending}; take them from values.json via val()"


def test_checker_catches_a_typed_number():
    # the checker itself must flag a number in prose, and leave years, equations and val() alone
    text = 'In 2021 deaths rose by 181 ($alpha_1 = 0$) or by #val("oregon.scm.estimate") per 100,000.'
    assert prose_numbers(text) == ["181"]


def _wanted() -> dict[str, set[str]]:
    """Every (study, result name) the manuscript asks for."""
    wanted: dict[str, set[str]] = {}
    for f in PAPER.glob("*.typ"):
        for key in re.findall(r'val\("([^"]+)"\)', f.read_text(encoding="utf-8")):
            parts = key.split(".")
            if len(parts) == 3:
                wanted.setdefault(parts[0], set()).add(parts[1])
    return wanted


def _fake_outputs(tmp: Path, estimate: float, seed: int) -> Path:
    """results.json files holding every result the manuscript asks for (made-up numbers, for the build only)."""
    wanted = _wanted()
    wanted.setdefault("baltimore", set()).add("cumulative_averted")
    for study, names in wanted.items():
        out = tmp / "outputs" / study
        out.mkdir(parents=True)
        results = [
            {"name": n, "estimate": estimate, "se": 10.0, "conf_int": [estimate - 20, estimate + 20],
             "p_value": 0.01, "n": 60, "method": "test", "unit": "units", "note": ""}
            for n in sorted(names)
        ]
        (out / "results.json").write_text(json.dumps({"study": study, "seed": seed, "results": results}),
                                          encoding="utf-8")
    return tmp / "outputs"


def test_values_change_with_the_outputs(tmp_path):
    """Different study numbers give a different values file without touching the manuscript."""
    sys.path.insert(0, str(PAPER))
    try:
        import build  # paper/build.py
    finally:
        sys.path.remove(str(PAPER))
    a = build.collect(_fake_outputs(tmp_path / "a", 1234.5, 0))
    b = build.collect(_fake_outputs(tmp_path / "b", 987.25, 1))
    assert a["values"]["baltimore.cumulative_averted.estimate"] == "1,234"
    assert b["values"]["baltimore.cumulative_averted.estimate"] == "987"
    assert a["values"]["baltimore.seed"] == "0" and b["values"]["baltimore.seed"] == "1"


def test_suppressed_n_is_shown_as_the_marker(tmp_path):
    """A headline n that the report suppressed ("(S)" in results.json) reaches the paper as the marker, not a number."""
    sys.path.insert(0, str(PAPER))
    try:
        import build  # paper/build.py
    finally:
        sys.path.remove(str(PAPER))
    results = {"seed": 0, "results": [{"name": "a", "estimate": 0.5, "n": "(S)"}, {"name": "b", "estimate": 1.0, "n": 811}]}
    values = build.study_values("s", results, None)
    assert values["s.a.n"] == "(S)" and values["s.b.n"] == "811"


def test_paper_compiles_from_existing_outputs(tmp_path):
    """build.py compiles the Typst source (with whatever outputs exist) into a PDF."""
    work = tmp_path / "repo"
    (work / "paper").mkdir(parents=True)
    for f in PAPER.glob("*.typ"):
        shutil.copy(f, work / "paper" / f.name)
    shutil.copy(PAPER / "refs.bib", work / "paper" / "refs.bib")
    shutil.copy(PAPER / "build.py", work / "paper" / "build.py")
    _fake_outputs(work, 443.0, 0)
    subprocess.run([sys.executable, str(work / "paper" / "build.py")], check=True, cwd=work,
                   capture_output=True, text=True)
    pdf = work / "paper" / "build" / "decrimkit-evaluations.pdf"
    assert pdf.exists() and pdf.read_bytes()[:4] == b"%PDF"
    values = json.loads((work / "paper" / "build" / "values.json").read_text())
    assert values["values"]["baltimore.cumulative_averted.ci"] == "[423, 463]"


def _copy_paper(work: Path) -> Path:
    """paper/ copied into a fresh project folder, so builds write there and read their own values.json."""
    (work / "paper").mkdir(parents=True)
    for f in [*PAPER.glob("*.typ"), PAPER / "build.py", PAPER / "refs.bib"]:
        shutil.copy(f, work / "paper" / f.name)
    return work


def _build(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(work / "paper" / "build.py"), *args], cwd=work, capture_output=True,
                          text=True, check=False)


def _one_output(folder: Path, study: str, seed: int = 0, label: bool = False) -> Path:
    """One output folder as a Report writes it: results.json (one row without p or interval) and a figure."""
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True)
    rows = [
        {"name": "cumulative_averted", "estimate": 443.0, "se": 10.0, "conf_int": [423.0, 463.0], "p_value": 0.0004,
         "n": 60, "method": "comparative ITS", "unit": "arrests", "note": ""},
        {"name": "scm_fl.att", "estimate": 0.98, "se": None, "conf_int": None, "p_value": None, "n": 330,
         "method": "synth.scm", "unit": "per 100,000", "note": "no interval: this method has no standard error"},
    ]
    if label:
        rows[1]["label"] = "Synthetic control [scm_fl]: average post-period effect"
    (folder / "results.json").write_text(
        json.dumps({"study": study, "title": f"Study {study}", "seed": seed, "quick": False, "results": rows}),
        encoding="utf-8",
    )
    (folder / "figures").mkdir()
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [1, 0])
    fig.savefig(folder / "figures" / "scm_fl.png")
    plt.close(fig)
    return folder


def _pdf_text(pdf: Path) -> str | None:
    if not shutil.which("pdftotext"):
        return None
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout


def test_grant_report_builds_from_one_study_alone(tmp_path):
    """Issue 19 part 5: a study's report needs only that study's outputs (not the keys main.typ asks of
    Oregon or Suffolk), shows human labels, and a dash (not "n/a") where the method gives no p or interval."""
    work = _copy_paper(tmp_path / "repo")
    _one_output(work / "outputs" / "baltimore", "baltimore", seed=3)
    proc = _build(work, "--format", "report", "--study", "baltimore", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    pdf = work / "paper" / "build" / "report-baltimore.pdf"
    assert pdf.read_bytes()[:4] == b"%PDF"
    report = json.loads((work / "paper" / "build" / "values.json").read_text())["report"]
    assert [r["label"] for r in report["rows"]] == ["Cumulative averted", "SCM fl: ATT"]
    assert report["rows"][0]["ci"] == "[423, 463]" and report["rows"][0]["p"] == "< 0.001"
    assert report["rows"][1]["ci"] == "\u2013" and report["rows"][1]["p"] == "\u2013"
    assert report["notes"] == [{"label": "SCM fl: ATT", "note": "no interval: this method has no standard error"}]
    assert report["figures"][0].endswith("scm_fl.png") and report["folder"] == "outputs/baltimore"
    text = _pdf_text(pdf)
    if text is not None:  # what a reader sees: the study's title and human labels, no "n/a"
        assert "Baltimore's non-prosecution" in text and "Cumulative averted" in text and "n/a" not in text
    wrong = _build(work, "--format", "report", "--study", "baltimore", "--seed", "0")
    assert wrong.returncode != 0 and "was made with seed 3, not 0" in wrong.stderr


def test_grant_report_of_a_plan_folder(tmp_path):
    work = _copy_paper(tmp_path / "repo")
    folder = _one_output(tmp_path / "elsewhere" / "plan_castle", "plan_castle", label=True)
    proc = _build(work, "--format", "report", "--outputs", str(folder))
    assert proc.returncode == 0, proc.stderr
    pdf = work / "paper" / "build" / "report-plan_castle.pdf"
    assert pdf.read_bytes()[:4] == b"%PDF"
    report = json.loads((work / "paper" / "build" / "values.json").read_text())["report"]
    assert report["rows"][1]["label"] == "Synthetic control [scm_fl]: average post-period effect"
    assert report["folder"] == "plan_castle"  # no machine path in the PDF
    text = _pdf_text(pdf)
    if text is not None:
        assert "Synthetic control [scm_fl]" in text and "analysis plan plan_castle" in text and "n/a" not in text
