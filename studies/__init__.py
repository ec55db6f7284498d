"""decrimkit.studies: one module per evaluation; each exposes ``run(out, seed=, quick=)`` and ``main()``."""

STUDIES = {
    "baltimore": "decrimkit.studies.baltimore",
    "suffolk": "decrimkit.studies.suffolk",
    "oregon": "decrimkit.studies.oregon",
    "policy-models": "decrimkit.studies.policy_models",
    "prosecutors": "decrimkit.studies.prosecutors",
}
