"""Imports on first use for the package and its sub-packages: importing one runs none of its modules; a name is
imported from the module that defines it the first time it is asked for (as PEP 562's module `__getattr__`). So the
command line's parser and `bendlab operators` do not pay for torch and diffusers, which most modules import."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def exports(package: str, modules: dict[str, tuple[str, ...]]) -> list[str]:
    """Called by the `__init__` of `package`: `modules` maps each of its modules (relative, dotted) to the names it
    offers as the package's, imported on first use; any other attribute that names a sub-module is that module,
    imported. Returns the names (the package's `__all__`)."""
    where = {name: module for module, names in modules.items() for name in names}

    class Package(ModuleType):
        def __getattr__(self, name: str):
            if name in where:
                value = getattr(importlib.import_module(f".{where[name]}", package), name)
            else:
                try:
                    value = importlib.import_module(f".{name}", package)
                except ModuleNotFoundError as e:
                    if e.name != f"{package}.{name}":
                        raise  # a module of ours that failed to import, not a missing attribute
                    raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
            setattr(self, name, value)  # looked up once
            return value

        def __setattr__(self, name: str, value) -> None:
            # Python sets a sub-module as its package's attribute once it is imported; where the package offers a
            # name of that module's own (video.mux, bend.render), the name stays what it offers, as an eager
            # `from .mux import mux` left it, whichever was imported first
            if isinstance(value, ModuleType) and where.get(name) == name:
                return
            super().__setattr__(name, value)

        def __dir__(self) -> list[str]:
            return sorted(set(vars(self)) | set(where))

    sys.modules[package].__class__ = Package
    return list(where)
