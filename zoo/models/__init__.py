"""Model families. Importing this package registers every model."""

from zoo.models import cnn, gpt2, recurrent, transformer  # noqa: F401  (registers models)
from zoo.models import multi_label_text_classifier  # noqa: F401  (registers models)
from zoo.models.cnn import CNNBackbone
from zoo.models.recurrent import RecurrentBackbone
from zoo.models.text_classifier import TextClassifier
from zoo.models.text_classifier_preprocessor import TextClassifierPreprocessor
from zoo.models.transformer import TransformerBackbone
