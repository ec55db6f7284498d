"""Users' files are safe: the output writer owns only what it wrote, writes atomically, one writer at a time.

Each test builds a real folder (foreign files, symbolic links, forged manifests, stale locks, a run
killed while writing) and checks the error type, its message and what is on disk afterwards.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from decrimkit.errors import DecrimkitError, OutputFolderError, OutputLockedError
from decrimkit.reporting import Report
from decrimkit.reporting import output as output_mod
from decrimkit.reporting.output import LOCK, MANIFEST, output_lock, owned_files


def report(out, table="t", value=1.5):
    rep = Report("demo", out=out, seed=0, command="decrimkit test")
    rep.add_result("att", estimate=value)
    rep.add_table(table, pd.DataFrame({"x": [value, 2.5]}), count_columns=())
    return rep


def snapshot(folder):
    """Every file under ``folder`` (links not followed) -> bytes; symbolic links -> their target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, folder)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as fh:
                    out[rel] = fh.read()
    return out


def test_a_foreign_non_empty_folder_is_refused_and_left_alone(tmp_path):
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "mine.csv").write_text("a,b\n1,2\n")
    (tmp_path / "report.md").write_text("my own report")
    before = snapshot(tmp_path)
    with pytest.raises(OutputFolderError, match=r"not empty and was not written by decrimkit") as err:
        report(tmp_path).write()
    assert "report.md, tables" in str(err.value) and "--out" in str(err.value)
    assert isinstance(err.value, DecrimkitError)
    assert snapshot(tmp_path) == before  # nothing written, nothing removed, no lock or staging left


def test_an_empty_or_new_folder_is_taken(tmp_path):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        written = report(out).write()
        assert written == out.resolve()
        files = owned_files(out)
        assert set(files) == {"results.json", "provenance.json", "report.md", "report.html"} | {
            f"tables/t.{e}" for e in ("csv", "md", "tex")
        }
        assert not (out / LOCK).exists() and not list(out.glob(".decrimkit-staging-*"))


def test_users_files_beside_outputs_survive_reruns(tmp_path):
    out = report(tmp_path / "o", table="first").write()
    (out / "notes.txt").write_text("kept")
    (out / "tables" / "my_extra.csv").write_text("kept too")
    report(out, table="second").write()
    assert (out / "notes.txt").read_text() == "kept"
    assert (out / "tables" / "my_extra.csv").read_text() == "kept too"
    assert not (out / "tables" / "first.csv").exists()  # decrimkit's own stale output is removed
    assert (out / "tables" / "second.csv").exists()
    assert "my_extra.csv" not in json.dumps(owned_files(out))


def test_a_file_decrimkit_did_not_write_is_never_overwritten(tmp_path):
    out = report(tmp_path / "o", table="first").write()
    (out / "tables" / "second.csv").write_text("the user's own table")
    before = snapshot(out)
    with pytest.raises(OutputFolderError, match=r"tables/second.csv already exists .* decrimkit did not write it"):
        report(out, table="second").write()
    assert snapshot(out) == before


def test_an_edited_output_is_not_overwritten(tmp_path):
    out = report(tmp_path / "o").write()
    (out / "report.md").write_text("my annotations")
    before = snapshot(out)
    with pytest.raises(OutputFolderError, match=r"report.md in .* changed after decrimkit wrote it"):
        report(out, value=9.5).write()
    assert snapshot(out) == before
    # and an edited stale output is not deleted either
    out2 = report(tmp_path / "o2", table="old").write()
    (out2 / "tables" / "old.csv").write_text("edited")
    with pytest.raises(OutputFolderError, match="tables/old.csv"):
        report(out2, table="new").write()
    assert (out2 / "tables" / "old.csv").read_text() == "edited"


def test_a_symlinked_subfolder_pointing_outside_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "t.csv").write_text("precious")
    (outside / "old.csv").write_text("precious too")
    out = report(tmp_path / "o", table="old").write()
    # replace decrimkit's tables/ with a link to a folder outside, holding files of the same names
    for f in (out / "tables").iterdir():
        f.unlink()
    (out / "tables").rmdir()
    (out / "tables").symlink_to(outside, target_is_directory=True)
    before_out, before_outside = snapshot(out), snapshot(outside)
    with pytest.raises(OutputFolderError, match=r"tables is a symbolic link; decrimkit never writes through links"):
        report(out, table="t").write()
    assert snapshot(outside) == before_outside and snapshot(out) == before_out


