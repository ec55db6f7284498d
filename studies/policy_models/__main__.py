"""``python -m decrimkit.studies.policy_models``: the same as ``decrimkit study policy-models``, options from its registry record."""

import sys

from decrimkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["study", "policy-models", *sys.argv[1:]]))
