"""Export tasks: what each task gives the export, found from the model's class.

An `ExportTask` (`base.py`) speaks only in format-neutral graphs and
validation rules; `@register_task(model_class)` records which Keras task
classes it exports. Every module of this package is imported on the first
lookup, so a new task is one module here.
"""

from zoo.export.by_class import ByClass
from zoo.export.errors import ExportError

_TASKS = ByClass("export task", __name__)


def register_task(*model_classes):
    """Class decorator: the export task of these Keras model classes (and their subclasses)."""
    return _TASKS.register(*model_classes)


def task_for(model):
    """The export task of `model`'s nearest registered class."""
    task = _TASKS.lookup(model)
    if task is None:
        exported = sorted(cls.__name__ for cls in _TASKS.entries())
        raise ExportError(f"{getattr(model, 'name', model)!r}: zoo has no export task for {type(model).__name__}; "
                          f"it exports {', '.join(exported)} models")
    return task


def task_named(name):
    """The export task registered under a registry task name ("text-classification", ...)."""
    tasks = {task.name: task for task in _TASKS.entries().values()}
    if name not in tasks:
        raise ExportError(f"no export task named {name!r}; known: {sorted(tasks)}")
    return tasks[name]
