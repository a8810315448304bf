"""Evaluators: small metric units over a dataset version's eval split (see :mod:`train.eval.base`)."""
