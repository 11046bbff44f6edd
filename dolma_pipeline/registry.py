"""Named, versioned plugins (taggers and the like) and the loading of third-party plugin modules."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from dolma_pipeline.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps versioned names (`gopher_v1`) to classes.

    Built-in and installed plugins register themselves when the modules of the entry-point group
    `entry_point_group` are imported; `--tagger_modules` adds modules by name or file path.
    """

    def __init__(self, kind: str, entry_point_group: str):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, type[T]] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            existing = self._items.get(name)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise ConfigError(f"{self.kind} name {name!r} is registered twice ({existing} and {cls})")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return decorator

    def load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry_point in importlib.metadata.entry_points(group=self.entry_point_group):
            entry_point.load()

    def get(self, name: str) -> type[T]:
        self.load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid choices: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        self.load_plugins()
        return sorted(self._items)

    def items(self) -> list[tuple[str, type[T]]]:
        return [(name, self._items[name]) for name in self.names()]


def import_modules(specs: Iterable[str]) -> None:
    """Import plugin modules given by dotted name or by path to a `.py` file (as Dolma's --tagger_modules)."""
    for spec in specs:
        if spec.endswith(".py") or os.sep in spec:
            path = os.path.abspath(spec)
            if not os.path.isfile(path):
                raise ConfigError(f"tagger module file not found: {spec}")
            name = "dolma_plugin_" + hashlib.sha1(path.encode()).hexdigest()[:12]
            if name in sys.modules:
                continue
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except Exception:
                del sys.modules[name]
                raise
        else:
            try:
                importlib.import_module(spec)
            except ImportError as e:
                raise ConfigError(f"cannot import tagger module {spec!r}: {e}") from None
