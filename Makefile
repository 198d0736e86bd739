# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv and install zoo into it (editable) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test check clean

# What the demo uses: the core plus the onnx and mediapipe extras. Its `zoo export lstm_classifier` writes
# a classifier's default formats, ONNX among them (skipped without zoo[onnx]), and validates the phone
# LiteRT file in MediaPipe's TextClassifier (skipped without zoo[mediapipe]); LiteRT-LM bundles are for
# language models and Beam labels corpora, neither of which the demo runs.
$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[onnx,mediapipe]'
	touch $(STAMP)

# The tests exercise every runtime (all: ONNX, MediaPipe, LiteRT-LM, a Beam pipeline), the benchmark
# harness and its peers (PyTorch CPU, transformers, ExecuTorch, fastText).
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[all,test,bench,peers]'
	touch $(TEST_STAMP)

# Train the default model on rt-polarity (../shared/data), report validation
# accuracy, export it for TF Serving, LiteRT and ONNX (validated against Keras), then
# classify two sentences with the Keras model and with the exported LiteRT file.
demo: $(STAMP)
	$(BIN)/zoo train lstm_classifier
	$(BIN)/zoo predict lstm_classifier "a gorgeous, witty, seductive movie." "the plot is a tedious mess."
	$(BIN)/zoo export lstm_classifier
	$(BIN)/zoo predict "$$(ls -d saved_models/lstm_classifier/[0-9]* | sort -t/ -k3 -n | tail -1)/litert/model.tflite" \
		"a gorgeous, witty, seductive movie." "the plot is a tedious mess."

# Every test, one pytest worker per core (pytest-xdist); what CI runs. worksteal: a worker that runs out of
# tests takes queued ones from the other, so a few minute-long tests at the end do not leave a core idle.
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal --durations=25 tests

# The fast tier while editing: every test not marked slow (no training past a few steps, no export,
# no extra processes; see pytest.ini).
check: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow" tests

clean:
	rm -rf $(VENV) saved_models/*/ .pytest_cache