def test_a_symlinked_output_file_is_refused(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = report(tmp_path / "o").write()
    (out / "report.md").unlink()
    (out / "report.md").symlink_to(victim)
    with pytest.raises(OutputFolderError, match="report.md is a symbolic link"):
        report(out).write()
    assert victim.read_text() == "precious" and (out / "report.md").is_symlink()


def test_a_forged_manifest_cannot_make_decrimkit_delete_outside(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "o"
    out.mkdir()
    for rel in ("../victim.txt", str(victim)):
        (out / MANIFEST).write_text(json.dumps({"format": 1, "files": {rel: "0" * 64}}))
        with pytest.raises(OutputFolderError, match="manifest .* is damaged or was not written by decrimkit"):
            report(out).write()
        assert victim.read_text() == "precious"
        assert sorted(p.name for p in out.iterdir()) == [MANIFEST]


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path):
    out = report(tmp_path / "o", value=1.5).write()
    before = snapshot(out)
    held, release = threading.Event(), threading.Event()

    def first_writer():
        with output_lock(out):
            held.set()
            release.wait(30)

    t = threading.Thread(target=first_writer)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(OutputLockedError, match=rf"another decrimkit run \(pid {os.getpid()}.*is writing to"):
            report(out, value=7.5).write()
        assert snapshot(out) == before | {LOCK: (out / LOCK).read_bytes()}
    finally:
        release.set()
        t.join()
    assert not (out / LOCK).exists()
    report(out, value=7.5).write()  # free again
    assert json.loads((out / "results.json").read_text())["results"][0]["estimate"] == 7.5


def test_a_stale_lock_of_a_dead_run_is_taken_over(tmp_path):
    out = report(tmp_path / "o").write()
    # a lock file left by a run killed with SIGKILL (no process holds the lock any more)
    (out / LOCK).write_text(json.dumps({"pid": 2**22 + 12345, "host": "here", "started": "2020-01-01T00:00:00"}))
    report(out, value=3.5).write()
    assert json.loads((out / "results.json").read_text())["results"][0]["estimate"] == 3.5
    assert not (out / LOCK).exists()


def test_a_commit_cut_short_is_finished_by_the_next_write(tmp_path, monkeypatch):
    out = report(tmp_path / "o", table="old").write()
    real = output_mod._apply_commit

    class PowerCut(BaseException):
        pass

    def crash(root):  # as if the process died right after the staging folder became the commit folder
        raise PowerCut("simulated power cut")

    monkeypatch.setattr(output_mod, "_apply_commit", crash)
    with pytest.raises(PowerCut, match="simulated power cut"):
        report(out, table="new", value=4.5).write()
    assert (out / ".decrimkit-commit" / "tables" / "new.csv").exists()
    monkeypatch.setattr(output_mod, "_apply_commit", real)
    output_mod._apply_commit(out)  # what the next write does first
    assert set(owned_files(out)) >= {"tables/new.csv"} and not (out / "tables" / "old.csv").exists()
    assert json.loads((out / "results.json").read_text())["results"][0]["estimate"] == 4.5
    assert not (out / ".decrimkit-commit").exists()


def test_an_output_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputFolderError, match="exists and is not a folder"):
        report(tmp_path / "f").write()
    assert (tmp_path / "f").read_text() == "x"


# ---------------------------------------------------------------------------------------------- plans
PLAN = """
[data]
{data}

[design]
unit = "countyreal"
time = "year"
outcome = "lemp"
cohort = "first.treat"

[[estimators]]
name = "did.twfe"
{options}

[outputs]
out = "outputs/run"
"""


def plan_text(data='dataset = "mpdta"', options=""):
    return PLAN.format(data=data, options=options)


