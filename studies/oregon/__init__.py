"""Oregon Measure 110 (de jure decriminalization, 2021-02-01 to 2024-08-31) and overdose deaths.

State panel of drug-overdose deaths per 100,000 from CDC/NCHS VSRR 12-month-ending counts and Census
population, analysed with ADH SCM, augmented SCM, SDID, MC-NNM (with and without a fentanyl proxy),
Bayesian SCM and DiD against comparison states, with placebo, conformal and robustness checks.

Run ``python -m decrimkit.studies.oregon --out outputs/oregon`` or ``decrimkit study oregon``.
Modules: ``data`` (panel, population, donor rules, fentanyl proxy), ``methods`` (estimators side by
side), ``robustness``, ``figures``, ``text`` (report prose and published values), ``study`` (run).

References
----------
Spencer, N. (2023). Does drug decriminalization increase unintentional drug overdose deaths? J Health Econ.
Joshi, S. et al. (2023). Oregon's drug decriminalization and overdose deaths. JAMA Psychiatry.
Zoorob, M. J. et al. (2024). Drug decriminalization, fentanyl, and fatal overdoses in Oregon. JAMA Netw Open.
"""

from .study import run

__all__ = ["run"]
