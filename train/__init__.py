"""Training backend: train recipes onto TRL trainers (SFT, reward, DPO, KTO, ORPO/CPO) with adapters,
pre-flight checks, a reference log-prob cache and lineage. Reads datasets through ``curate.store.load``.

Entry: ``curate train RECIPE`` (``train/cli.py``) -> :func:`train.run.train_recipe`.
"""
