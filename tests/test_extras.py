"""Optional runtimes behind pip extras (`zoo.extras`): a missing one is named with its extra, in one line.

A missing extra is simulated the way Python itself reports one: `sys.modules[name] = None` makes
`import name` raise ModuleNotFoundError (in this process, or in a child started for the CLI).
"""

import ast
import pathlib
import re
import runpy
import subprocess
import sys

import pytest

from tests import helpers
from zoo import extras

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The extras that bring a runtime beyond the core; `all` is every one of them.
RUNTIME_EXTRAS = ("onnx", "mediapipe", "litertlm", "beam")


def hide(monkeypatch, *modules):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def zoo_without(modules, *args, cwd):
    """`zoo ARGS` in a child process in which `modules` are not installed."""
    code = (f"import sys\nfor name in {list(modules)!r}: sys.modules[name] = None\n"
            f"from zoo.cli import main\nsys.exit(main({[str(arg) for arg in args]!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=600)


def one_error_line(result):
    """Exit status 2, no traceback, and the message on exactly one `zoo ...: error:` line."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def setup_arguments(path):
    """What setup.py passes to `setup()`, read by running it with `setup` replaced."""
    import setuptools

    captured = {}
    original = setuptools.setup
    setuptools.setup = lambda **arguments: captured.update(arguments)
    try:
        runpy.run_path(str(path))
    finally:
        setuptools.setup = original
    return captured


@pytest.mark.parametrize("module", sorted(extras.MODULE_EXTRAS))
def test_a_missing_module_names_its_extra_in_one_line(monkeypatch, module):
    hide(monkeypatch, module)
    assert not extras.installed(module)
    with pytest.raises(extras.MissingExtraError) as raised:
        extras.require(module, "the thing")
    extra = extras.MODULE_EXTRAS[module].extra
    assert str(raised.value) == f"the thing needs {extras.MODULE_EXTRAS[module].what}: pip install 'zoo[{extra}]'"
    # Still a ModuleNotFoundError, for code that tells "not installed" apart that way.
    assert isinstance(raised.value, ModuleNotFoundError) and raised.value.name == module


def test_an_installed_module_is_imported_and_an_unmapped_one_is_refused():
    import onnxruntime

    assert extras.installed("onnxruntime") and extras.require("onnxruntime", "x") is onnxruntime
    with pytest.raises(KeyError, match="'numpy' is not an optional module of zoo"):
        extras.require("numpy", "x")


def test_the_runtime_only_distribution_is_told_its_own_extra(monkeypatch):
    # zoo-runtime ships zoo.runtime without zoo.export: `pip install 'zoo[onnx]'` would pull TensorFlow.
    hide(monkeypatch, "onnxruntime", "zoo.export")
    with pytest.raises(extras.MissingExtraError, match=r"pip install 'zoo-runtime\[onnx\]'$"):
        extras.require("onnxruntime", "model.onnx")


def test_setup_py_has_every_mapped_extra_and_keeps_them_out_of_the_core(monkeypatch):
    monkeypatch.chdir(ROOT)  # setup.py reads README.md from where it runs
    arguments = setup_arguments(ROOT / "setup.py")
    extras_require = arguments["extras_require"]
    for module, optional in extras.MODULE_EXTRAS.items():
        assert optional.extra in extras_require, f"{module}: setup.py has no extra {optional.extra!r}"
    assert set(RUNTIME_EXTRAS) == {optional.extra for optional in extras.MODULE_EXTRAS.values()}
    assert sorted(extras_require["all"]) == sorted({requirement for extra in RUNTIME_EXTRAS
                                                    for requirement in extras_require[extra]})
    optional_requirements = {requirement for extra in RUNTIME_EXTRAS for requirement in extras_require[extra]}
    assert not optional_requirements & set(arguments["install_requires"])
    for kept in ("test", "bench", "peers"):
        assert kept in extras_require


def test_the_runtime_distribution_ships_zoo_extras_and_its_runners_extras():
    source = (ROOT / "runtime" / "setup.py").read_text()
    call = next(node for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    extras_require = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "extras_require"))
    # The engines zoo.runtime's runners open; each hint names an extra zoo-runtime has.
    for module in ("onnxruntime", "mediapipe", "litert_lm"):
        assert extras.MODULE_EXTRAS[module].extra in extras_require
    files = next(node for node in ast.parse(source).body
                 if isinstance(node, ast.Assign) and node.targets[0].id == "FILES")
    assert "extras.py" in [element.value for element in files.value.elts if isinstance(element, ast.Constant)]


def test_python_m_zoo_beam_without_beam_says_which_extra_in_one_line():
    code = ("import runpy, sys; sys.modules['apache_beam'] = None; sys.argv = ['zoo.beam', '--help']; "
            "runpy.run_module('zoo.beam', run_name='__main__')")
    finished = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                              cwd=pathlib.Path(__file__).resolve().parent.parent)
    assert finished.returncode == 1
    assert finished.stderr.strip() == "python -m zoo.beam: zoo.beam needs Apache Beam: pip install 'zoo[beam]'"


def test_each_runner_names_the_extra_of_its_engine(monkeypatch, tmp_path):
    from zoo.runtime import backends
    from zoo.runtime.litertlm_runner import LiteRTLMGenerator
    from zoo.runtime.mediapipe_runner import MediaPipeTextClassifier

    hide(monkeypatch, "onnxruntime", "mediapipe", "litert_lm")
    with pytest.raises(extras.MissingExtraError, match=r"model.onnx needs ONNX Runtime: pip install 'zoo\[onnx\]'"):
        backends.open_model(tmp_path / "model.onnx")
    with pytest.raises(extras.MissingExtraError, match=r"needs MediaPipe: pip install 'zoo\[mediapipe\]'"):
        MediaPipeTextClassifier(tmp_path / "model.tflite")
    with pytest.raises(extras.MissingExtraError,
                       match=r"model.litertlm needs the LiteRT-LM engine: pip install 'zoo\[litertlm\]'"):
        LiteRTLMGenerator(tmp_path / "model.litertlm")


def test_a_default_format_without_its_extra_is_skipped_with_the_extra_named(monkeypatch):
    from zoo.export import exporter
    from zoo.export.tasks import task_for

    model = helpers.build_tiny("gru_classifier", class_names=["negative", "positive"])  # built, not trained
    hide(monkeypatch, "tf2onnx")
    plan, skipped = exporter._plan(task_for(model), model, None, ("dynamic_int8",))
    assert [(module.NAME, variant) for module, variant in plan] == [
        ("saved_model", "float32"), ("litert", "float32"), ("litert", "dynamic_int8")]
    reason = "not written: the onnx format needs tf2onnx: pip install 'zoo[onnx]'"
    assert skipped == {"onnx float32": reason, "onnx dynamic_int8": reason}


def test_a_format_asked_for_without_its_extra_fails_before_any_work(monkeypatch, tmp_path):
    from zoo import saving
    from zoo.export import export

    def load_model(*args, **kwargs):
        raise AssertionError("the model was read before the missing extra was found")

    hide(monkeypatch, "tf2onnx")
    monkeypatch.setattr(saving, "load_model", load_model)
    with pytest.raises(extras.MissingExtraError, match=r"^the onnx format needs tf2onnx: pip install 'zoo\[onnx\]'$"):
        export(tmp_path / "model.keras", root=tmp_path / "serving", formats=("saved_model", "onnx"))
    assert not (tmp_path / "serving").exists()


@pytest.mark.slow
def test_the_cli_says_which_extra_to_install_in_one_line(tmp_path):
    # zoo export --format onnx without tf2onnx: refused before the (absent) model file is even looked at.
    result = zoo_without(["tf2onnx"], "export", tmp_path / "model.keras", "--format", "saved_model,onnx",
                         "--root", tmp_path / "serving", cwd=tmp_path)
    assert one_error_line(result) == "zoo export: error: the onnx format needs tf2onnx: pip install 'zoo[onnx]'"
    assert not (tmp_path / "serving").exists()
    # A runner's engine missing: zoo generate on a LiteRT-LM bundle.
    result = zoo_without(["litert_lm"], "generate", tmp_path / "model.litertlm", "--prompt", "ROMEO:", cwd=tmp_path)
    assert one_error_line(result) == (f"zoo generate: error: {tmp_path / 'model.litertlm'} needs the LiteRT-LM "
                                      "engine: pip install 'zoo[litertlm]'")


def test_export_without_mediapipe_validates_everything_else_and_names_what_it_skipped(tiny_gru, tmp_path,
                                                                                         monkeypatch):
    from zoo.export import export

    hide(monkeypatch, "mediapipe")
    result = export(tiny_gru, root=tmp_path, variants=(), validation_data=(helpers.TEXTS, helpers.LABELS))
    reason = "not installed (pip install 'zoo[mediapipe]')"
    assert result.report["runtimes_skipped"] == {"litert float32": {"mediapipe": reason}}
    assert result.report["skipped"] == {}
    parity = result.report["parity"]
    # The task's default formats, each validated on every installed runtime: LiteRT on its builtin
    # kernels and XNNPACK, ONNX on ONNX Runtime; MediaPipe is left out of the figures, not faked.
    assert set(parity) == {"keras", "saved_model", "litert float32", "onnx float32"}
    assert parity["litert float32"]["runtime"] == "builtin" and "xnnpack" in parity["litert float32"]
    assert "mediapipe" not in parity["litert float32"]
    assert parity["onnx float32"]["runtime"] == "cpu"
    for path in ("saved_model.pb", "litert/model.tflite", "onnx/model.onnx"):
        assert (result.path / path).is_file()
    assert re.search(r"^litert float32 on mediapipe +SKIPPED: not installed \(pip install 'zoo\[mediapipe\]'\)$",
                     result.format_table(), re.MULTILINE)
