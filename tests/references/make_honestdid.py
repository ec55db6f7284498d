"""Reference values from the Python ``honestdid`` package for the Rambachan-Roth sensitivity tests.

``honestdid`` cannot be installed in the project environment (it pulls torch), so its values are
generated here, in a separate environment, and committed as JSON. Two steps:

1. ``input`` (project environment, needs decrimkit): the event study of the HonestDiD README's
   Medicaid example, fitted with ``did.event_study`` on the bundled ``ehec`` data (years before 2016,
   states expanding in 2014 or never; reference year 2013, standard errors clustered by state). Writes
   ``honestdid_input.json``: event times, ``betahat``, ``sigma``, ``numPrePeriods``, ``numPostPeriods``::

       python tests/references/make_honestdid.py input

2. ``reference`` (default; a scratch environment with honestdid, no decrimkit needed): reads
   ``honestdid_input.json`` and writes ``honestdid_ehec.json`` with ``createSensitivityResults``
   (Delta^SD, method ``"FLCI"``, grid ``M``) and ``createSensitivityResults_relativeMagnitudes``
   (Delta^RM, method ``"C-LF"``, the default, grid ``Mbar``, on a 401-point theta grid; the
   ``"Conditional"`` method is left out for run time: about 2.5 min per Mbar on the default grid), the
   ``constructOriginalCS`` interval, and the package versions (about 4 min in all). Environment set-up (CPU torch first,
   so that pip does not fetch a CUDA build)::

       python3 -m venv ~/.venvs/honestdid
       ~/.venvs/honestdid/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
       ~/.venvs/honestdid/bin/pip install honestdid 'numpy<2.4' pandas scipy
       ~/.venvs/honestdid/bin/python tests/references/make_honestdid.py

3. ``conditional`` (the same scratch environment): adds honestdid's ``"Conditional"`` relative-magnitude
   intervals (no hybrid first stage; deterministic) on the same theta grid to ``honestdid_ehec.json``,
   and recomputes ``"C-LF"`` to check that the stored values are reproduced. The relative-magnitude code
   path of honestdid uses NumPy and SciPy only, so where no torch wheel can be installed (the CPU wheel
   index unreachable), this step runs honestdid with an empty stand-in ``torch`` module (and ``cvxpy``
   only if absent); the versions actually used are stored under ``conditional_versions``. The committed
   ``"Conditional"`` values were made with the real torch 2.13.0+cpu (no stand-in; about 23 min on a
   shared 2-core machine), and the stored ``"C-LF"`` values were reproduced exactly::

       ~/.venvs/honestdid/bin/pip install --no-deps honestdid==0.1.1
       ~/.venvs/honestdid/bin/pip install 'numpy<2.4' scipy pandas sympy cvxpy
       ~/.venvs/honestdid/bin/python tests/references/make_honestdid.py conditional

The committed values were made with honestdid 0.1.1 (torch 2.13.0+cpu, cvxpy 1.9.3, numpy 2.3.5,
scipy 1.17, pandas 3.1). honestdid 0.1.1 needs ``numpy<2.4``: with numpy 2.4 its relative-magnitude
test fails (``float()`` of a one-element 2-d array, ``core.py`` line 1021). ``honestdid`` has no pure
least-favourable ("LF") option for relative magnitudes (only the conditional test and its LF hybrid),
so none is stored.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
INPUT = HERE / "honestdid_input.json"
OUTPUT = HERE / "honestdid_ehec.json"

M_GRID = [0.0, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05]  # the README's Mvec (0 to 0.05) plus 0.005
MBAR_GRID = [0.5, 1.0, 1.5, 2.0]  # the README's Mbarvec
# honestdid inverts the relative-magnitude test on a theta grid (default 1000 points on +-20 sd, about
# 150 s per Mbar here); a 401-point grid on [-0.05, 0.15] (step 0.0005) covers every interval
RM_GRID = {"gridPoints": 401, "grid_lb": -0.05, "grid_ub": 0.15}
ALPHA = 0.05


def make_input() -> None:
    """Fit the README's event study with decrimkit and store betahat/sigma."""
    from decrimkit import Panel
    from decrimkit.datasets import load_dataset
    from decrimkit.estimators import did

    df = load_dataset("ehec")
    sub = df[(df["year"] < 2016) & (df["yexp2"].isna() | (df["yexp2"] == 2014))]
    panel = Panel.from_frame(sub, unit="stfips", time="year", outcome="dins", cohort="yexp2")
    es = did.event_study(panel)  # reference -1 (2013), cluster by state, no binning
    times = [int(t) for t in es.label]
    payload = {
        "description": (
            "HonestDiD README Medicaid example: ehec, year < 2016, yexp2 in {2014, never}; "
            "decrimkit did.event_study(panel), reference -1, CR1 clustered by stfips"
        ),
        "decrimkit_call": (
            "did.event_study(Panel.from_frame(sub, unit='stfips', time='year', outcome='dins', cohort='yexp2'))"
        ),
        "event_times": times,
        "betahat": [float(b) for b in es.estimate],
        "sigma": [[float(v) for v in row] for row in es.vcov],
        "numPrePeriods": sum(t < 0 for t in times),
        "numPostPeriods": sum(t >= 0 for t in times),
    }
    INPUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {INPUT.name}")


