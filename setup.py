"""Package map: src/decrimkit is ``decrimkit``; estimators/ and studies/ install as its subpackages.

Everything else about the distribution is declared in pyproject.toml.
"""

from setuptools import find_packages, setup


def _under(folder: str, prefix: str) -> list[str]:
    return [prefix + p[len(folder):] for p in find_packages(".", include=[folder, f"{folder}.*"])]


setup(
    packages=find_packages("src") + _under("estimators", "decrimkit.estimators") + _under("studies", "decrimkit.studies"),
    package_dir={
        "decrimkit": "src/decrimkit",
        "decrimkit.estimators": "estimators",
        "decrimkit.studies": "studies",
    },
)
