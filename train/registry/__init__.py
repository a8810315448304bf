"""The model registry: immutable versions ``NAME@N`` of trained runs, aliases that move atomically,
and the promotion gate (see :mod:`train.registry.versions`, :mod:`train.registry.gate`)."""

from train.registry.versions import Registry, RegistryError, register_run, resolve

__all__ = ["Registry", "RegistryError", "register_run", "resolve"]