def cli(capsys, *args):
    from decrimkit import cli as cli_mod

    code = cli_mod.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A plan folder ``proj`` (the current directory) and a folder ``outside`` beside it."""
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    proj.mkdir()
    outside.mkdir()
    monkeypatch.chdir(proj)
    return proj, outside


def test_a_plan_cannot_read_through_a_symlinked_data_folder(project, capsys):
    proj, outside = project
    (outside / "secret.csv").write_text("countyreal,year,lemp,first.treat\n1,2003,1.0,0\n")
    (proj / "data").symlink_to(outside, target_is_directory=True)
    (proj / "outputs").mkdir()
    (proj / "plan.toml").write_text(plan_text(data='path = "data/secret.csv"'))
    code, out, err = cli(capsys, "run", "plan.toml")
    assert code == 2 and out == ""
    assert err.startswith("error: PlanError: path 'data/secret.csv' resolves to")
    assert "outside the project's data/ folder" in err and "a data/ that is itself a link does not count" in err
    assert list((proj / "outputs").iterdir()) == []


def test_a_plan_cannot_write_through_a_symlinked_outputs_folder(project, capsys):
    proj, outside = project
    (proj / "data").mkdir()
    (proj / "outputs").symlink_to(outside, target_is_directory=True)
    (proj / "plan.toml").write_text(plan_text())
    code, _, err = cli(capsys, "run", "plan.toml", "--check")
    assert code == 2 and "error: PlanError: path 'outputs/run' resolves to" in err
    assert "outside the project's outputs/ folder" in err
    code, _, err = cli(capsys, "run", "plan.toml", "--out", "outputs/other")
    assert code == 2 and "outside the project's outputs/ folder" in err
    assert list(outside.iterdir()) == []  # nothing written outside


def test_a_plan_run_refuses_a_foreign_output_folder_before_any_work(project, capsys, monkeypatch):
    proj, _ = project
    (proj / "data").mkdir()
    (proj / "outputs" / "run").mkdir(parents=True)
    (proj / "outputs" / "run" / "results.json").write_text('{"mine": true}')
    (proj / "plan.toml").write_text(plan_text())
    from decrimkit.plan import EstimatorCall

    def no_work(self):  # the estimators must not even be imported
        raise AssertionError("the plan ran although its output folder is foreign")

    monkeypatch.setattr(EstimatorCall, "resolve", no_work)
    code, _, err = cli(capsys, "run", "plan.toml")
    assert code == 2 and err.startswith("error: OutputFolderError: output folder")
    assert "results.json" in err and "not written by decrimkit" in err
    assert (proj / "outputs" / "run" / "results.json").read_text() == '{"mine": true}'
    assert sorted(p.name for p in (proj / "outputs" / "run").iterdir()) == ["results.json"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (
            'options = { se_method = "wild", n_boot = 1000000000000 }',
            r"estimators\[0\]\.options\.n_boot = "
            r"1,000,000,000,000 is above decrimkit's limit of 1,000,000",
        ),
        ("options = { n_reps = 1000000000000 }", r"options\.n_reps = 1,000,000,000,000 is above"),
        ("options = { draws = 100000000 }", r"options\.draws = 100,000,000 is above decrimkit's limit of 100,000"),
    ],
)
def test_plan_replication_limits_are_checked_up_front(project, capsys, options, match):
    proj, _ = project
    (proj / "outputs").mkdir()
    (proj / "plan.toml").write_text(plan_text(options=options))
    code, out, err = cli(capsys, "run", "plan.toml", "--check")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: LimitError: plan key ") and __import__("re").search(match, err)
    assert list((proj / "outputs").iterdir()) == []


def test_plan_size_and_nesting_limits(project, capsys):
    from decrimkit.limits import MAX_PLAN_ENTRIES

    proj, _ = project
    (proj / "outputs").mkdir()
    many = plan_text() + '[[robustness]]\nname = "did.twfe"\n' * 20_000  # 0.6 MB
    (proj / "many.toml").write_text(many)
    code, _, err = cli(capsys, "run", "many.toml", "--check")
    assert code == 2 and f"plan has 20,000 [[robustness]] entries; the limit is {MAX_PLAN_ENTRIES}" in err
    (proj / "deep.toml").write_text(plan_text(options="options = { x = " + "[" * 5000 + "]" * 5000 + " }"))
    code, _, err = cli(capsys, "run", "deep.toml", "--check")
    assert code == 2 and "error: LimitError: plan file 'deep.toml' nests arrays or tables too deeply" in err
    assert "RecursionError" not in err
    (proj / "three.toml").write_text(plan_text(options="options = { x = [[[1]]] }"))
    code, _, err = cli(capsys, "run", "three.toml", "--check")
    assert code == 2 and "error: PlanError: plan key estimators[0].options.x must be" in err
    assert "lists nested at most 2 deep" in err
    (proj / "big.toml").write_text(plan_text() + "# " + "x" * 1_000_000 + "\n")
    code, _, err = cli(capsys, "run", "big.toml", "--check")
    assert code == 2 and "error: LimitError: plan file 'big.toml' is larger than 1,000,000 bytes" in err
    (proj / "wide.toml").write_text(plan_text(options="options = { x = [" + "1," * 20_000 + "] }"))
    code, _, err = cli(capsys, "run", "wide.toml", "--check")
    assert code == 2 and "options.x holds 20,000 items; the limit is 10,000" in err


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def recording_study(tmp_path, monkeypatch):
    """A stand-in study module (not a study) that records calls and writes a one-table report."""
    import textwrap

    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "tiny_study.py").write_text(
        textwrap.dedent("""
        import pandas as pd
        from decrimkit.reporting import Report
        calls = []
        def run(out="outputs/tiny", *, seed=0, quick=False):
            calls.append(str(out))
            rep = Report("tiny", out=out, seed=seed, command="test")
            rep.add_table("t", pd.DataFrame({"x": [1.5]}), count_columns=())
            return rep.write()
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    from decrimkit import studies

    monkeypatch.setitem(studies.STUDIES, "tiny", studies.Study("tiny", module="tiny_study"))
    import tiny_study

    tiny_study.calls.clear()
    return tiny_study


