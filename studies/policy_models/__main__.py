"""``python -m decrimkit.studies.policy_models``: run the four-policy-models study."""

from decrimkit.studies.policy_models import main

if __name__ == "__main__":
    raise SystemExit(main())
