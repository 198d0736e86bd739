"""`ByClass`: a registry keyed by class, looked up along an object's class hierarchy (as keras-hub's
export specs are found by isinstance), with its entries in the modules of one package.

The export's task and architecture registries are two of these: each maps a
Keras class (a task model, a backbone) to one instance of the class that
knows how to export it.
"""

import importlib
import pkgutil


class ByClass:
    """Args:
        kind: what an entry is, for messages ("recipe", "export task").
        package: the package whose every module registers entries when imported; they are
            imported on the first lookup (they import their model families, TensorFlow among them).
    """

    def __init__(self, kind, package):
        self.kind, self.package = kind, package
        self._entries = {}

    def register(self, *classes):
        """Class decorator: an instance of the decorated class serves `classes` and their subclasses."""

        def decorator(entry_class):
            for cls in classes:
                if cls in self._entries:
                    raise ValueError(f"{cls.__name__} already has the {self.kind} "
                                     f"{type(self._entries[cls]).__name__}")
                self._entries[cls] = entry_class()
            return entry_class

        return decorator

    def lookup(self, obj):
        """The entry of `obj`'s nearest registered class, or None."""
        self.entries()
        return next((self._entries[cls] for cls in type(obj).__mro__ if cls in self._entries), None)

    def entries(self):
        """`{class: entry}`, every module of the package imported."""
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")
        return dict(self._entries)
