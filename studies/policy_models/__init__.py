"""Four-policy-models study: what each de facto decriminalization model can show, across the registry.

``decrimkit study policy-models [--quick] [--seed N] [--out DIR] [--scheduler ADDRESS]`` writes
``outputs/policy-models/``:

1. a staggered-adoption timeline of every registry row by model (confidence as opacity, ended
   policies as bar ends);
2. the analysis panel the registry implies, under rules R1-R8 stated in
   :mod:`~decrimkit.studies.policy_models.data` (cannabis-only rows out, low-confidence rows as
   sensitivity, first qualifying policy defines the cohort, reversals as intention-to-treat, only
   statewide policies treat a state), and the state-level estimates for statewide (de jure) policies;
3. design-based power per model on real untreated state overdose series
   (:mod:`~decrimkit.studies.policy_models.power`), run on Dask;
4. Bayesian pooling (:mod:`~decrimkit.studies.policy_models.pooling`): ``bayes.hierarchical_did`` on
   the statewide panel and ``bayes.pool`` on the single-site studies' estimates, by model.

Data: ``policy_registry``, ``cdc_vsrr_overdose`` (calendar-year counts from the December
12-month-ending windows), ``state_population``.

Modules: ``data`` (registry rules R1-R8 to cohorts and a state panel, state overdose rates),
``placebo_design`` (each model's adoption years placed on real untreated state series), ``power`` (the
design-based power grid on Dask), ``bayes_power`` (the hierarchical model compiled once for all power
replications), ``methods`` (run modes, the rule sets, de jure estimates, the power grid driver),
``pooling`` (Bayesian pooling), ``figures``, ``text`` (report prose), ``study`` (``run``).
"""

from .methods import SETTINGS, Settings
from .study import run

__all__ = ["run", "Settings", "SETTINGS"]
