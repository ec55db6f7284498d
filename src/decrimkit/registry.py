"""The one list of decrimkit's estimators: every other list is made from it.

Each :class:`Entry` names an estimator once, as ``family.function`` (``"did.att_gt"``). That name is

* the estimator's public name in its family (``did.att_gt``): :func:`family_names` gives each family
  package the names it resolves lazily;
* the value of ``Spec.estimator`` on every result the estimator returns;
* the name an analysis plan calls it by (:data:`decrimkit.plan.ALLOWLIST` is built from the entries
  with ``plan=True``);
* the docs page ``docs/estimators/<family>/<function>.md``.

Adding an estimator: write ``estimators/<family>/_<function>.py`` holding the function, its tests and
its docs page, then add one :class:`Entry` here. The module's leading underscore says "use the family's
name": a module never shares a public name, so importing it can never shadow the function
(``import decrimkit.estimators.did._twfe`` leaves ``did.twfe`` the function). ``tests/test_registry.py`` fails when
a registered estimator has no docs page, is missing from its family or from the plan allowlist, or
its results break the result contract (``tests/test_contract.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Entry", "ESTIMATORS", "PLAN_ALIASES", "FAMILIES", "entry", "family_names", "docs_page"]

Input = Literal["panel", "cases", "result", "estimates", "series"]


@dataclass(frozen=True)
class Entry:
    """One estimator: ``name`` is ``family.function``; ``summary`` is one line for indexes."""

    name: str
    summary: str
    input: Input = "panel"  # what its first argument is: a Panel, case-level rows, another result, ...
    plan: bool = True  # callable from an analysis plan
    extra: str | None = None  # the optional dependency group it needs (decrimkit.extras)

    @property
    def family(self) -> str:
        return self.name.partition(".")[0]

    @property
    def function(self) -> str:
        return self.name.partition(".")[2]

    @property
    def module(self) -> str:
        return f"decrimkit.estimators.{self.family}._{self.function}"


ESTIMATORS: tuple[Entry, ...] = (
    Entry("did.twfe", "Two-way fixed effects DiD (cluster-robust, wild and few-treated inference)"),
    Entry("did.event_study", "Dynamic TWFE event study with binned endpoints and a joint pre-trend test"),
    Entry("did.att_gt", "Callaway-Sant'Anna group-time ATTs and their aggregations"),
    Entry("did.sun_abraham", "Sun-Abraham interaction-weighted event study"),
    Entry("did.efficient", "Roth-Sant'Anna efficient estimator for randomized staggered timing"),
    Entry("did.imputation", "Borusyak-Jaravel-Spiess imputation estimator"),
    Entry("did.two_stage", "Gardner two-stage DiD"),
    Entry("did.bacon", "Goodman-Bacon decomposition of the TWFE estimate"),
    Entry("did.honest", "Rambachan-Roth sensitivity bounds for an event study", input="result"),
    Entry("did.poisson", "Poisson (PPML) DiD for counts and rates"),
    Entry("did.disparity", "Change in a rate ratio between groups (e.g. racial disparity in arrests)"),
    Entry("synth.scm", "Abadie-Diamond-Hainmueller synthetic control with placebo inference"),
    Entry("synth.augmented", "Augmented synthetic control (ridge) with conformal inference"),
    Entry("synth.sdid", "Synthetic difference-in-differences (and its SC and DiD special cases)"),
    Entry("synth.mc_nnm", "Matrix completion with nuclear-norm penalty (Athey et al.)"),
    Entry("synth.compare", "Several synthetic-control estimators side by side", plan=False),
    Entry("iv.leniency", "Prosecutor/judge leniency (examiner) instrumental-variables design", input="cases"),
    Entry("bayes.hierarchical_did", "Hierarchical DiD pooling jurisdictions within policy models", extra="bayes"),
    Entry("bayes.its", "Bayesian interrupted time series", input="series", plan=False, extra="bayes"),
    Entry("bayes.synthetic_control", "Bayesian synthetic control (horseshoe donor weights)", plan=False,
          extra="bayes"),
    Entry("bayes.pool", "Meta-analytic pooling of site estimates across policy models", input="estimates",
          plan=False, extra="bayes"),
)

# Older plan names kept working: plan name -> registry name.
PLAN_ALIASES: dict[str, str] = {"synth.augsynth": "synth.augmented"}

FAMILIES: tuple[str, ...] = ("did", "synth", "iv", "bayes")


def entry(name: str) -> Entry:
    """The registry entry called ``name`` (a plan alias resolves to its estimator); KeyError if none."""
    name = PLAN_ALIASES.get(name, name)
    for e in ESTIMATORS:
        if e.name == name:
            return e
    raise KeyError(name)


def family_names(family: str) -> dict[str, str]:
    """Public name -> submodule for the estimators of ``family`` (``twfe`` -> ``_twfe``)."""
    return {e.function: f"_{e.function}" for e in ESTIMATORS if e.family == family}


def docs_page(e: Entry) -> str:
    """The estimator's docs page, relative to the repository root."""
    return f"docs/estimators/{e.family}/{e.function}.md"


def docs_index() -> str:
    """The estimator index page (``docs/estimators/README.md``), made from the registry."""
    lines = [
        "# Estimators",
        "",
        "<!-- generated from src/decrimkit/registry.py by `python -m decrimkit.registry`; do not edit -->",
        "",
        "Every estimator by its registry name: the name its family exports, its results' `Spec.estimator` and",
        "the name an analysis plan calls it by. Each result answers `estimate`, `se`, `conf_int(alpha)`,",
        "`tidy(alpha)`, `summary()` and `plot()`.",
        "",
        "| estimator | what it does | input | in plans | extra | page |",
        "|---|---|---|---|---|---|",
    ]
    for e in ESTIMATORS:
        page = f"{e.family}/{e.function}.md"
        lines.append(f"| `{e.name}` | {e.summary} | {e.input} | {'yes' if e.plan else 'no'} | "
                     f"{e.extra or ''} | [{page}]({page}) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(docs_index(), end="")
