"""Conley-Taber / Ferman-Pinto intervals and p-values agree when draws tie with the estimate.

Controls with identical residual paths (size-matched counties with no deaths in any year, as on the
one-county placebo laws) give draws equal to the estimate; summed in another order they differ from it by
~1e-14. The p-value counts them as ties; the interval's ends must too, or an interval ending at
-1e-14 'excludes' a null whose p-value is 1 (seen on 3 of 60 one-county placebo laws)."""

from __future__ import annotations

import numpy as np

from decrimkit.inference.few_treated import ResidualInference


def test_interval_and_p_value_agree_on_ties():
    a = -5.597375293682508
    rng = np.random.default_rng(0)
    noise = rng.choice([2e-15, 5e-15, 1.3e-14], size=70)  # rounding as observed: every tie just above
    draws = np.concatenate([a + noise, a + rng.uniform(1, 40, size=30)])  # 70 controls tie with the estimate, the smallest draws
    res = ResidualInference(estimate=np.array([a]), draws=draws, method="conley_taber", exact=True,
                            n_treated=1, n_controls=100)
    lo, hi = res.conf_int(0.05)[0]
    assert res.p_value(0.0)[0] > 0.05 and lo <= 0.0 <= hi
    # away from ties, the interval is the set of nulls the test does not reject: check a grid across it
    for null in np.linspace(lo - 5, hi + 5, 401):
        inside = lo <= null <= hi
        assert inside == (res.p_value(null)[0] > 0.05), null
