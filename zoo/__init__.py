"""zoo: a Keras 3 / TensorFlow model zoo for text models whose exports deploy.

>>> import zoo
>>> zoo.list_models("*lstm*")
['bilstm_classifier', 'lstm_classifier']
"""

import os

# zoo's preprocessing and exporters are TensorFlow graphs: pin the backend
# before Keras is first imported (an explicit other choice fails loudly in
# zoo.registry).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's default CPU allocator returns big buffers to the OS when they
# are freed, so every training step page-faults and zeroes them again (a
# GPT-2 small step spent 5% of its time in the kernel clearing pages). The
# BFC allocator keeps and reuses them: GPT-2 fine-tuning steps measured
# 12-15% faster. TensorFlow reads this at its first allocation, so it works
# even when TensorFlow was imported first; an explicit setting wins.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

from zoo.data import load_texts  # noqa: E402
from zoo.registry import ModelSpec, create_model, list_models, model_info, register_model  # noqa: E402

# Importing the models registers every family and makes zoo's layers known
# to keras.saving.load_model.
from zoo.models import (  # noqa: E402
    RecurrentBackbone,
    TextClassifier,
    TextClassifierPreprocessor,
    TransformerBackbone,
)
from zoo.preprocessing import ReferenceWordTokenizer, WordTokenizer  # noqa: E402

__version__ = "0.1.0"
