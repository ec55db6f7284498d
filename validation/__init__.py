"""Monte Carlo validation of decrimkit's estimators (``python validation/run.py``; see docs/validation.md)."""
