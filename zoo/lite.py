"""Run zoo's LiteRT files with the stock `ai_edge_litert` interpreter.

Everything the runner needs sits in the sidecar JSON next to the `.tflite`
file (`model.tflite` -> `model.json`): vocabulary and tokenizer rules,
sequence length, labels and tensor names. Tokenization is the pure-Python
`zoo.preprocessing.reference` tokenizer, the same code a phone app ports, so
no TensorFlow is needed here.

Example:
>>> runner = TextClassifierRunner("saved_models/lstm_classifier/1/litert/model.tflite")
>>> runner.predict_labels(["a gorgeous, witty, seductive movie."])
[('pos', 0.91)]
"""

import json
import pathlib

import numpy as np

from zoo.preprocessing.reference import ReferenceWordTokenizer

SIDECAR_FORMAT = "zoo.text_classifier.litert/1"


def sidecar_path(model_path):
    return pathlib.Path(model_path).with_suffix(".json")


class TextClassifierRunner:
    """Raw strings in, class probabilities out, through a LiteRT file.

    Args:
        model_path: the `.tflite` file; its sidecar is `<same name>.json`.
        num_threads: interpreter threads.
        delegates: False runs the plain builtin kernels with no delegate at
            all (what zoo's export validation uses); True lets LiteRT apply
            its default XNNPACK delegate, as an app would.
    """

    def __init__(self, model_path, num_threads=2, delegates=True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.model_path = pathlib.Path(model_path)
        sidecar = sidecar_path(self.model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"{self.model_path}: no such LiteRT file")
        if not sidecar.is_file():
            raise FileNotFoundError(f"{sidecar}: sidecar JSON missing (it is written next to the .tflite file)")
        self.spec = json.loads(sidecar.read_text(encoding="utf-8"))
        if self.spec.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"{sidecar}: field 'format': expected {SIDECAR_FORMAT!r}, got {self.spec.get('format')!r}")
        self.tokenizer = ReferenceWordTokenizer.from_json(sidecar)
        self.class_names = list(self.spec["labels"])
        resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interpreter = Interpreter(
            model_path=str(self.model_path), num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        self._signature = self.interpreter.get_signature_runner(self.spec["signature"])
        self._input_name = self.spec["input"]["name"]
        self._output_name = self.spec["output"]["name"]

    def predict_token_ids(self, token_ids):
        """Probabilities `[n, num_classes]` for int32 ids `[n, sequence_length]`."""
        # Imported here: zoo.export imports this module (sidecar names).
        from zoo.export.litert_probe import run_in_batches

        probabilities = run_in_batches(self._signature, token_ids, self._input_name, self._output_name)
        if probabilities is None:
            return np.zeros((0, len(self.class_names)), np.float32)
        return probabilities

    def predict(self, texts):
        """Probabilities `[len(texts), num_classes]` for raw strings."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of strings, not one string")
        return self.predict_token_ids(self.tokenizer.encode(list(texts)))

    def predict_labels(self, texts):
        """`(class_name, probability)` for each text."""
        probabilities = self.predict(texts)
        best = probabilities.argmax(axis=-1)
        return [(self.class_names[i], float(row[i])) for i, row in zip(best, probabilities)]
