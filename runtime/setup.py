"""zoo-runtime: run zoo's exported LiteRT / ONNX files with no TensorFlow (Raspberry Pi, app back ends).

    pip install ./runtime                 # from a zoo checkout
    pip install './runtime[onnx]'         # also .onnx files (ONNX Runtime)

Ships `zoo/__init__.py`, `zoo/extras.py`, `zoo.runtime` and the pure-Python tokenizers
(`zoo.preprocessing.reference`, `zoo.preprocessing.bpe_reference`) from the
same source files as the full `zoo` distribution, so the two never drift.
Install one or the other: the full `zoo` already contains all of this.
"""

import pathlib
import shutil

from setuptools import setup

SOURCE = pathlib.Path(__file__).resolve().parent.parent / "zoo"
# Every module of zoo.runtime (a new runner is picked up with no change here), zoo.extras (the runners name the
# extra a missing engine comes with), and the pure-Python tokenizers.
FILES = ["__init__.py", "extras.py",
         *sorted(str(path.relative_to(SOURCE)) for path in (SOURCE / "runtime").glob("*.py")),
         "preprocessing/reference.py", "preprocessing/bpe_reference.py"]
# zoo.preprocessing's own __init__ would load the Keras tokenizer on demand; the runtime needs only this.
PREPROCESSING_INIT = '"""zoo-runtime: the pure-Python tokenizers only."""\n'


def copy_sources(staging):
    """The full package's files, copied beside this setup.py (setuptools cannot map a folder outside it)."""
    shutil.rmtree(staging, ignore_errors=True)
    for name in FILES:
        (staging / "zoo" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE / name, staging / "zoo" / name)
    (staging / "zoo" / "preprocessing" / "__init__.py").write_text(PREPROCESSING_INIT)


if SOURCE.is_dir():  # building from a checkout; an sdist already holds the copies
    copy_sources(pathlib.Path(__file__).resolve().parent / "src")

setup(
    name="zoo-runtime",
    version="0.1.0",
    description="Run zoo's exported text models (LiteRT, ONNX) without TensorFlow",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=["zoo", "zoo.runtime", "zoo.preprocessing"],
    install_requires=["numpy>=1.26", "regex>=2023.0", "ai-edge-litert>=2.0"],
    # Named as the full distribution's extras, so zoo.extras's hints hold for both.
    extras_require={"onnx": ["onnxruntime>=1.20"], "mediapipe": ["mediapipe==1.2.3"],
                    "litertlm": ["litert-lm-api==0.18.1"]},
)