def _scalar(x) -> float:
    """honestdid returns some bounds as one-element arrays."""
    import numpy as np

    return float(np.ravel(np.asarray(x, dtype=float))[0])


def _records(frame, grid_name: str) -> list[dict]:
    return [
        {grid_name: _scalar(row[grid_name]), "lb": _scalar(row["lb"]), "ub": _scalar(row["ub"])}
        for _, row in frame.iterrows()
    ]


def make_reference() -> None:
    """Run honestdid on the stored input and write its intervals."""
    import honestdid
    import numpy as np

    inp = json.loads(INPUT.read_text())
    beta = np.asarray(inp["betahat"])
    sigma = np.asarray(inp["sigma"])
    n_pre, n_post = inp["numPrePeriods"], inp["numPostPeriods"]
    common = dict(betahat=beta, sigma=sigma, numPrePeriods=n_pre, numPostPeriods=n_post, alpha=ALPHA)

    sd = honestdid.createSensitivityResults(**common, method="FLCI", Mvec=M_GRID)
    rm = {
        method: honestdid.createSensitivityResults_relativeMagnitudes(
            **common, method=method, Mbarvec=MBAR_GRID, **RM_GRID
        )
        for method in ("C-LF",)
    }
    orig = honestdid.constructOriginalCS(beta, sigma, n_pre, n_post, alpha=ALPHA)
    versions = {pkg: metadata.version(pkg) for pkg in ("honestdid", "torch", "cvxpy", "numpy", "scipy", "pandas")}
    payload = {
        "peer": "honestdid (PyPI)",
        "versions": versions,
        "input": INPUT.name,
        "alpha": ALPHA,
        "l_vec": "default (first post period)",
        "original": {"lb": _scalar(orig["lb"].iloc[0]), "ub": _scalar(orig["ub"].iloc[0])},
        "smoothness_flci": _records(sd, "M"),
        "relative_magnitude": {method: _records(frame, "Mbar") for method, frame in rm.items()},
        # honestdid's relative-magnitude bounds are the extreme accepted points of the theta grid:
        # each bound is exact only to one grid step
        "rm_grid": RM_GRID,
        "rm_grid_step": (RM_GRID["grid_ub"] - RM_GRID["grid_lb"]) / (RM_GRID["gridPoints"] - 1),
    }
    OUTPUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {OUTPUT.name}")


def _import_honestdid_rm():
    """honestdid for its relative-magnitude functions; an empty stand-in torch module if torch is absent."""
    import importlib.util
    import types

    stubs = []
    if importlib.util.find_spec("torch") is None:
        torch = types.ModuleType("torch")
        torch.set_default_dtype = lambda *args: None
        torch.float64 = None
        torch.Tensor = type("Tensor", (), {})
        sys.modules["torch"] = torch
        stubs.append("torch")
    import honestdid

    return honestdid, stubs


def make_conditional() -> None:
    """Add honestdid's "Conditional" relative-magnitude intervals (and recheck "C-LF") to the stored JSON."""
    import numpy as np

    honestdid, stubs = _import_honestdid_rm()
    inp = json.loads(INPUT.read_text())
    payload = json.loads(OUTPUT.read_text())
    common = dict(
        betahat=np.asarray(inp["betahat"]),
        sigma=np.asarray(inp["sigma"]),
        numPrePeriods=inp["numPrePeriods"],
        numPostPeriods=inp["numPostPeriods"],
        alpha=ALPHA,
        Mbarvec=MBAR_GRID,
        **RM_GRID,
    )
    cond = _records(honestdid.createSensitivityResults_relativeMagnitudes(**common, method="Conditional"), "Mbar")
    clf = _records(honestdid.createSensitivityResults_relativeMagnitudes(**common, method="C-LF"), "Mbar")
    if clf != payload["relative_magnitude"]["C-LF"]:
        raise SystemExit(f"C-LF not reproduced: {clf} vs {payload['relative_magnitude']['C-LF']}")
    payload["relative_magnitude"]["Conditional"] = cond
    payload["conditional_versions"] = {
        **{
            pkg: metadata.version(pkg)
            for pkg in ("honestdid", "torch", "cvxpy", "numpy", "scipy", "pandas", "sympy")
            if pkg not in stubs
        },
        "stand_in_modules": stubs,
        "c_lf_reproduced": True,
    }
    OUTPUT.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {OUTPUT.name}")


if __name__ == "__main__":
    step = sys.argv[1] if len(sys.argv) > 1 else "reference"
    if step == "input":
        make_input()
    elif step == "reference":
        make_reference()
    elif step == "conditional":
        make_conditional()
    else:
        raise SystemExit("usage: make_honestdid.py [input|reference|conditional]")
