"""``python -m decrimkit.studies.baltimore``: the same as ``decrimkit study baltimore``, options from its registry record."""

import sys

from decrimkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["study", "baltimore", *sys.argv[1:]]))
