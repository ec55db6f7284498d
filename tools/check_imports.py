"""Fail when decrimkit's modules import each other in a cycle (run by ``make lint``).

decrimkit installs three source folders as one package (``src/decrimkit``, ``estimators`` as
``decrimkit.estimators``, ``studies`` as ``decrimkit.studies``), a layout that import-graph libraries
such as grimp cannot follow, so the graph is read here from the source with :mod:`ast`. Every
``import`` counts, also those inside functions (an import deferred to dodge a cycle is still a cycle),
except those under ``if TYPE_CHECKING:``, which never run.
A second rule keeps the layers in order: result modules never import estimators (the modules of the
estimators listed in ``src/decrimkit/registry.py``, read from its ``Entry("family.function", ...)`` lines).
A third keeps the
Bayesian family on public ground: no module but the sampling engine's adapter
(``estimators/bayes/_engine.py``) imports a private name (a dotted part starting with ``_``) of PyMC,
PyTensor, blackjax or numpyro, or reaches one through an attribute of those packages.

Usage: ``python tools/check_imports.py`` (exit 1 and one line per cycle when any is found).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"src/decrimkit": "decrimkit", "estimators": "decrimkit.estimators", "studies": "decrimkit.studies"}


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Map every module name of the distribution (source tree at ``root``) to its source file."""
    found: dict[str, Path] = {}
    for folder, prefix in FOLDERS.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The decrimkit modules that ``name`` (source ``path``) imports, resolved to the closest known module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            candidates = [f"{stem}.{alias.name}" for alias in node.names] + [stem]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name and not name.startswith(candidate + "."):
                targets.add(candidate)
                break
    return targets


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def estimator_modules(root: Path = ROOT) -> set[str]:
    """The registered estimators' modules (``Entry("did.twfe", ...)`` -> ``decrimkit.estimators.did._twfe``)."""
    registry = root / "src" / "decrimkit" / "registry.py"
    if not registry.is_file():
        return set()
    found = set()
    for node in ast.walk(ast.parse(registry.read_text(), filename=str(registry))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Entry"
                and node.args and isinstance(node.args[0], ast.Constant)):
            family, _, function = str(node.args[0].value).partition(".")
            found.add(f"decrimkit.estimators.{family}._{function}")
    return found


def layer_violations(graph: dict[str, set[str]], estimators: set[str]) -> list[str]:
    """Result modules import no estimator module."""
    bad = []
    for name, targets in sorted(graph.items()):
        if name.rpartition(".")[2] in {"results", "_event_result"} or name == "decrimkit.results":
            bad += [f"{name} imports the estimator module {target}" for target in sorted(targets & estimators)]
    return bad


BACKENDS = ("pymc", "pytensor", "blackjax", "numpyro")
ADAPTER = "decrimkit.estimators.bayes._engine"


def _private(dotted: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in dotted.split("."))


def private_backend_imports(name: str, path: Path) -> list[str]:
    """Private PyMC/PyTensor/blackjax/numpyro names that module ``name`` imports or reaches by attribute."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BACKENDS:
                    aliases.add((alias.asname or alias.name).split(".")[0])
                    if _private(alias.name):
                        found.append(alias.name)
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] in BACKENDS:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if _private(dotted):
                    found.append(dotted)
                else:
                    aliases.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in aliases:
                found.append(f"{ast.unparse(node)}")
    return [f"{name} uses the private backend name {d} (only {ADAPTER} may)" for d in sorted(set(found))]


def problems(root: Path = ROOT) -> tuple[int, list[str]]:
    """The number of modules under ``root`` and one line per import cycle, layer violation or private
    backend import outside the adapter."""
    files = module_files(root)
    graph = {name: imports_of(name, path, set(files)) for name, path in files.items()}
    private = [line for name, path in files.items() if name != ADAPTER for line in private_backend_imports(name, path)]
    return len(graph), [" <-> ".join(c) for c in cycles(graph)] + layer_violations(graph, estimator_modules(root)) + private


def main() -> int:
    n_modules, found = problems()
    for line in found:
        print(f"import check: {line}")
    if not found:
        print(f"import check: {n_modules} modules, no cycles, results import no estimator, no private backend "
              f"name outside {ADAPTER}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
