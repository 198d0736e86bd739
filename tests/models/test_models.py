"""Every registered model runs the shared checks (timm-style), whatever its task."""

import pytest

import zoo
from tests import helpers

MODELS = zoo.list_models()


def test_all_families_are_registered():
    for name in ["simple_rnn_classifier", "lstm_classifier", "bilstm_classifier", "gru_classifier",
                 "bigru_classifier", "transformer_classifier", "cnn_classifier", "gpt2_tiny"]:
        assert name in MODELS


@pytest.mark.parametrize("name", MODELS)
def test_model(name, tmp_path):
    model = helpers.run_model_test(name)
    helpers.run_model_saving_test(model, tmp_path)
    helpers.run_config_test(model)
    helpers.run_export_test(model, tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_export_formats_in_the_registry_are_what_the_exporter_writes(name):
    from zoo.export.formats import formats_for_task

    spec = zoo.model_info(name)
    assert set(spec.export_formats) == {"keras", *formats_for_task(spec.task)}
