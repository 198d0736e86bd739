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
