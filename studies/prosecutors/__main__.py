"""``python -m decrimkit.studies.prosecutors``: the same as ``decrimkit study prosecutors``, options from its registry record."""

import sys

from decrimkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["study", "prosecutors", *sys.argv[1:]]))
