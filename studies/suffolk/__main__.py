"""``python -m decrimkit.studies.suffolk``: the same as ``decrimkit study suffolk``, options from its registry record."""

import sys

from decrimkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["study", "suffolk", *sys.argv[1:]]))
