"""``python -m decrimkit.studies.oregon``: the same as ``decrimkit study oregon``, options from its registry record."""

import sys

from decrimkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["study", "oregon", *sys.argv[1:]]))