def test_study_refuses_a_foreign_out_folder_before_running(recording_study, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("three years of work")
    code, stdout, err = cli(capsys, "study", "tiny", "--out", str(out))
    assert code == 2 and stdout == "" and recording_study.calls == []
    assert err.startswith("error: OutputFolderError: output folder") and "thesis.tex" in err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]
    assert (out / "thesis.tex").read_text() == "three years of work"


def test_study_refuses_a_locked_out_folder(recording_study, tmp_path, capsys):
    out = tmp_path / "o"
    code, _, _ = cli(capsys, "study", "tiny", "--out", str(out))
    assert code == 0 and recording_study.calls == [str(out)]
    before = snapshot(out)
    held, release = threading.Event(), threading.Event()

    def other_run():
        with output_lock(out):
            held.set()
            release.wait(30)

    t = threading.Thread(target=other_run)
    t.start()
    try:
        assert held.wait(30)
        code, _, err = cli(capsys, "study", "tiny", "--out", str(out))
    finally:
        release.set()
        t.join()
    assert code == 2 and err.startswith("error: OutputLockedError: another decrimkit run (pid")
    assert recording_study.calls == [str(out)]  # the second run never started
    assert snapshot(out) == before


# ---------------------------------------------------------------------------------------------- kills, two writers
# A child process runs a tiny plan (TWFE on mpdta) through the command line. Its writer is slowed
# down at one point (fault injection, in the child only): "staging" stops after two staged files
# until killed, "commit" waits inside the commit until the signal was sent, "hold" waits for a file to appear
# before staging. The parent sends the signal once the child says it reached that point.
CHILD = r"""
import sys, time
from pathlib import Path
from decrimkit.reporting import output
plan, out, mode = sys.argv[1:4]
real_write, real_commit, n = output._write_file, output._apply_commit, [0]
def write_file(path, data):
    n[0] += 1
    if n[0] == 3 and mode in ("staging", "hold"):
        print("REACHED", flush=True)
        deadline = time.time() + 60
        while time.time() < deadline and not (mode == "hold" and Path("go").exists()):
            time.sleep(0.05)
    real_write(path, data)
def apply_commit(root):
    if mode == "commit":
        print("REACHED", flush=True)
        # inside the commit until the parent says its signal was sent (a fixed sleep let a slow parent's
        # signal arrive after the run, during interpreter shutdown, where it kills the process outright)
        deadline = time.time() + 60
        while time.time() < deadline and not Path(out + ".sent").exists():
            time.sleep(0.05)
    real_commit(root)
output._write_file, output._apply_commit = write_file, apply_commit
from decrimkit.cli import main
sys.exit(main(["run", plan, "--out", out]))
"""

KILL_PLAN = """
[plan]
name = "{label}"
[data]
dataset = "mpdta"
[design]
unit = "countyreal"
time = "year"
outcome = "lemp"
cohort = "first.treat"
[[estimators]]
name = "did.twfe"
label = "{label}"
"""


def _child(proj, plan, out, mode):
    import subprocess
    import sys

    env = dict(os.environ, DECRIMKIT_PROGRESS="0", JAX_PLATFORMS="cpu", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, plan, out, mode],
        cwd=proj,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(proc, word="REACHED", timeout=120):
    import select
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == word:
                return
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"child never reached the write phase: {proc.stderr.read()}")


