"""Analysis plans: schema validation, path rules, allowlisted estimators, and a run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from decrimkit import plan as plan_mod
from decrimkit.errors import PlanError
from decrimkit.plan import load_plan

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "plan_mpdta.toml"

BASE = """
[data]
dataset = "mpdta"

[design]
unit = "countyreal"
time = "year"
outcome = "lemp"
cohort = "first.treat"

[[estimators]]
name = "did.twfe"
"""


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Run in an empty project folder with data/ and outputs/."""
    (tmp_path / "data").mkdir()
    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_example_plans_pass_check(here, capsys):
    """Every plan in docs/examples/ passes --check (options against signatures, data, panel)."""
    from decrimkit.cli import main

    for path in sorted(EXAMPLE.parent.glob("plan_*.toml")):
        if path.name == "plan_suffolk.toml":  # needs a partner's case file (tests/studies/test_suffolk.py)
            continue
        assert main(["run", str(path), "--check"]) == 0, capsys.readouterr().err
        assert "is valid" in capsys.readouterr().out


def test_example_plan_validates(here):
    plan = load_plan(EXAMPLE)
    assert plan.name == "plan_mpdta" and [c.name for c in plan.estimators] == ["did.twfe"]
    assert plan.out == (here / "outputs" / "plan_mpdta").resolve()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("surprise = 1\n", r"unknown top-level key\(s\) \['surprise'\]"),
        ("[outputs]\nformat = 'pdf'\n", r"unknown key outputs.format"),
        ("[outputs]\nseed = 'zero'\n", r"plan key outputs.seed must be int, got str"),
        ("[outputs]\nseed = true\n", r"plan key outputs.seed must be int, got bool"),
        ("[[robustness]]\nname = 'did.magic'\n", r"robustness\[0\].name = 'did.magic' is not an allowed estimator"),
        ("[[robustness]]\nname = 'did.twfe'\nlabel = 'x'\nfn = 'os.system'\n", r"unknown key robustness\[0\].fn"),
        (
            "[[robustness]]\nname = 'did.twfe'\nlabel = 'x'\noptions = { cluster = { a = { b = 1 } } }\n",
            r"robustness\[0\].options.cluster must be a string, number, boolean, a list of them .* or a table",
        ),
        ("[[robustness]]\nname = 'did.twfe'\n", r"estimator labels \['did.twfe'\] repeat"),
        ("[outputs]\nout = '../elsewhere'\n", r"outside the project's outputs/ folder"),
        ("[outputs]\nout = 'outputs/../../x'\n", r"outside the project's outputs/ folder"),
        ("allow_outside_paths = 'yes'\n", r"allow_outside_paths must be true or false"),
    ],
)
def test_schema_errors_name_the_key(here, extra, match):
    text = BASE + extra if not extra.startswith(("surprise", "allow")) else extra + BASE
    with pytest.raises(PlanError, match=match):
        load_plan(write(here, text))


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ('dataset = "mpdta"', 'dataset = "mpdta"\npath = "data/x.csv"', "exactly one of dataset"),
        ('dataset = "mpdta"', 'dataset = "nope"', r"data.dataset: no bundled dataset named 'nope'"),
        ('dataset = "mpdta"', 'dataset = "mpdta"\nfile = "other.csv"', "not a file of dataset 'mpdta'"),
        ('unit = "countyreal"\n', "", r"\[design\] needs unit"),
        ('cohort = "first.treat"', 'cohort = "first.treat"\ntreated = "treat"', "cohort or treated, not both"),
        ('cohort = "first.treat"', 'covariates = "lpop"', r"design.covariates must be list\[str\]"),
        ('[[estimators]]\nname = "did.twfe"\n', "", r"no \[\[estimators\]\] entry"),
    ],
)
def test_section_errors(here, old, new, match):
    assert old in BASE
    with pytest.raises(PlanError, match=match):
        load_plan(write(here, BASE.replace(old, new)))


def test_invalid_toml_and_missing_file(here):
    with pytest.raises(PlanError, match="is not valid TOML"):
        load_plan(write(here, "[data\ndataset = 1"))
    with pytest.raises(PlanError, match="cannot read plan file"):
        load_plan(here / "absent.toml")


