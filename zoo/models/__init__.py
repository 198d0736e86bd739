"""Model families and the registry they fill.

Importing this package imports every family module, each of which registers
its models, and re-exports the registry's functions: this is where models are
looked up and built (`zoo.create_model` and friends resolve here). Loading a
zoo `.keras` file with `keras.saving.load_model` needs this import first, as
keras-hub's files need `import keras_hub` (`zoo.load_model` does it for you).

Example:
>>> from zoo.models import create_model, list_models
>>> list_models("*gru*")
['bigru_classifier', 'gru_classifier']
>>> model = create_model("gru_classifier", hidden_dim=32)
"""

import keras

# zoo's preprocessing and exporters are TensorFlow graphs (`import zoo` pins
# the backend unless the user chose another before).
if keras.config.backend() != "tensorflow":
    raise ImportError(f"zoo needs the TensorFlow Keras backend; KERAS_BACKEND is {keras.config.backend()!r}")

from zoo.models import cnn, gpt2, recurrent, transformer  # noqa: F401  (each registers its models)
from zoo.models import lstm_lm  # noqa: F401  (registers the LSTM language models)
from zoo.models import multi_label_text_classifier  # noqa: F401  (registers the multi-label classifiers)
from zoo.models.cnn import CNNBackbone
from zoo.models.recurrent import RecurrentBackbone
from zoo.models.text_classifier import TextClassifier
from zoo.models.text_classifier_preprocessor import TextClassifierPreprocessor
from zoo.models.transformer import TransformerBackbone
from zoo.registry import ModelSpec, check_config, create_model, list_models, model_info, register_model
