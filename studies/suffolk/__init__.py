"""Suffolk County, MA: the effect of not prosecuting a misdemeanour, on a calibrated simulator.

Question: what does declining to prosecute a non-violent misdemeanour do to the defendant's new
criminal complaints within two years, and what did DA Rollins' 2019-03-25 memo (presumptive
non-prosecution of 15 low-level offences) do to prosecution and to new complaints?

Data: **simulated**. The case-level data behind Agan, Doleac & Harvey ("Misdemeanor Prosecution",
NBER WP 28600; QJE 2023) are not public. :func:`simulate` produces a case-level sample with the
paper's design (ADAs as-if randomly assigned within court-by-month), its sample size (67,553 cases),
its non-prosecution share (20.5%), and potential outcomes built so that the true complier effects
equal the published relative effects (-53% on the probability of a new complaint, -60% on the
number of complaints). Every calibration target and assumption is a field of :class:`SuffolkConfig`
and is printed in the report. The study shows that the estimator recovers the truth and what
precision a partner can expect; it is not evidence about Suffolk County.

Design: the examiner design, :func:`decrimkit.estimators.iv.leniency` (leave-out ADA leniency,
2SLS with strata fixed effects, balance, monotonicity, compliers, relative effects); a Monte Carlo
of the 2SLS estimator; and a DiD of listed vs non-listed charges around the memo (``did.twfe``,
``did.event_study``) on simulated charge-by-month cells with a configurable true effect.

Run ``decrimkit study suffolk`` or ``python -m decrimkit.studies.suffolk [--out DIR] [--seed N]
[--quick]``. A partner with real case data runs ``decrimkit run`` with a plan like
``docs/examples/plan_suffolk.toml`` (columns documented in ``docs/studies/suffolk.md``).

References
----------
Agan, A., Doleac, J. L. & Harvey, A. (2023). Misdemeanor prosecution. QJE 138(3); NBER WP 28600 (2021).
"""

from __future__ import annotations

from pathlib import Path

from decrimkit.studies.suffolk.simulator import (
    Calibration,
    Simulation,
    SuffolkConfig,
    calibrate,
    memo_cells,
    simulate,
    simulate_memo,
)

__all__ = [
    "run",
    "simulate",
    "simulate_memo",
    "memo_cells",
    "calibrate",
    "SuffolkConfig",
    "Calibration",
    "Simulation",
]

N_REPS, N_REPS_QUICK = 200, 20


def run(
    out: str | Path = "outputs/suffolk", *, seed: int = 0, quick: bool = False, config: SuffolkConfig | None = None
) -> Path:
    """Run the Suffolk study and write its report; return the output folder.

    Parameters
    ----------
    out : str or Path
        Output folder (results.json, provenance.json, report.md/html, tables/, figures/).
    seed : int
        Seed of the simulated sample (``seed``), the memo sample (``seed + 1``) and the Monte Carlo
        replications (drawn from ``seed + 2``).
    quick : bool
        Run 20 Monte Carlo replications instead of 200 (everything else is unchanged).
    config : SuffolkConfig, optional
        Calibration targets and assumptions (default: the published values).
    """
    from decrimkit.studies.suffolk.output import write_report

    return write_report(
        Path(out), seed=seed, quick=quick, config=config or SuffolkConfig(), n_reps=N_REPS_QUICK if quick else N_REPS
    )
