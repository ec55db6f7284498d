"""``python -m decrimkit.studies.suffolk``: run the Suffolk study (see the package docstring)."""

from decrimkit.studies.suffolk import main

if __name__ == "__main__":
    raise SystemExit(main())
