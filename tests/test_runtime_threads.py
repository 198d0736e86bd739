"""`zoo.runtime` objects shared by threads answer every call exactly as they would alone (issue 27, item 1).

A LiteRT interpreter is one set of tensor buffers: before its lock, 8 threads on one classifier runner read other
calls' probabilities (or failed in a GATHER kernel) and a shared decoder garbled generations. Outputs are compared
bit for bit with the same calls made one after another.
"""

import concurrent.futures

import numpy as np
import pytest

from tests import helpers

THREADS = 8
WORDS = sorted({word for text in helpers.TEXTS + helpers.UNSEEN for word in text.split()})


def in_threads(function, items):
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(function, items))


def odd_batches(count=96, seed=0):
    """`count` batches of 1 to 39 texts (odd sizes: never a multiple of a static batch), 1 to 20 words each."""
    rng = np.random.default_rng(seed)
    return [[" ".join(rng.choice(WORDS, rng.integers(1, 21))) for _ in range(size)]
            for size in rng.integers(0, 20, count) * 2 + 1]


@pytest.mark.parametrize("path, delegates", [("litert/model.tflite", True), ("litert/model.tflite", False),
                                             ("onnx/model.onnx", True)])
def test_a_classifier_runner_shared_by_threads_answers_each_batch_as_alone(gru_export, path, delegates):
    from zoo.runtime import TextClassifierRunner

    runner = TextClassifierRunner(gru_export / path, delegates=delegates)
    batches = odd_batches()
    alone = [runner.predict(batch) for batch in batches]
    shared = in_threads(runner.predict, batches)
    for index, (expected, got) in enumerate(zip(alone, shared)):
        np.testing.assert_array_equal(got, expected, err_msg=f"batch {index} ({len(batches[index])} texts)")


def test_a_generator_shared_by_threads_generates_each_prompt_as_alone(gpt2_export):
    from zoo.runtime import Generator

    generator = Generator(gpt2_export / "litert" / "model.tflite")
    rng = np.random.default_rng(1)
    words = helpers.CORPUS.split()[:60]
    calls = [(" ".join(rng.choice(words, rng.integers(1, 8))), int(rng.integers(12, 41)), sampler, seed)
             for seed, sampler in enumerate(["top_k", "top_p", "greedy", "top_k"] * 8)]

    def run(call):
        prompt, max_length, sampler, seed = call
        return generator.generate(prompt, max_length=max_length, sampler=sampler, seed=seed, strip_prompt=True)

    alone = [run(call) for call in calls]
    assert len(set(alone)) > len(calls) // 2  # the calls differ: a mix-up would show
    assert in_threads(run, calls) == alone
