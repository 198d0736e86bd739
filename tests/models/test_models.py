"""Every registered model runs the shared checks (timm-style), whatever its task."""

import json

import pytest

import zoo
from tests import helpers

MODELS = zoo.list_models()


def _tiny_build(name):
    """What the shared checks build for `name`: its builder's code and its default config under its test_config."""
    spec = zoo.model_info(name)
    return spec.builder.__code__, json.dumps(dict(spec.default_config, **spec.test_config), sort_keys=True, default=str)


# Variants whose test_config overrides everything that sets them apart (GPT-2's published shapes all
# shrink to the same tiny network) build one network: the full checks run once on it, the first variant.
TESTED_BUILDS = {}
for _name in MODELS:
    TESTED_BUILDS.setdefault(_tiny_build(_name), _name)
ALIKE = {name: TESTED_BUILDS[_tiny_build(name)] for name in MODELS if name not in TESTED_BUILDS.values()}


def test_all_families_are_registered():
    for name in ["simple_rnn_classifier", "lstm_classifier", "bilstm_classifier", "gru_classifier",
                 "bigru_classifier", "transformer_classifier", "cnn_classifier", "gpt2_tiny"]:
        assert name in MODELS


@pytest.mark.parametrize("name", sorted(TESTED_BUILDS.values()))
def test_model(name, tmp_path):
    model = helpers.run_model_test(name)
    helpers.run_model_saving_test(model, tmp_path)
    helpers.run_config_test(model)
    helpers.run_export_test(model, tmp_path)


@pytest.mark.parametrize("name", sorted(ALIKE))
def test_a_variant_that_builds_like_a_tested_one_builds_the_same_network(name):
    tested = ALIKE[name]
    model, reference = helpers.build_tiny(name), helpers.build_tiny(tested)
    assert model.count_params() == reference.count_params()
    assert [(w.path, tuple(w.shape)) for w in model.weights] == [(w.path, tuple(w.shape)) for w in reference.weights]
    # The same config but for names (the variant's own, and the numbered ones Keras gives each new layer).
    assert _without_names(model.get_config()) == _without_names(reference.get_config())
    helpers.run_config_test(model)


def _without_names(config):
    if isinstance(config, dict):
        return {key: _without_names(value) for key, value in config.items() if key != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(value) for value in config]
    return config
