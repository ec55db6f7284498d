"""Quick study runs shared by tests/test_determinism.py and tests/test_disclosure.py.

Each study in ``decrimkit.studies.STUDIES`` is run at most twice per test session (the study test files use
copy 0 too; every test that runs a study is in the xdist group "studies", so one worker holds the cache) (``--quick``, seed 0,
into pytest's temporary folder); the runs are cached here so both test files reuse them. A plain
module, not a conftest fixture, because the two test files sit beside the top-level conftest that
another engineer owns.
"""

from __future__ import annotations

from pathlib import Path

from decrimkit.studies import STUDIES

_RUNS: dict[tuple[str, int], Path] = {}


def quick_run(name: str, copy: int, base: Path) -> Path:
    """Output folder of quick run number ``copy`` (0 or 1) of study ``name``; runs it on first request."""
    key = (name, copy)
    if key not in _RUNS:
        study = STUDIES[name]
        out = base / f"{name.replace('-', '_')}_{copy}"
        kwargs = {}
        if study.pools:
            # pooling reads other studies' outputs; point it at an empty folder so a run never depends on
            # whatever an outputs/ folder in the working directory happens to hold
            kwargs["studies_root"] = base / "no_study_outputs"
            kwargs["studies_root"].mkdir(parents=True, exist_ok=True)
        _RUNS[key] = Path(study.runner()(out, seed=0, quick=True, **kwargs))
    return _RUNS[key]


def shared_base(tmp_path_factory) -> Path:
    """The one folder every test file's quick runs go to (tests using it share an xdist group)."""
    return tmp_path_factory.getbasetemp() / "study_runs"
