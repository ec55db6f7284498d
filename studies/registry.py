"""The study registry: one :class:`Study` record per study, and everything that is made from it.

A record names the study, its package, its command-line options, the results it offers the
policy-models pooling and what the manuscript reads from its outputs. From the records come:

- ``decrimkit study NAME [options]`` and ``python -m decrimkit.studies.<package> [options]``: one
  parser per study, built here by :meth:`Study.add_arguments` (the CLI's subcommand and the module's
  ``__main__`` share it, so their options cannot drift);
- the Makefile's ``study-NAME`` / ``report-NAME`` targets, the ``studies`` target, the paper's inputs
  and the order studies run in (``python studies/registry.py make`` writes those rules; the Makefile
  reads them at start-up);
- ``paper/build.py``: which studies' outputs the manuscript reads, and which of their tables it prints;
- ``decrimkit.studies.policy_models.pooling``: which result of which study is pooled, and how it is put
  on the log rate ratio scale.

This module uses the standard library only: the core, the CLI's ``study --list`` and ``make`` read it
without the ``studies`` extra (PyMC, Dask) installed. Study packages are imported only to run one.
``tests/test_study_registry.py`` fails when a registered study has no package, ``run()``, docs page,
CLI entry or Makefile target.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Option", "Pooling", "Study", "STUDIES", "paper_studies", "pooled_studies", "make_rules"]


@dataclass(frozen=True)
class Option:
    """One command-line option of a study beyond ``--out``, ``--seed``, ``--quick`` and ``--verbose``.

    ``flag`` is the option (``--scheduler``), ``keyword`` the ``run()`` keyword it fills.
    """

    flag: str
    keyword: str
    help: str
    type: Callable[[str], Any] = str
    metavar: str | None = None


@dataclass(frozen=True)
class Pooling:
    """A result a study offers to the policy-models pooling (``bayes.pool`` across studies, by model).

    Parameters
    ----------
    policy_model : str
        The de facto policy model (``decrimkit.options.POLICY_MODELS``) the study's policy belongs to.
    site, outcome : str
        How the pooled row is labelled (jurisdiction; what was counted).
    results : tuple of str
        Names in the study's ``results.json``, in order of preference: the first with an estimate
        (and an interval) is pooled.
    scale : str
        How the result becomes a log rate ratio: ``"rate_ratio"`` (``log(estimate)``) or
        ``"excess_rate"`` (an excess in deaths per 100,000 per year against ``state``'s observed rate
        over the January windows ``years``: ``log(o / (o - att))``).
    simulated : bool
        The study's estimates come from simulated data: listed in the pooling's status, never pooled.
    """

    policy_model: str
    site: str = ""
    outcome: str = ""
    results: tuple[str, ...] = ()
    scale: str = "rate_ratio"
    state: str = ""
    years: tuple[int, ...] = ()
    simulated: bool = False


@dataclass(frozen=True)
class Study:
    """One study: its name, package, options, poolable results and paper inputs.

    Parameters
    ----------
    name : str
        The command-line name (``decrimkit study NAME``, ``make study-NAME``, ``outputs/NAME/``).
    module : str
        The package that holds ``run(out, *, seed, quick, **options)``; default
        ``decrimkit.studies.<name with _ for ->``.
    quick : str
        What ``--quick`` changes (its help text).
    options : tuple of Option
        Further options; each fills one keyword of ``run()``.
    pooling : Pooling, optional
        The result this study offers to the policy-models pooling.
    pools : bool
        The study pools the other studies' :class:`Pooling` results: it reads their outputs (so
        ``make`` runs them first) and gets ``studies_root=`` (the folder that holds them).
    paper_tables : tuple of (table, columns)
        Tables (``tables/<table>.csv``) the manuscript prints whole, with the columns it shows.
    in_paper : bool
        The manuscript (``paper/build.py``) reads this study's outputs.
    sources : tuple of str
        Files of other study packages this study imports (``make`` reruns it when they change).
    """

    name: str
    module: str = ""
    quick: str = "fewer replications and draws: a fast, rougher run (tests, previews)"
    options: tuple[Option, ...] = ()
    pooling: Pooling | None = None
    pools: bool = False
    paper_tables: tuple[tuple[str, tuple[str, ...]], ...] = ()
    in_paper: bool = False
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.module:
            object.__setattr__(self, "module", f"decrimkit.studies.{self.name.replace('-', '_')}")

    @property
    def package(self) -> str:
        """The package's folder name under ``studies/`` (``policy_models``)."""
        return self.module.rpartition(".")[2]

    @property
    def docs(self) -> str:
        """Its docs page, relative to the repository root."""
        return f"docs/studies/{self.package}.md"

    @property
    def default_out(self) -> str:
        return f"outputs/{self.name}"

    def summary(self) -> str | None:
        """First line of the study package's docstring, read without importing it (None: no package)."""
        try:
            spec = importlib.util.find_spec(self.module)
        except ModuleNotFoundError:
            spec = None
        if spec is None or spec.origin is None:
            return None
        doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")))
        return doc.strip().splitlines()[0] if doc else "(no description)"

    # ---------------------------------------------------------------- command line
    def add_arguments(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        """Add this study's options to ``parser`` (the CLI's ``study NAME`` and ``python -m`` both use it)."""
        parser.add_argument("--out", type=Path, default=None, metavar="DIR", help=f"output folder (default {self.default_out})")
        parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
        parser.add_argument("--quick", action="store_true", help=self.quick)
        parser.add_argument("--verbose", action="store_true", help="log the time of each step")
        for opt in self.options:
            parser.add_argument(opt.flag, dest=opt.keyword, type=opt.type, default=None, metavar=opt.metavar,
                                help=opt.help)
        return parser

    def run_arguments(self, args: argparse.Namespace) -> dict[str, Any]:
        """The ``run()`` keywords of parsed arguments (``out`` defaults to ``outputs/NAME``)."""
        kwargs: dict[str, Any] = {
            "out": args.out if args.out is not None else Path(self.default_out),
            "seed": args.seed,
            "quick": args.quick,
        }
        for opt in self.options:
            if getattr(args, opt.keyword) is not None:
                kwargs[opt.keyword] = getattr(args, opt.keyword)
        return kwargs

    def runner(self) -> Callable[..., Path]:
        """The study's ``run`` function (imports the study package)."""
        return importlib.import_module(self.module).run

    def accepts(self, keyword: str) -> bool:
        """Whether the study's ``run()`` takes ``keyword``."""
        return keyword in inspect.signature(self.runner()).parameters


_POLICY_MODELS_TABLES = (
    ("posterior_effects", ("source", "level", "label", "mean", "hdi_low", "hdi_high", "p_negative", "r_hat")),
    ("mde", ("model", "estimator", "adopters", "reps", "size", "mean_coverage", "mde_log")),
)

# the county overdose secondary outcome of the Baltimore and Suffolk studies (studies/prosecutors/secondary.py)
_COUNTY_OVERDOSE = tuple(f"studies/prosecutors/{f}.py" for f in ("secondary", "data", "methods", "figures")) + (
    "studies/policy_models/data.py",
)

#: Every study, in the order ``make studies`` and the manuscript take them.
STUDIES: dict[str, Study] = {
    s.name: s
    for s in (
        Study(
            "baltimore",
            quick="fewer draws: a fast, rougher run",
            pooling=Pooling(
                "unconditional_declination",
                site="Baltimore City",
                outcome="police drug (CDS) arrests",
                results=("rate_ratio",),
                scale="rate_ratio",
            ),
            in_paper=True,
            paper_tables=(("robustness", ("run", "rate_ratio", "rate_ratio_low", "rate_ratio_high", "averted")),),
            sources=_COUNTY_OVERDOSE,
        ),
        Study(
            "suffolk",
            quick="20 Monte Carlo replications, not 200",
            pooling=Pooling("unconditional_declination", site="Suffolk County", simulated=True),
            in_paper=True,
            sources=_COUNTY_OVERDOSE,
        ),
        Study(
            "oregon",
            quick="fewer replications and draws (used by tests)",
            pooling=Pooling(
                "de_jure",
                site="Oregon",
                outcome="overdose deaths",
                results=("sdid_rate", "scm_rate"),
                scale="excess_rate",
                state="OR",
                years=(2022, 2023, 2024),
            ),
            in_paper=True,
            paper_tables=(("robustness", ("check", "what changes", "estimate", "pre_rmspe", "donors")),),
        ),
        Study(
            "policy-models",
            quick="few replicates, short MCMC",
            options=(
                Option(
                    "--scheduler",
                    "scheduler",
                    "where the power grid runs: a Dask scheduler address (tcp://host:8786), 'local' (a "
                    "LocalCluster) or 'synchronous' (in this process)",
                    metavar="ADDRESS",
                ),
                Option("--workers", "n_workers", "LocalCluster worker processes (1 or 2)", type=int, metavar="N"),
            ),
            pools=True,
            in_paper=True,
            paper_tables=_POLICY_MODELS_TABLES,
        ),
        Study(
            "prosecutors",
            quick="one county per model, few replications (tests)",
            sources=("studies/policy_models/data.py", "studies/policy_models/placebo_design.py",
                     "studies/policy_models/power.py"),
            in_paper=True,
            paper_tables=(
                ("pooled", ("policy_model", "mean", "low", "high", "p_negative", "n_counties")),
                ("mde", ("model", "estimator", "adopters", "reps", "size", "mde", "mde_mcse")),
            ),
        ),
    )
}


def paper_studies() -> tuple[str, ...]:
    """Names of the studies whose outputs the manuscript reads, in registry order."""
    return tuple(name for name, s in STUDIES.items() if s.in_paper)


def pooled_studies() -> dict[str, Pooling]:
    """The studies that offer a result to the pooling, by name (sorted), with what they offer."""
    return {name: STUDIES[name].pooling for name in sorted(STUDIES) if STUDIES[name].pooling is not None}


def make_rules() -> list[str]:
    """The Makefile's study rules (read by the Makefile at start-up through ``python studies/registry.py make``).

    ``STUDY_NAMES`` and ``PAPER_STUDIES``, and per study the prerequisites of its ``results.json`` beyond
    the core (its own package, the files of other packages it imports, the outputs it pools).
    """
    rules = [
        f"STUDY_NAMES := {' '.join(STUDIES)}",
        f"PAPER_STUDIES := {' '.join(paper_studies())}",
    ]
    pooled = [f"outputs/{n}/results.json" for n in pooled_studies()]
    for s in STUDIES.values():
        needs = [f"$(wildcard studies/{s.package}/*.py)", *s.sources, *(pooled if s.pools else [])]
        rules.append(f"outputs/{s.name}/results.json: {' '.join(needs)}")
    return rules


def _main(argv: Sequence[str]) -> int:
    """``python studies/registry.py make`` (the Makefile's rules) or ``help`` (one line per study target)."""
    what = argv[0] if argv else ""
    if what == "make":
        print(";".join(make_rules()))
        return 0
    if what == "help":
        for s in STUDIES.values():
            about = _docstring_line(Path(__file__).parent / s.package / "__init__.py")
            print(f"study-{s.name}\t{about}")
        for s in STUDIES.values():
            print(f"report-{s.name}\tplain-language grant report, {s.name} (paper/build/report-{s.name}.pdf)")
        return 0
    print("usage: python studies/registry.py make|help", file=sys.stderr)
    return 2


def _docstring_line(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) if path.exists() else None
    return doc.strip().splitlines()[0] if doc else ""


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
