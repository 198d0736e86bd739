"""Every registered classifier runs the shared checks (timm-style)."""

import pytest

import zoo
from tests import helpers

CLASSIFIERS = zoo.list_models(task="text-classification")


def test_all_five_families_are_registered():
    for name in ["simple_rnn_classifier", "lstm_classifier", "bilstm_classifier", "gru_classifier", "transformer_classifier"]:
        assert name in CLASSIFIERS


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_model(name, tmp_path):
    model = helpers.run_model_test(name)
    helpers.run_model_saving_test(model, tmp_path)
    helpers.run_config_test(model)
    helpers.run_export_test(model, tmp_path)
