"""Baltimore City 2020 non-prosecution of drug possession: effect on police drug (CDS) arrests.

Question: how many drug arrests did the Baltimore City State's Attorney's non-prosecution policy (from
2020-03-18; permanent from March 2021; rescinded 2023-01-03) avert between 2020-04 and 2022-12, and
whom would those arrests have touched?

Data: ``load_dataset("baltimore_bpd_arrests")`` -- monthly BPD arrests with a CDS (drug) charge and with
a handgun charge, 2018-01 .. 2022-12 (a third-party aggregation of the Open Baltimore file; every CDS
charge, distribution included), and the BPD arrest-level extract 2017-01 .. 2018-02 (race, charge).
The data end in 2022-12, before the rescission, so its effect cannot be estimated here.

Design: comparative interrupted time series (drug vs handgun arrests, Poisson quasi-likelihood,
seasonality, a COVID-19 lockdown term, Driscoll-Kraay SEs), beside a single-series ITS (Newey-West),
a Poisson difference-in-differences and a Bayesian comparative ITS; COVID, seasonality, placebo-date,
placebo-outcome and pre-trend checks; the racial composition of pre-policy possession arrests.

Run ``decrimkit study baltimore`` or ``python -m decrimkit.studies.baltimore [--out DIR] [--seed N]
[--quick]``; outputs go to ``outputs/baltimore`` (``results.json``, tables, figures, ``report.md``).

References
----------
Rouhani S, Tomko C, Weicker NP, Sherman SG (2021). Evaluation of prosecutorial policy reforms eliminating
criminal penalties for drug possession and sex work in Baltimore, Maryland. Johns Hopkins Bloomberg
School of Public Health (report, 2021-10-19).
Lopez Bernal J, Cummins S, Gasparrini A (2018). The use of controls in interrupted time series studies of
public health interventions. Int J Epidemiol 47(6):2082-2093.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["run"]


def run(out: str | Path = "outputs/baltimore", *, seed: int = 0, quick: bool = False) -> Path:
    """Run the Baltimore study and write its report; return the output folder.

    Parameters
    ----------
    out : str or Path
        Output folder (created if needed).
    seed : int
        Seed of every random draw (coefficient simulation, MCMC); the same seed gives the same
        ``results.json``.
    quick : bool
        Fewer simulation and MCMC draws (for tests and a first look); the design is unchanged.
    """
    from decrimkit.progress import stages
    from decrimkit.studies.baltimore.analysis import STAGES, analyse  # heavy imports (PyMC, JAX) only when run
    from decrimkit.studies.baltimore.output import write_report

    with stages("study baltimore", total=STAGES + 1) as step:
        results = analyse(seed=seed, quick=quick, step=step)
        step("report")
        write_report(results, out=out, seed=seed, quick=quick)
    return Path(out)
