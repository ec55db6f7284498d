"""Option values gathered as ``Literal`` types, and a checker for them."""

from __future__ import annotations

from typing import Any, Literal, get_args

from decrimkit.errors import SpecificationError

Control = Literal["never", "notyet"]
DRMethod = Literal["dr", "ipw", "reg", "dr_imp"]
BasePeriod = Literal["varying", "universal"]
Aggregation = Literal["simple", "dynamic", "group", "calendar"]
SEMethod = Literal["cluster", "wild"]
Inference = Literal["cluster", "wild", "randomization", "conley_taber", "ferman_pinto"]
WildWeights = Literal["rademacher", "webb"]
VMethod = Literal["nested", "nested-local", "equal", "regression", "cv"]
SDIDSE = Literal["placebo", "bootstrap", "jackknife"]
Family = Literal["negative_binomial", "poisson", "normal"]
Sampler = Literal["blackjax", "pymc"]
PolicyModel = Literal[
    "expanded_diversion",
    "substance_specific_declination",
    "case_by_case_declination",
    "unconditional_declination",
    "de_jure",
]
POLICY_MODELS: tuple[str, ...] = get_args(PolicyModel)


def check_option(name: str, value: Any, allowed: Any) -> Any:
    """Return ``value`` if it is one of ``allowed`` (a ``Literal`` or a tuple), else raise.

    Raises
    ------
    SpecificationError
        Naming the argument, the value given and the values allowed.
    """
    choices = get_args(allowed) if not isinstance(allowed, (tuple, list, set, frozenset)) else tuple(allowed)
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise SpecificationError(f"{name}={value!r} is not allowed; use one of {listed}.")
    return value
