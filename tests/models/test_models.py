"""Every registered model runs the shared checks (timm-style), whatever its task: zoo's own
(`tests/helpers.py`) and keras-hub's (`keras_hub/src/tests/test_case.py`, shipped in its wheel)."""

import json

import keras
import numpy as np
import pytest
from keras_hub.src.tests import test_case

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


@pytest.mark.slow
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


class KerasHubChecks(test_case.TestCase):
    """keras-hub's test helpers (`run_backbone_test`, ...) called from pytest: they are methods of its
    unittest class, and write what they save under `get_temp_dir()`."""

    __test__ = False

    def __init__(self, temp_dir):
        super().__init__()
        self.temp_dir = str(temp_dir)

    def get_temp_dir(self):
        return self.temp_dir


def _init_kwargs(instance, **objects):
    """What rebuilds `instance`: its config, less the arguments every Keras object takes, with `objects` (the
    sub-layers a config only serializes) in place."""
    config = {key: value for key, value in instance.get_config().items() if key not in ("name", "trainable", "dtype")}
    return dict(config, **objects)


def _token_inputs(backbone, length, batch_size=2):
    """One array per input the backbone declares: token ids `[batch_size, length]` (the last row ends in padding)
    and, where it takes one, their padding mask."""
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, backbone.vocabulary_size, size=(batch_size, length), dtype="int32")
    token_ids[-1, length * 2 // 3:] = 0

    def array_for(spec):
        if spec.dtype == "bool":
            return token_ids != 0
        if "int" in spec.dtype:
            return token_ids
        raise AssertionError(f"{backbone.name}: no test input for {spec.name} ({spec.dtype})")

    return keras.tree.map_structure(array_for, backbone.input)


def _concrete_shape(symbolic_shape, batch_size, length):
    """`symbolic_shape` with its batch axis and any unknown sequence axis filled in."""
    return (batch_size,) + tuple(length if size is None else size for size in symbolic_shape[1:])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TESTED_BUILDS.values()))
def test_backbone_passes_keras_hubs_backbone_and_saving_tests(name, tmp_path):
    model = helpers.build_tiny(name)
    backbone = model.backbone
    # At the window the model reads; keras-hub's test also cuts the ids to 2, 3 and 4 tokens.
    length = model.preprocessor.sequence_length
    inputs = _token_inputs(backbone, length)
    checks = KerasHubChecks(tmp_path)
    checks.run_backbone_test(
        cls=type(backbone),
        init_kwargs=_init_kwargs(backbone),
        input_data=inputs,
        expected_output_shape=keras.tree.map_structure(
            lambda output: _concrete_shape(output.shape, 2, length), backbone.output),
    )
    checks.run_model_saving_test(cls=type(backbone), init_kwargs=_init_kwargs(backbone), input_data=inputs)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TESTED_BUILDS.values()))
def test_task_and_preprocessor_pass_keras_hubs_tests(name, tmp_path):
    model = helpers.build_tiny(name)
    preprocessor = model.preprocessor
    train_data = tuple(part[:4] for part in helpers.case_for(name).TRAIN_DATA)
    checks = KerasHubChecks(tmp_path)
    checks.init_kwargs = _init_kwargs(preprocessor, tokenizer=preprocessor.tokenizer)
    outputs = preprocessor(*train_data)[0]
    checks.run_preprocessor_test(
        cls=type(preprocessor),
        init_kwargs=checks.init_kwargs,
        input_data=train_data,
        # zoo's classifiers take the ids tensor itself, keras-hub's tasks a dict of them.
        token_id_key="token_ids" if isinstance(outputs, dict) else Ellipsis,
    )
    checks.run_task_test(
        cls=type(model),
        init_kwargs=_init_kwargs(model, backbone=model.backbone, preprocessor=preprocessor),
        train_data=train_data,
        expected_output_shape=_concrete_shape(model.output.shape, len(train_data[0]), preprocessor.sequence_length),
    )
