"""Export tasks: what each task gives the export, found from the model's class.

An `ExportTask` (`base.py`) speaks only in format-neutral graphs and
validation rules; `@register_task(model_class)` records which Keras task
classes it exports. Every module of this package is imported on the first
lookup, so a new task is one module here.
"""

import importlib
import pkgutil

from zoo.export.errors import ExportError

_TASKS = {}


def register_task(*model_classes):
    """Class decorator: the export task of these Keras model classes (and their subclasses)."""

    def decorator(task_class):
        for model_class in model_classes:
            if model_class in _TASKS:
                raise ValueError(f"{model_class.__name__} already exports as {type(_TASKS[model_class]).__name__}")
            _TASKS[model_class] = task_class()
        return task_class

    return decorator


def task_for(model):
    """The export task of `model`'s nearest registered class."""
    _import_tasks()
    for model_class in type(model).__mro__:
        if model_class in _TASKS:
            return _TASKS[model_class]
    exported = sorted({cls.__name__ for cls in _TASKS})
    raise ExportError(f"{getattr(model, 'name', model)!r}: zoo has no export task for {type(model).__name__}; "
                      f"it exports {', '.join(exported)} models")


def task_named(name):
    """The export task registered under a registry task name ("text-classification", ...)."""
    _import_tasks()
    for task in _TASKS.values():
        if task.name == name:
            return task
    raise ExportError(f"no export task named {name!r}; known: {sorted({task.name for task in _TASKS.values()})}")


def _import_tasks():
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
