"""Analysis plans: a pre-registrable TOML description of a study that ``decrimkit run`` executes.

A plan is untrusted input. It is parsed with :mod:`tomllib` (data only, nothing is evaluated),
checked against the schema below (pydantic models in :mod:`decrimkit.plan.schema`; unknown keys and
wrong types raise :class:`PlanError` naming the key), may read and write only inside the project's
``data/`` and ``outputs/`` folders (:mod:`decrimkit.plan.sandbox`), and can call only the estimators on
:data:`ALLOWLIST`, imported lazily when the plan runs (:mod:`decrimkit.plan.runner`).
:mod:`decrimkit.plan.parse` reads the file and applies the rules that span the whole plan.

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
    options = { cluster = "unit" }   # keyword options passed to the estimator (checked against its
                                     # signature by --check; a table of plain values is allowed too)
    aggregate = ["dynamic"]      # did.att_gt only: aggregations reported besides the overall ATT
    placebo = "space"            # synth.scm only: placebo runs, whose rank p-value is reported
    refit_v = true               # synth.scm with placebo only: re-choose V in each placebo fit
    of = "es"                    # did.honest only: the label of an earlier event-study entry

    [[robustness]]               # optional, same fields as [[estimators]]; reported separately

    [outputs]
    out = "outputs/mpdta_twfe"   # str; default outputs/<name> (run(out=...) / --out may be any folder)
    seed = 0                     # int; passed to estimators that take a seed
    suppress_below = 11          # int; small-cell threshold of the report

    allow_outside_paths = false  # top level; true lifts the data/ and outputs/ restriction

Relative paths are resolved against the current directory. A data path must lie in a ``data/``
folder, the plan's output folder in an ``outputs/`` folder, of either the current directory or the plan's
own folder (symbolic links and ``..`` are resolved first).
"""

from __future__ import annotations

from decrimkit.plan.parse import load_plan, parse_plan, run_plan
from decrimkit.plan.runner import EstimatorCall, Plan
from decrimkit.plan.schema import AGGREGATIONS, ALLOWLIST, CASE_LEVEL, PLACEBOS, STEPS, TAKES_RESULT

__all__ = ["ALLOWLIST", "AGGREGATIONS", "CASE_LEVEL", "PLACEBOS", "STEPS", "TAKES_RESULT", "Plan", "EstimatorCall",
           "load_plan", "parse_plan", "run_plan"]