def _assert_complete(folder, expected_files):
    """The folder holds exactly one complete run: its manifest's files, all intact, nothing half-written."""
    files = owned_files(folder)
    assert set(files) == set(expected_files)
    on_disk = {k for k, v in snapshot(folder).items() if isinstance(v, bytes)}
    assert on_disk == set(files) | {MANIFEST}  # no lock, staging or commit folder left, no stray file
    import hashlib

    for rel, sha in files.items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == sha, rel


@pytest.fixture(scope="module")
def kill_project(tmp_path_factory):
    from decrimkit.plan import load_plan

    proj = tmp_path_factory.mktemp("killproj")
    (proj / "outputs").mkdir()
    for label in ("before", "after"):
        (proj / f"{label}.toml").write_text(KILL_PLAN.format(label=label))
    cwd = os.getcwd()
    os.chdir(proj)
    try:
        prev = load_plan(proj / "before.toml").run(out=proj / "outputs" / "previous")
        new = load_plan(proj / "after.toml").run(out=proj / "outputs" / "reference_new")
    finally:
        os.chdir(cwd)
    return proj, prev, new


@pytest.mark.slow  # child processes: about 10 s on an idle 2-core machine
def test_a_run_killed_while_writing_leaves_complete_previous_or_complete_new_outputs(kill_project):
    import shutil
    import signal

    proj, prev, new = kill_project
    prev_snapshot = snapshot(prev)
    cases = [(sig, mode) for sig in (signal.SIGINT, signal.SIGTERM) for mode in ("staging", "commit")]
    children = []
    for sig, mode in cases:
        out = proj / "outputs" / f"kill_{sig.name}_{mode}"
        shutil.copytree(prev, out)  # the previous run's outputs, manifest included
        children.append((sig, mode, out, _child(proj, "after.toml", str(out), mode)))
    for sig, _, out, proc in children:
        _wait_for(proc)
        proc.send_signal(sig)
        Path(f"{out}.sent").write_text("")  # a child held inside its commit may now finish it
    for sig, mode, out, proc in children:
        _, err = proc.communicate(timeout=120)
        expected_code = 130 if sig == signal.SIGINT else 128 + signal.SIGTERM
        assert proc.returncode == expected_code, (sig.name, mode, proc.returncode, err)
        assert "Traceback" not in err, err
        if mode == "staging":  # killed before the commit: the previous outputs, byte for byte
            assert snapshot(out) == prev_snapshot, (sig.name, mode)
        else:  # killed during the commit: the signal waited, the new outputs are complete
            _assert_complete(out, owned_files(new))
            assert (out / "results.json").read_bytes() == (new / "results.json").read_bytes()
            assert not (out / "tables" / "before.csv").exists() and (out / "tables" / "after.csv").exists()


@pytest.mark.slow  # child processes: about 10 s on an idle 2-core machine
def test_two_writers_on_one_folder_the_second_is_refused(kill_project):
    proj, prev, new = kill_project
    out = proj / "outputs" / "shared"
    first = _child(proj, "after.toml", str(out), "hold")
    try:
        _wait_for(first)  # the first run is writing (its lock is held since the run started)
        second = _child(proj, "before.toml", str(out), "none")
        _, err2 = second.communicate(timeout=120)
    finally:
        (proj / "go").write_text("")
    _, err1 = first.communicate(timeout=120)
    (proj / "go").unlink()
    assert second.returncode == 2 and err2.count("\n") == 1, err2
    assert err2.startswith(f"error: OutputLockedError: another decrimkit run (pid {first.pid} on ")
    assert "wait for it to finish or choose another output folder" in err2
    assert first.returncode == 0, err1
    _assert_complete(out, owned_files(new))  # the first run's outputs, complete; nothing of the second
    assert (out / "results.json").read_bytes() == (new / "results.json").read_bytes()


def test_a_file_where_decrimkit_needs_a_folder_is_refused_before_the_commit(tmp_path):
    out = report(tmp_path / "o", table="first").write()
    for f in (out / "tables").iterdir():  # the user replaced decrimkit's tables/ folder by a file
        f.unlink()
    (out / "tables").rmdir()
    (out / "tables").write_text("my notes, not a folder")
    before = snapshot(out)
    with pytest.raises(OutputFolderError, match=r"tables already exists in .* decrimkit did not write it"):
        report(out, table="second").write()
    assert snapshot(out) == before
