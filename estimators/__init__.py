"""decrimkit.estimators: the estimator families, one estimator per file.

- ``did``: difference-in-differences (TWFE, event study, staggered adoption, counts, disparities, sensitivity)
- ``synth``: synthetic control (ADH, augmented, synthetic DiD, matrix completion, placebo/conformal inference)
- ``bayes``: Bayesian hierarchical models pooling effects across jurisdictions and policy models (PyMC + JAX)
- ``iv``: instrumental variables, including the prosecutor-leniency (examiner) design
"""
