"""Prosecutor (de facto) drug policies in the registry and county overdose deaths, by policy model.

For every registry county policy that qualifies, the effect on the county's drug overdose death rate
(CDC WONDER, 2010-2022) by SCM, augmented SCM and SDID against comparison counties, with
one-treated-unit inference; staggered DiD per policy model; Bayesian pooling of county effects within
and across the four de facto models; and, as a mechanism check, the Brooklyn (2014) and Manhattan
(2018) declination policies on DCJS drug misdemeanor arrests.

Run ``python -m decrimkit.studies.prosecutors --out outputs/prosecutors`` or
``decrimkit study prosecutors``. Modules: ``data`` (panel, registry and donor rules, NY arrests),
``methods`` (estimators and inference), ``figures``, ``study`` (run and report).
"""

from .study import run

__all__ = ["run"]
