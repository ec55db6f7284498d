"""compare(): one table and one figure from several estimators on the same design."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from decrimkit.errors import DesignError, SpecificationError
from decrimkit.estimators import synth


def test_compare_table_and_figure(prop99):
    comp = synth.compare(prop99, treated="California", start=1989, methods=["did", "augmented"], n_reps=10)
    table = comp.tidy()
    assert list(table["method"]) == ["did", "augmented"]
    # R synthdid did_estimate on Prop 99, -27.349111083614947 (REFERENCES.md section 6; azcausal test file);
    # rtol 1e-9: closed form, only floating-point order differs
    assert table.loc[0, "estimate"] == pytest.approx(-27.349111083614947, rel=1e-9)
    fig = comp.plot()
    assert fig.axes and len(fig.axes[0].lines) >= 2
    plt.close(fig)
    assert "augmented" in str(comp)


def test_compare_errors(prop99):
    with pytest.raises(SpecificationError):
        synth.compare(prop99, treated="California", start=1989, methods=["lasso"])
    with pytest.raises(DesignError, match="read treatment from the panel"):
        synth.compare(prop99, treated="Nevada", start=1989, methods=["did"])
