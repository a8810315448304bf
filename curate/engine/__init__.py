"""The curation engine: one run sequence (plan -> hash -> ingest -> sketch -> decide -> finish ->
assemble -> publish -> hooks) and the units it is made of.

- :mod:`curate.engine.sequence`: the sequence itself, its cached steps and the hook mechanism;
- :mod:`curate.engine.steps`: the steps as plain functions (what both executors call);
- :mod:`curate.engine.local`: the in-process executor and :func:`~curate.engine.local.run_recipe`
  (the Prefect executor is ``flows.executor``);
- :mod:`curate.engine.hooks`: after-publish work (Argilla push, refresh log, artifacts);
- units: ``plan`` (recipe -> inputs), ``shards`` (one file -> a shard; signatures), ``batch`` (one
  batch through conversion and validation), ``stage_runner`` (filters and dedup over all shards),
  ``refresh`` (what is new), ``accounting``, ``run_folder``, ``report``, ``artifacts``, ``progress``.
"""
