"""The registry: listing, specs, creation, errors with suggestions."""

import dataclasses
import json
import subprocess
import sys

import pytest

import zoo
from zoo.registry import ModelSpec


def test_list_models_patterns_and_task():
    assert zoo.list_models("*lstm_classifier") == ["bilstm_classifier", "lstm_classifier"]
    assert zoo.list_models("lstm_lm*") == ["lstm_lm", "lstm_lm_large", "lstm_lm_medium", "lstm_lm_small"]
    everything = zoo.list_models()
    assert everything == sorted(everything)
    assert zoo.list_models(task="text-classification") == [n for n in everything if zoo.model_info(n).task == "text-classification"]
    assert zoo.list_models("nothing*") == []


def test_model_info_is_immutable():
    spec = zoo.model_info("lstm_classifier")
    assert isinstance(spec, ModelSpec)
    assert spec.family == "lstm" and spec.task == "text-classification"
    assert spec.description == "Embedding + LSTM text classifier (the default model)."
    assert "export_formats" not in spec.to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"
    with pytest.raises(TypeError):
        spec.default_config["hidden_dim"] = 1


def test_every_classifier_takes_the_shared_keywords():
    shared = {"vocabulary_size", "sequence_length", "num_classes", "embedding_dim", "hidden_dim", "dropout"}
    for name in zoo.list_models(task="text-classification"):
        assert shared <= set(zoo.model_info(name).default_config), name
    assert "num_heads" in zoo.model_info("transformer_classifier").default_config


def test_create_model_applies_overrides():
    model = zoo.create_model("gru_classifier", hidden_dim=7, sequence_length=9, num_classes=3)
    assert model.backbone.hidden_dim == 7
    assert model.sequence_length == 9
    assert model.output_shape == (None, 3)
    assert model.class_names == ["0", "1", "2"]


def test_unknown_name_suggests_close_matches():
    with pytest.raises(KeyError, match="did you mean 'lstm_classifier'"):
        zoo.model_info("lstm_clasifier")
    with pytest.raises(KeyError, match="known: "):
        zoo.create_model("zzzz")


def test_unknown_override_suggests_close_keys():
    with pytest.raises(TypeError, match="unknown option 'hiden_dim'; did you mean 'hidden_dim'"):
        zoo.create_model("lstm_classifier", hiden_dim=3)


def test_register_model_and_duplicates():
    @zoo.register_model(task="text-classification", family="test", default_config={"hidden_dim": 4})
    def _test_only_classifier(**config):
        """A test-only entry."""
        return config

    try:
        assert zoo.create_model("_test_only_classifier", hidden_dim=5) == {"hidden_dim": 5}
        assert zoo.model_info("_test_only_classifier").description == "A test-only entry."
        with pytest.raises(ValueError, match="already registered"):
            zoo.register_model(task="x", family="y", default_config={})(_test_only_classifier)
    finally:
        from zoo import registry

        registry._REGISTRY._specs.pop("_test_only_classifier")


def test_every_spec_carries_a_tiny_test_config_of_its_own_keys():
    for name in zoo.list_models():
        spec = zoo.model_info(name)
        assert spec.test_config and set(spec.test_config) <= set(spec.default_config), name
    with pytest.raises(ValueError, match=r"test_config sets \['widht'\]"):
        zoo.register_model(task="x", family="y", default_config={"width": 1}, test_config={"widht": 2})(
            lambda **config: config)


# The classifier defaults as registered before they were shared through `CLASSIFIER_DEFAULTS`: every
# family's trained numbers (README, benchmarks) were measured with exactly these.
_CLASSIFIER = dict(vocabulary_size=20000, sequence_length=64, num_classes=2, class_names=None, vocabulary=None,
                   lower=True, punctuation="split", min_count=2, learning_rate=3e-4, naive_bayes_buckets=2**18)
_RECURRENT = dict(_CLASSIFIER, embedding_dim=128, hidden_dim=64, num_layers=1, dropout=0.5, pooling="max")
REGISTERED_CLASSIFIER_DEFAULTS = {
    **{name: _RECURRENT for name in ["simple_rnn_classifier", "lstm_classifier", "bilstm_classifier",
                                     "gru_classifier", "bigru_classifier"]},
    "cnn_classifier": dict(_CLASSIFIER, embedding_dim=128, hidden_dim=100, kernel_sizes=(3, 4, 5), dropout=0.5),
    "transformer_classifier": dict(_CLASSIFIER, embedding_dim=64, hidden_dim=128, num_layers=2, num_heads=4,
                                   dropout=0.3),
}


@pytest.mark.parametrize("name", sorted(REGISTERED_CLASSIFIER_DEFAULTS))
def test_registered_classifier_defaults_are_unchanged(name):
    assert dict(zoo.model_info(name).default_config) == REGISTERED_CLASSIFIER_DEFAULTS[name]


def _run_python(code):
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


@pytest.mark.slow
def test_the_registry_is_a_leaf_and_import_zoo_registers_nothing_behind_the_users_back():
    loaded = json.loads(_run_python(
        "import json, sys, zoo, zoo.registry; "
        "print(json.dumps({'modules': sorted(m for m in sys.modules if m.partition('.')[0] in "
        "('zoo', 'keras', 'keras_hub', 'tensorflow')), 'hooks': [type(f).__name__ for f in sys.meta_path], "
        "'registered': zoo.registry.list_models()}))"))
    assert loaded["modules"] == ["zoo", "zoo.registry"]
    assert not any("Register" in hook for hook in loaded["hooks"]), loaded["hooks"]
    assert loaded["registered"] == []
    # Importing Keras alone registers nothing either: zoo's classes come with zoo.models.
    assert _run_python("import zoo, keras; print(keras.saving.get_registered_object('zoo>TextClassifier'))") == "None"


def test_public_names_resolve_through_zoo_models():
    from zoo import models

    assert zoo.create_model is models.create_model and zoo.list_models is models.list_models
    assert zoo.model_info is models.model_info and zoo.register_model is models.register_model
    assert "lstm_classifier" in models.list_models()


def test_an_empty_registry_says_to_import_zoo_models():
    from zoo import registry

    with pytest.raises(KeyError, match="import zoo.models"):
        registry._Registry().spec("lstm_classifier")


def test_zoo_info_prints_the_formats_the_exporter_writes_for_the_task(capsys):
    from zoo.cli import main
    from zoo.export.formats import formats_for_task

    for name, task in [("lstm_classifier", "text-classification"), ("gpt2_tiny", "causal-lm")]:
        assert main(["info", name]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["name"] == name and info["task"] == task
        assert info["export_formats"] == list(formats_for_task(task)) != []


def test_the_catalog_is_the_registry_written_down():
    from zoo import catalog

    assert catalog.load() == catalog.build(), "zoo/catalog.json is stale: run python -m zoo.catalog"
    assert catalog.names("*gru*") == zoo.list_models("*gru*")
    assert catalog.names(task="causal-lm") == zoo.list_models(task="causal-lm")


def test_zoo_list_and_info_answer_without_importing_tensorflow():
    import subprocess
    import sys

    script = ("import sys\nfrom zoo.cli import main\nfor argv in (['list'], ['list', '*lstm*'], ['info', 'gru_classifier'],"
              " ['info', 'no_such_model']):\n    main(argv)\n"
              "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "False False"
    assert any(line.startswith("gru_classifier ") and "text-classification" in line for line in lines)
    assert '"name": "gru_classifier"' in result.stdout
    assert "unknown model 'no_such_model'" in result.stderr