def test_data_paths_must_stay_in_data(here, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "panel.csv"
    outside.write_text("a,b\n1,2\n")
    text = BASE.replace('dataset = "mpdta"', f'path = "{outside.as_posix()}"')
    with pytest.raises(PlanError, match=r"outside the project's data/ folder.*allow_outside_paths = true"):
        load_plan(write(here, text))
    plan = load_plan(write(here, "allow_outside_paths = true\n" + text))
    assert plan.data["path"] == str(outside.resolve())
    (here / "data" / "panel.csv").write_text("a,b\n1,2\n")
    ok = load_plan(write(here, BASE.replace('dataset = "mpdta"', 'path = "data/panel.csv"')))
    assert ok.data["path"] == str((here / "data" / "panel.csv").resolve())
    with pytest.raises(PlanError, match="no such file"):
        load_plan(write(here, BASE.replace('dataset = "mpdta"', 'path = "data/absent.csv"')))


def test_estimator_missing_from_the_installation(here, monkeypatch):
    monkeypatch.setitem(plan_mod.ALLOWLIST, "did.future", ("decrimkit.estimators.did._not_built_module", "future"))
    plan = load_plan(write(here, BASE.replace('name = "did.twfe"', 'name = "did.future"')))
    with pytest.raises(PlanError, match=r"estimator 'did.future' is missing from this installation of decrimkit "
                                        r"\(no module decrimkit.estimators.did._not_built_module\); reinstall"):
        plan.run()
    assert not (here / "outputs" / "plan").exists()  # nothing written before the check


def test_options_are_data_never_code(here, monkeypatch, tmp_path_factory):
    # a recording stand-in estimator, allowlisted for this test only: options arrive as plain strings
    mod_dir = tmp_path_factory.mktemp("mods")
    (mod_dir / "recording_estimator.py").write_text(
        textwrap.dedent("""
        seen = []
        def record(panel, **kw):
            seen.append(kw)
            raise ValueError("stop")
    """)
    )
    monkeypatch.syspath_prepend(str(mod_dir))
    monkeypatch.setitem(plan_mod.ALLOWLIST, "test.record", ("recording_estimator", "record"))
    code = "__import__('pathlib').Path('pwned').touch()"
    text = BASE.replace('name = "did.twfe"', f'name = "test.record"\noptions = {{ cluster = "{code}", n = 3 }}')
    with pytest.raises(ValueError, match="stop"):
        load_plan(write(here, text)).run()
    import recording_estimator

    assert recording_estimator.seen == [{"cluster": code, "n": 3}]
    assert not (here / "pwned").exists()


def test_example_plan_runs_and_matches_the_estimator(here):
    from decrimkit.estimators import did

    out = load_plan(EXAMPLE).run(out="outputs/example", seed=3)
    res = json.loads((out / "results.json").read_text())
    direct = did.twfe(load_plan(EXAMPLE).panel()).tidy()
    row = res["results"][0]
    assert row["method"] == "did.twfe" and res["seed"] == 3
    # the same computation through the plan: only the 12-significant-digit rounding of results.json differs
    assert row["estimate"] == pytest.approx(float(direct["estimate"].iloc[0]), rel=1e-11)
    assert row["se"] == pytest.approx(float(direct["se"].iloc[0]), rel=1e-11)
    assert (out / "tables" / "twfe.csv").exists() and (out / "report.html").exists()


# --------------------------------------------------------------------------- issue 19 part 3
def test_check_rejects_a_misspelt_option_with_exit_2_and_one_line(here, capsys):
    from decrimkit.cli import main

    path = write(here, BASE.replace('name = "did.twfe"', 'name = "did.twfe"\noptions = { clustr = "unit" }'))
    code = main(["run", str(path), "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: PlanError: plan key estimators[0].options.clustr")
    assert "did you mean 'cluster'?" in err and "allowed: covariates, cluster, weights, inference, se_method, n_boot" in err
    assert not (here / "outputs" / "plan").exists()
    # a required option left out, and a valid plan: --check loads the data and builds the panel
    scm = BASE.replace('name = "did.twfe"', 'name = "synth.scm"\noptions = { treated = 1 }')
    assert main(["run", str(write(here, scm)), "--check"]) == 2
    assert "options needs start for synth.scm" in capsys.readouterr().err
    assert main(["run", str(write(here, BASE)), "--check"]) == 0
    assert "panel 500 units x 5 periods" in capsys.readouterr().out


def test_check_loads_the_data(here, capsys):
    from decrimkit.cli import main

    (here / "data" / "panel.csv").write_text("countyreal,year,lemp\n1,2003,1.0\n")
    text = BASE.replace('dataset = "mpdta"', 'path = "data/panel.csv"')
    assert main(["run", str(write(here, text)), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "first.treat" in err and err.count("\n") == 1


def test_explicit_out_is_the_callers_choice_like_study_out(here, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "report"
    out = load_plan(write(here, BASE)).run(out=elsewhere)
    assert out == elsewhere.resolve() and (out / "report.html").is_file()
    # the plan file's own out stays inside outputs/ (test_schema_errors_name_the_key)


def test_steps_are_checked(here):
    cases = [
        ('name = "did.twfe"\naggregate = ["simple"]', r"estimators\[0\].aggregate applies only to did.att_gt"),
        ('name = "did.att_gt"\naggregate = ["overall"]', r"'overall' is not an aggregation"),
        ('name = "synth.scm"\nplacebo = "spaces"', r"placebo = 'spaces': use one of space, time"),
        ('name = "synth.scm"\nrefit_v = true', r'estimators\[0\].refit_v goes with placebo = "space" or "time"'),
        ('name = "did.twfe"\nrefit_v = true', r"estimators\[0\].refit_v applies only to synth.scm, not did.twfe"),
        ('name = "synth.scm"\nplacebo = "space"\nrefit_v = "yes"', r"estimators\[0\].refit_v must be bool, got str"),
        ('name = "did.honest"', r'needs of = "<label>"'),
        (
            'name = "did.honest"\nof = "twfe"',
            r"of = 'twfe' must be the label of an earlier entry using did.event_study or did.sun_abraham or did.att_gt",
        ),
    ]
    for new, match in cases:
        with pytest.raises(PlanError, match=match):
            load_plan(write(here, BASE.replace('name = "did.twfe"', new)))


def test_schema_errors_name_the_key_and_what_to_write(here):
    """pydantic checks the types; each error is one sentence naming the key (no pydantic report)."""
    cases = [
        ("[outputs]\nseed = -1\n", r"^plan key outputs.seed must be >= 0, got -1.$"),
        ("[outputs]\nsuppress_below = 0\n", r"^plan key outputs.suppress_below must be >= 1, got 0.$"),
        ("[plan]\nname = 3\n", r"^plan key plan.name must be str, got int 3.$"),
        ("outputs = 3\n", r"^plan key 'outputs' must be a table \(\[outputs\]\), got int.$"),
        ("robustness = [1]\n", r"^plan key 'robustness' must be an array of tables \(\[\[robustness\]\]\).$"),
        ("[[robustness]]\nlabel = 'x'\n", r"^plan key robustness\[0\] has no name; give one of did.twfe, "),
    ]
    for extra, match in cases:
        text = extra + BASE if not extra.startswith("[") else BASE + extra
        with pytest.raises(PlanError, match=match):
            load_plan(write(here, text))
    covariates = BASE.replace('cohort = "first.treat"', 'cohort = "first.treat"\ncovariates = ["lpop", 3]')
    with pytest.raises(PlanError, match=r"design.covariates must be list\[str\], got a list holding int 3"):
        load_plan(write(here, covariates))


def test_synth_placebo_takes_refit_v(here, monkeypatch, tmp_path_factory):
    text = BASE.replace('name = "did.twfe"', 'name = "synth.scm"\nplacebo = "space"\nrefit_v = true')
    call = load_plan(write(here, text)).estimators[0]
    assert (call.name, call.placebo, call.refit_v) == ("synth.scm", "space", True)
    call = load_plan(write(here, text.replace("refit_v = true", ""))).estimators[0]
    assert call.refit_v is False  # the estimator's default: V fixed at the treated fit's
    # the run hands it to the result's placebo(): a recording stand-in, allowlisted for this test only
    mod_dir = tmp_path_factory.mktemp("mods")
    (mod_dir / "recording_synth.py").write_text(textwrap.dedent("""
        seen = []
        class Fit:
            def placebo(self, kind, **kw):
                seen.append((kind, kw))
                raise ValueError("stop")
        def fit(panel, **kw):
            return Fit()
    """))
    monkeypatch.syspath_prepend(str(mod_dir))
    monkeypatch.setitem(plan_mod.ALLOWLIST, "test.synth", ("recording_synth", "fit"))
    for step in ("placebo", "refit_v"):
        monkeypatch.setitem(plan_mod.STEPS, step, ("synth.scm", "test.synth"))
    with pytest.raises(ValueError, match="stop"):
        load_plan(write(here, text.replace("synth.scm", "test.synth"))).run()
    import recording_synth

    assert recording_synth.seen == [("space", {"refit_v": True})]


CASTLE_PLAN = """
[plan]
name = "castle"
title = "Castle doctrine and homicides"

[data]
dataset = "castle_doctrine"

[design]
unit = "state"
time = "year"
outcome = "homicide_c"
cohort = "effyear"
population = "population"

[[estimators]]
name = "did.att_gt"
label = "cs"
options = { n_boot = 0 }
aggregate = ["simple", "dynamic"]

[[estimators]]
name = "did.imputation"
label = "bjs"

[[estimators]]
name = "synth.scm"
label = "scm_fl"
options = { treated = "Florida", start = 2005, v = "equal" }
placebo = "space"

[[estimators]]
name = "bayes.hierarchical_did"
label = "bayes"
options = { chains = 2, draws = 150, tune = 150, policy_model = { Alabama = "south", Alaska = "west", Arizona = "west", Florida = "south", Georgia = "south", Indiana = "midwest", Kansas = "midwest", Kentucky = "south", Louisiana = "south", Michigan = "midwest", Mississippi = "south", Missouri = "midwest", Montana = "west", "North Dakota" = "midwest", Ohio = "midwest", Oklahoma = "south", "South Carolina" = "south", "South Dakota" = "midwest", Tennessee = "south", Texas = "south", "West Virginia" = "south" } }
"""


@pytest.mark.slow
def test_plan_with_att_gt_imputation_scm_and_bayes_writes_a_full_report(here):
    """Acceptance of issue 19 part 3: figures, overall effects, placebo p in place of an SCM interval,
    a posterior interval for the Bayesian model, and estimator notes kept."""
    from decrimkit.estimators import did

    plan = load_plan(write(here, CASTLE_PLAN))
    # a short chain may fail the convergence gate; the report must then say so (checked below)
    with _maybe_convergence_warning():
        out = plan.run()
    res = {r["name"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert {"cs.simple", "cs.dynamic", "bjs.overall", "scm_fl.att", "bayes.mu_0"} <= set(res)

    # overall effects equal the estimators' own (12-significant-digit rounding of results.json)
    panel = plan.panel()
    cs = did.att_gt(panel, n_boot=0)
    for kind in ("simple", "dynamic"):
        est, se = cs.aggregate(kind).overall
        assert res[f"cs.{kind}"]["estimate"] == pytest.approx(est, rel=1e-10)
        assert res[f"cs.{kind}"]["se"] == pytest.approx(se, rel=1e-10)
    bjs = did.imputation(panel)
    assert res["bjs.overall"]["estimate"] == pytest.approx(bjs.overall[0], rel=1e-10)
    lo, hi = res["bjs.overall"]["conf_int"]
    assert lo == pytest.approx(bjs.overall[0] - 1.959963984540054 * bjs.overall[1], rel=1e-9) and hi > lo

    # SCM: no standard error, so no interval; the p-value is the placebo rank p-value, recomputed here
    scm = res["scm_fl.att"]
    assert scm["conf_int"] is None and scm["se"] is None
    runs = pd.read_csv(out / "tables" / "scm_fl.placebo.csv")
    kept = runs[runs["included"]]
    treated_ratio = runs["ratio"].iloc[0]
    assert scm["p_value"] == pytest.approx((kept["ratio"] >= treated_ratio).mean(), abs=1e-12)
    assert "placebo-in-space rank p-value" in scm["note"] and "left out of the donor pool" in scm["note"]
    assert scm["unit"] == "units of homicide_c per 100,000 population"  # SCM fits rates (the panel has population)

    # Bayesian: posterior mean and HDI, no p-value, the convergence verdict in the note
    b = res["bayes.mu_0"]
    assert b["p_value"] is None and b["conf_int"][0] < b["estimate"] < b["conf_int"][1]
    assert "highest-density interval" in b["note"] and "convergence" in b["note"]

    # figures written and embedded; no empty interval anywhere in the report
    figs = sorted(p.name for p in (out / "figures").glob("*.png"))
    # the SCM trajectory shows the observed path of a count outcome as rates (the design has a population):
    # it cannot be suppressed cell by cell, so it is not drawn and the note says so (disclosure control)
    assert figs == ["bayes.png", "bjs.png", "cs.dynamic.png", "cs.png", "scm_fl.placebo.png"]
    assert "figure(s) 'scm_fl' not drawn: the observed outcome path holds rates of a count" in res["scm_fl.att"]["note"]
    html_text = (out / "report.html").read_text()
    assert html_text.count("data:image/png;base64,") == len(figs)
    md = (out / "report.md").read_text()
    assert "[, ]" not in md and "[nan" not in md.lower()
    assert "Callaway-Sant'Anna ATT(g,t) [cs]: overall ATT" in md  # human labels, not cs.simple
    for fig in figs:
        assert f"](figures/{fig})" in md


def _maybe_convergence_warning():
    """Accept (not require) decrimkit's ConvergenceWarning: 2 x 150 draws may or may not pass the gate."""
    import warnings
    from contextlib import contextmanager

    from decrimkit.errors import ConvergenceWarning

    @contextmanager
    def ctx():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            yield

    return ctx()


def test_honest_and_bacon_steps_in_a_plan(here):
    from decrimkit.estimators import did

    text = BASE.replace(
        'name = "did.twfe"\n',
        'name = "did.event_study"\nlabel = "es"\n\n[[robustness]]\nname = "did.honest"\nlabel = "honest"\n'
        'of = "es"\noptions = { m = [0, 1] }\n\n[[robustness]]\nname = "did.bacon"\nlabel = "bacon"\n',
    )
    plan = load_plan(write(here, text))
    out = plan.run()
    res = {r["name"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    panel = plan.panel()
    direct = did.honest(did.event_study(panel), m=[0, 1])
    assert res["honest.theta"]["estimate"] == pytest.approx(direct.estimate, rel=1e-10)
    assert res["honest.theta"]["conf_int"] == pytest.approx(list(direct.original), rel=1e-9)
    table = pd.read_csv(out / "tables" / "honest.csv")
    assert table["lb"].iloc[1:].to_numpy() == pytest.approx(direct.table["lb"].to_numpy(), rel=1e-9)
    assert res["bacon.twfe"]["estimate"] == pytest.approx(did.twfe(panel).estimate[0], rel=1e-9)
    assert {"es.png", "honest.png", "bacon.png"} <= {p.name for p in (out / "figures").glob("*.png")}


def test_honest_of_an_att_gt_entry_uses_its_event_study_aggregate(here):
    from decrimkit.estimators import did

    text = BASE.replace(
        'name = "did.twfe"\n',
        'name = "did.att_gt"\nlabel = "cs"\noptions = { n_boot = 0, base_period = "universal" }\n\n'
        '[[robustness]]\nname = "did.honest"\nlabel = "honest_cs"\nof = "cs"\noptions = { m = [0, 1] }\n',
    )
    plan = load_plan(write(here, text))
    res = {r["name"]: r for r in json.loads((plan.run() / "results.json").read_text())["results"]}
    direct = did.honest(did.att_gt(plan.panel(), n_boot=0, base_period="universal").aggregate("dynamic"), m=[0, 1])
    assert res["honest_cs.theta"]["estimate"] == pytest.approx(direct.estimate, rel=1e-10)
    assert res["honest_cs.theta"]["conf_int"] == pytest.approx(list(direct.original), rel=1e-9)


def test_report_names_a_csv_by_its_path_in_the_project_not_this_machines(here, tmp_path_factory):
    """The Plan section showed data.path as resolved (an absolute path on the author's machine): a report is shared, so it names the CSV
    relative to the folder holding data/, or by its file name when the plan allows outside paths."""
    rows = [f"{u},{y},{2005 if u < 5 else 0},{u + y - 2000 + 0.5 * (u < 5) * (y >= 2005) + 0.1 * (u * y % 3)}"
            for u in range(10) for y in range(2001, 2009)]
    (here / "data" / "panel.csv").write_text("unit,year,cohort,y\n" + "\n".join(rows) + "\n")
    plan = BASE.replace('dataset = "mpdta"', 'path = "data/panel.csv"').replace("countyreal", "unit").replace(
        '"lemp"', '"y"').replace('"first.treat"', '"cohort"')
    out = load_plan(write(here, plan)).run(out="outputs/local", seed=0)
    md = (out / "report.md").read_text()
    assert "- data: `data/panel.csv`" in md
    assert str(here) not in md and str(here) not in (out / "report.html").read_text()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "panel.csv").write_text((here / "data" / "panel.csv").read_text())
    outside = "allow_outside_paths = true\n" + plan.replace("data/panel.csv", str(elsewhere / "panel.csv"))
    md = (load_plan(write(here, outside, "outside.toml")).run(out="outputs/outside", seed=0) / "report.md").read_text()
    assert "- data: `panel.csv`" in md and str(elsewhere) not in md
