import os

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Fixtures that train or export a model: a test that needs one (directly or through another fixture) is
# slow, whatever it does itself.
HEAVY_FIXTURES = {"tiny_gru", "gru_export", "tiny_gpt2", "gpt2_export", "quick_run", "docs_models",
                  "mediapipe_exact_export", "litert_lm_export"}


def pytest_collection_modifyitems(items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("slow")


# === Tiny trained and exported models, made once per test process and shared read-only ===
# A test that changes a version folder copies it first; one that changes a model builds its own.


@pytest.fixture(scope="session")
def tiny_gru():
    """A tiny GRU classifier (negative / positive) trained on `helpers.TEXTS`."""
    from tests import helpers

    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])
    model.fit(helpers.TEXTS, helpers.LABELS, epochs=3, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="session")
def gru_export(tiny_gru, tmp_path_factory):
    """`tiny_gru` exported as a SavedModel, LiteRT and ONNX (float32 files), validated on `helpers.TEXTS`:
    the version folder."""
    from tests import helpers
    from zoo.export import export

    return export(tiny_gru, root=tmp_path_factory.mktemp("serving"), formats=("saved_model", "litert", "onnx"),
                  variants=(), validation_data=(helpers.TEXTS, helpers.LABELS)).path


@pytest.fixture(scope="session")
def tiny_gpt2():
    """An untrained tiny GPT-2 on the tests' small BPE vocabulary (`helpers.build_tiny`)."""
    from tests import helpers

    return helpers.build_tiny("gpt2_tiny")


@pytest.fixture(scope="session")
def gpt2_export(tiny_gpt2, tmp_path_factory):
    """`tiny_gpt2`'s float32 LiteRT decoder (cache of 64 tokens), validated on `helpers.PROMPTS`: the version folder."""
    from tests import helpers
    from zoo.export import export

    return export(tiny_gpt2, root=tmp_path_factory.mktemp("serving"), formats=("litert",), variants=(),
                  validation_data=helpers.PROMPTS, validation_length=20).path
