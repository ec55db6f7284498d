"""Reports: ``Report`` writes a study's figures, tables, results.json, provenance.json and report.md/html.

Small-cell suppression (:mod:`decrimkit.reporting.suppression`) and the row-level check
(:mod:`decrimkit.reporting.rowlevel`) apply to every table a report writes. See ``docs/reporting.md``.
"""

from decrimkit.reporting.report import Report
from decrimkit.reporting.rowlevel import check_aggregate
from decrimkit.reporting.suppression import suppress, suppression_mask

__all__ = ["Report", "suppress", "suppression_mask", "check_aggregate"]
