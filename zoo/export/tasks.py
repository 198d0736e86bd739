"""Which export config a model gets, found from its class.

A config (`TextClassifierExport`, `CausalLMExport`) holds everything the
export loop needs to know about one task: its formats and variants, its
validation data and parity rules, and the graph each format converts (with
per-architecture recipes where an architecture needs its own). A new task
registers here; a new architecture of a known task adds its recipe to that
task's config.
"""

import keras_hub

from zoo.export.causal_lm_export import CausalLMExport
from zoo.export.errors import ExportError
from zoo.export.text_classifier_export import TextClassifierExport
from zoo.models.text_classifier import TextClassifier

EXPORT_CONFIGS = {TextClassifier: TextClassifierExport, keras_hub.models.CausalLM: CausalLMExport}


def export_config_for(model):
    for model_class in type(model).__mro__:
        if model_class in EXPORT_CONFIGS:
            return EXPORT_CONFIGS[model_class]()
    raise ExportError(f"{getattr(model, 'name', model)!r}: zoo has no export config for {type(model).__name__}; "
                      f"it exports {', '.join(cls.__name__ for cls in EXPORT_CONFIGS)} models")


def config_for_task(task):
    """The export config class of a registry task name ("text-classification", "causal-lm")."""
    return next(config for config in EXPORT_CONFIGS.values() if config.TASK == task)
