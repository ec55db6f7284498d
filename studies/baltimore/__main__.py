"""``python -m decrimkit.studies.baltimore``: run the Baltimore study (see the package docstring)."""

from decrimkit.studies.baltimore import main

if __name__ == "__main__":
    raise SystemExit(main())
