"""The decrimkit console script: exit codes, one-line errors, dispatch to studies, data commands."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import decrimkit
from decrimkit import cli
from decrimkit.errors import DataError


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"decrimkit {decrimkit.__version__}"


def test_data_list_and_describe(capsys):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "mpdta" in out and "policy_registry" in out
    code, out, _ = run(capsys, "data", "describe", "mpdta")
    assert code == 0 and "mpdta.csv" in out and "2500 rows" in out and "sha256" in out
    code, out, _ = run(capsys, "data", "describe", "mpdta", "--provenance")
    assert code == 0 and out.startswith("# mpdta")


def test_data_describe_lists_columns_with_dtypes_and_meanings(capsys):
    code, out, _ = run(capsys, "data", "describe", "mpdta")
    assert code == 0 and "columns of mpdta.csv" in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "columns of" in line) + 1
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[start:] if line.startswith("    ")}
    assert list(rows) == ["year", "countyreal", "lpop", "lemp", "first.treat", "treat"]  # every column, in order
    assert rows["lemp"] == ["float64", "log teen employment (outcome)"]  # from mpdta's PROVENANCE.md
    assert rows["year"] == ["int64"]  # not described there: no guessed text
    # another file of the dataset, and a table-style PROVENANCE.md
    code, out, _ = run(capsys, "data", "describe", "cdc_wonder_county_overdose")
    assert code == 0 and "fips" in out and "county FIPS (state + county), as in the WONDER export" in out
    code, out, _ = run(capsys, "data", "describe", "mpdta", "--file", "mpdta_csdid.csv")
    assert code == 0 and "columns of mpdta_csdid.csv" in out
    code, out, err = run(capsys, "data", "describe", "mpdta", "--file", "nope.csv")
    assert code == 2 and out == "" and "has no file 'nope.csv'; its files are: mpdta.csv, mpdta_csdid.csv" in err


def test_dataset_columns_api():
    from decrimkit.datasets import load_dataset
    from decrimkit.datasets.columns import dataset_columns

    cols = dataset_columns("ehec")
    frame = load_dataset("ehec")
    assert cols["column"].tolist() == [str(c) for c in frame.columns]
    assert cols["dtype"].tolist() == [str(t) for t in frame.dtypes]
    assert (cols["description"] != "").all() and "**" not in "".join(cols["description"])


def test_study_list_describes_each_study(capsys):
    from decrimkit.studies import STUDIES

    code, out, _ = run(capsys, "study", "--list")
    lines = {line.split()[0]: line for line in out.splitlines()[:-1]}
    assert code == 0 and sorted(lines) == sorted(STUDIES)
    assert "Oregon Measure 110" in lines["oregon"] and "overdose deaths" in lines["oregon"]
    assert "Baltimore City 2020 non-prosecution of drug possession" in lines["baltimore"]
    assert "Suffolk County" in lines["suffolk"] and "Four-policy-models study" in lines["policy-models"]
    assert out.splitlines()[-1].startswith("run one with: decrimkit study NAME")


def test_bad_input_exits_2_with_one_line(capsys):
    code, out, err = run(capsys, "data", "describe", "nope")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: DataError: no bundled dataset named 'nope'")
    assert "Traceback" not in err


def test_debug_shows_the_exception(capsys):
    with pytest.raises(DataError):
        cli.main(["--debug", "data", "describe", "nope"])


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli.main(["study", "baltimore", "--seed", "abc"])
    assert exc.value.code == 2


def test_unknown_study_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["study", "atlantis"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "invalid choice: 'atlantis'" in err and "'policy-models'" in err


def test_study_dispatch_passes_out_seed_quick(capsys, monkeypatch, tmp_path):
    # a stand-in module on sys.path that records how the CLI called run(); it is not a study
    (tmp_path / "recording_study.py").write_text(
        textwrap.dedent("""
        calls = []
        def run(out="outputs/x", *, seed=0, quick=False):
            calls.append((str(out), seed, quick))
            return out
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from decrimkit import studies

    monkeypatch.setitem(studies.STUDIES, "recording", studies.Study("recording", module="recording_study"))
    code, out, _ = run(capsys, "study", "recording", "--out", str(tmp_path / "o"), "--seed", "5", "--quick")
    import recording_study

    assert code == 0 and recording_study.calls == [(str(tmp_path / "o"), 5, True)]
    assert "outputs written to" in out


def test_console_script_module_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "decrimkit.cli", "data", "describe", "nope"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: DataError:") and "Traceback" not in proc.stderr


def test_run_missing_plan_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "run", str(tmp_path / "absent.toml"))
    assert code == 2 and "error: PlanError: cannot read plan file" in err


def test_progress_bar_respects_environment_and_disable(capsys, monkeypatch):
    from decrimkit import progress
    from decrimkit.progress import progress_enabled, stages, track

    monkeypatch.setenv("DECRIMKIT_PROGRESS", "0")
    assert list(track(range(4), "quiet")) == [0, 1, 2, 3]
    with stages("quiet study", total=2) as step:
        step("one")
        step("two")
    assert not progress_enabled() and capsys.readouterr().err == ""
    monkeypatch.setenv("DECRIMKIT_PROGRESS", "1")
    assert progress_enabled() and not progress_enabled(disable=True)
    assert list(track(iter(range(3)), "fast loop", total=3)) == [0, 1, 2]
    assert capsys.readouterr().err == ""  # a loop shorter than progress.DELAY prints nothing
    monkeypatch.setattr(progress, "DELAY", 0.0)
    assert list(track(iter(range(3)), "bootstrap draws", total=3)) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "bootstrap draws" in err and "3/3" in err
    with stages("study demo", total=2) as step:
        step("models")
        step("report")
    err = capsys.readouterr().err
    assert "study demo" in err and "models" in err and "2/2 stages" in err and "done" in err
    monkeypatch.delenv("DECRIMKIT_PROGRESS")
    assert not progress_enabled()  # captured stderr is not a terminal


def test_third_party_warnings_and_logs_hidden_unless_debug(capsys, caplog, monkeypatch):
    import logging
    import warnings

    from decrimkit.errors import ConvergenceWarning

    def noisy(args):
        warnings.warn("PyTensor could not link to a BLAS installation.", UserWarning, stacklevel=1)
        warnings.warn("ArviZ is undergoing a major refactor", FutureWarning, stacklevel=1)
        logging.getLogger("pytensor.tensor.blas").warning("Using NumPy C-API based implementation for BLAS")
        warnings.warn("chain 2 did not converge", ConvergenceWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(cli, "_cmd_data", noisy)
    # importing PyTensor (an earlier test may have) sets its logger to WARNING: compare with the level before
    level_before = logging.getLogger("pytensor").level
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code, _, err = run(capsys, "data", "list")
    assert code == 0 and not [r for r in caplog.records if r.name.startswith("pytensor")]
    assert [type(w.message) for w in seen] == [ConvergenceWarning]  # decrimkit's own warning still shows
    assert logging.getLogger("pytensor").level == level_before  # logger levels restored after the command
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        code, _, err = run(capsys, "--debug", "data", "list")
    assert code == 0 and [r.name for r in caplog.records] == ["pytensor.tensor.blas"]
    assert [type(w.message) for w in seen] == [UserWarning, FutureWarning, ConvergenceWarning]
