"""The ``decrimkit`` console script: thin argument parsing around studies, plans and data.

::

    decrimkit study NAME [--out DIR] [--seed N] [--quick]
    decrimkit study --list
    decrimkit run PLAN.toml [--out DIR] [--seed N]
    decrimkit data list
    decrimkit data describe NAME [--file FILE] [--provenance]
    decrimkit --version

Bad input (any :class:`decrimkit.DecrimkitError`, or a run that needs more memory than the machine
has) prints one line, ``error: ...``, on stderr and exits with status 2; ``--debug`` (before the
command) shows the traceback instead. Usage errors also exit with 2 (argparse's convention). An
unexpected internal error exits with 1.

Progress bars (studies, bootstraps, placebo loops, sampling) go to stderr on a terminal; set
``DECRIMKIT_PROGRESS=0`` to turn them off. Other packages' warnings and log lines are hidden unless
``--debug``; decrimkit's own warnings (e.g. a failed convergence gate) always show.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib

from decrimkit import __version__
from decrimkit.errors import DecrimkitError, DecrimkitWarning

__all__ = ["main", "build_parser"]

log = logging.getLogger("decrimkit")

_OUT_OF_MEMORY = (
    "error: MemoryError: this run needs more memory than the machine has; use a smaller data set or fewer "
    "replications (n_boot, n_reps, draws; limits in docs/cli.md)."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="decrimkit",
        description="Causal evaluation of drug decriminalization policies: studies, analysis plans, bundled data.",
    )
    parser.add_argument("--version", action="version", version=f"decrimkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("study", help="run a study and write outputs/<study>/")
    p.add_argument("--list", action="store_true", help="list the study names, one line each")
    names = p.add_subparsers(dest="name", metavar="NAME", help="study name (see 'decrimkit study --list')")
    for study in _registered_studies().values():
        # the same options as `python -m decrimkit.studies.<package>`: both come from the study's record
        study.add_arguments(names.add_parser(study.name, help=study.summary(), description=study.summary()))

    p = sub.add_parser("run", help="run an analysis plan (TOML) and write its report")
    p.add_argument("plan", type=Path, metavar="PLAN.toml")
    p.add_argument("--out", type=Path, default=None, help="override the plan's output folder")
    p.add_argument("--seed", type=int, default=None, help="override the plan's seed")
    p.add_argument("--check", action="store_true", help="validate the plan, its options and its data; estimate nothing")

    p = sub.add_parser("data", help="bundled datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    dsub.add_parser("list", help="list bundled datasets")
    d = dsub.add_parser("describe", help="describe one dataset")
    d.add_argument("name", metavar="NAME")
    d.add_argument("--provenance", action="store_true", help="print the full PROVENANCE.md")
    d.add_argument("--file", default=None, help="list the columns of this file (default: the main file)")
    return parser


def _registered_studies() -> dict:
    from decrimkit.studies import STUDIES

    return STUDIES


@contextlib.contextmanager
def _output_guard(target: object) -> Iterator[None]:
    """Check the output folder before a long run and hold its write lock for the whole run."""
    if not isinstance(target, (str, Path)):
        yield
        return
    from decrimkit.reporting.output import check_output_folder, output_lock

    check_output_folder(target)
    with output_lock(target):
        yield


def _cmd_study(args: argparse.Namespace) -> int:
    studies = _registered_studies()
    if args.list or args.name is None:
        for name, study in studies.items():
            print(f"{name:16s} {study.summary()}")
        print("run one with: decrimkit study NAME [--quick] [--seed N] [--out DIR] (decrimkit study NAME --help)")
        return 0
    return run_study(studies[args.name], args)


def run_study(study: object, args: argparse.Namespace) -> int:
    """Run one registered study with parsed arguments (``decrimkit study NAME`` and ``python -m``)."""
    from decrimkit.extras import require

    require("studies", f"decrimkit study {study.name}")  # type: ignore[attr-defined]
    kwargs = study.run_arguments(args)  # type: ignore[attr-defined]
    if args.verbose:
        logging.getLogger("decrimkit.studies").setLevel(logging.INFO)
    with _output_guard(kwargs["out"]):
        out = study.runner()(**kwargs)  # type: ignore[attr-defined]
    print(f"study {study.name}: outputs written to {out}")  # type: ignore[attr-defined]
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from decrimkit.plan import load_plan

    plan = load_plan(args.plan)
    if args.check:
        _, _, panel = plan.check()  # options against each estimator's signature; loads the data
        shape = f"; panel {panel.n_units} units x {panel.n_periods} periods" if panel is not None else ""
        print(
            f"plan {args.plan} is valid: {len(plan.estimators)} estimator(s), {len(plan.robustness)} robustness "
            f"check(s){shape}"
        )
        return 0
    out = plan.run(out=args.out, seed=args.seed)  # locks and checks its output folder before running
    print(f"plan {plan.name}: outputs written to {out}")
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from decrimkit.datasets import dataset_info, dataset_provenance, list_datasets
    from decrimkit.datasets.columns import dataset_columns

    if args.data_command == "list":
        for name in list_datasets():
            info = dataset_info(name)
            print(f"{name:24s} {info['title']}")
        return 0
    info = dataset_info(args.name)
    if args.provenance:
        print(dataset_provenance(args.name))
        return 0
    columns = dataset_columns(args.name, args.file)  # loads (and verifies) the file first: a bad --file prints nothing
    print(f"{info['name']}: {info['title']}")
    for key in ("publisher", "source", "licence", "coverage", "main"):
        print(f"  {key:10s} {info[key]}")
    print("  files:")
    for f in info["files"]:
        print(f"    {f['name']:44s} {f['rows']:>7d} rows  sha256 {f['sha256']}")
    print(f"  columns of {args.file or info['main']} (dtype as loaded; meaning from PROVENANCE.md):")
    width = max(len(c) for c in columns["column"])
    for row in columns.itertuples(index=False):
        print(f"    {row.column:{width}s}  {row.dtype:8s}  {row.description}".rstrip())
    print(f"  (full provenance: decrimkit data describe {args.name} --provenance)")
    return 0


# Libraries whose log lines are chatter on the command line (e.g. PyTensor's "could not link to a BLAS
# installation", PyMC's sampler notices); they show again with --debug.
_CHATTY_LOGGERS = ("pytensor", "pymc", "arviz", "numpyro", "blackjax", "jax", "distributed")


@contextlib.contextmanager
def _quiet_third_party(debug: bool) -> Iterator[None]:
    """Hide other packages' warnings and log lines unless ``--debug``; decrimkit's own warnings show."""
    if debug:
        yield
        return
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", category=DecrimkitWarning)
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``decrimkit`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    matplotlib.use("Agg")  # the command line writes figures to files and never shows them
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    commands = {"study": _cmd_study, "run": _cmd_run, "data": _cmd_data}
    try:
        with _quiet_third_party(args.debug):
            return commands[args.command](args)
    except DecrimkitError as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split())
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:  # the input asks for more memory than this machine has: bad input, status 2
        if args.debug:
            raise
        print(_OUT_OF_MEMORY, file=sys.stderr)
        return 2
    except Exception as exc:  # an internal error: say so in one line unless debugging
        if args.debug:
            raise
        if "RESOURCE_EXHAUSTED" in str(exc):  # XLA could not allocate: as MemoryError
            print(_OUT_OF_MEMORY, file=sys.stderr)
            return 2
        print(
            f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
            f"(rerun with 'decrimkit --debug ...' for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
