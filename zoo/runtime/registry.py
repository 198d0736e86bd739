"""Which runner runs an exported file: by the task its sidecar names and the file's suffix.

A runner module registers its class with `@register_runner(task, suffixes)`.
Besides running files for users, a runner class gives:

    probe(model_path, runtime, inputs) -> {output: array}
        (classmethod) run the file on validation inputs on one runtime, as
        `zoo.runtime.validation_probe` does for every exported file;
    RUNTIMES: {suffix: runtimes}, the runtimes `probe` takes per suffix.

The task's sidecar fields are checked by a function registered with
`@sidecar_fields(task)`: `check(field, spec)`, `field` a `sidecar.Fields`;
and against the model file's tensors by one registered with
`@sidecar_fits_model(task)`: `check(spec, shapes, sidecar_path)`, `shapes`
`{(signature, tensor name): shape}` as the file declares them.

A file that carries everything itself (a `.litertlm` bundle) has no sidecar:
its runner registers with `sidecar=False`, and its suffix alone names the task.
"""

_RUNNERS = {}  # task -> {suffix: runner class}
_SELF_CONTAINED = {}  # suffix -> task
_SIDECAR_CHECKS = {}  # task -> check(field, spec)
_MODEL_CHECKS = {}  # task -> check(spec, shapes, sidecar_path)


def register_runner(task, suffixes, sidecar=True):
    def decorator(runner_class):
        for suffix in suffixes:
            if suffix in _RUNNERS.setdefault(task, {}):
                raise ValueError(f"{task} {suffix} files already run with {_RUNNERS[task][suffix].__name__}")
            _RUNNERS[task][suffix] = runner_class
            if not sidecar:
                _SELF_CONTAINED[suffix] = task
        return runner_class

    return decorator


def tasks():
    return tuple(_RUNNERS)


def suffixes(task):
    """The file suffixes a runner of `task` runs (none for an unknown task)."""
    return tuple(_RUNNERS.get(task, ()))


def runner_class(task, suffix):
    try:
        return _RUNNERS[task][suffix]
    except KeyError:
        raise ValueError(f"no zoo runner runs {task} {suffix} files; "
                         f"{task} files: {', '.join(suffixes(task)) or 'none'}") from None


def self_contained_task(suffix):
    """The task of a file with no sidecar (a `.litertlm` bundle), or None."""
    return _SELF_CONTAINED.get(suffix)


def _checks(table):
    def register(task):
        def decorator(check):
            table[task] = check
            return check

        return decorator

    return register


# Decorators: `@sidecar_fields(task)` checks `task`'s sidecar fields, `check(field, spec)`;
# `@sidecar_fits_model(task)` checks them against the model file, `check(spec, shapes, sidecar_path)`.
sidecar_fields = _checks(_SIDECAR_CHECKS)
sidecar_fits_model = _checks(_MODEL_CHECKS)


def sidecar_check(task):
    return _SIDECAR_CHECKS[task]


def sidecar_fits_model_check(task):
    return _MODEL_CHECKS[task]
