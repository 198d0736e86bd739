"""ExecuTorch (XNNPACK) as the PyTorch-side phone runtime peer: the CNN classifier, same weights, own process.

The parent (TensorFlow side, `save_inputs`) writes the Keras weights, token
ids and Keras's probabilities to a folder; this module, run as a fresh
process that never imports TensorFlow, rebuilds the same network in PyTorch
(`CNNClassifier`: embedding, convolutions of each width, masked max over
time, the output layer and the Naive Bayes bigram branch), checks it against
Keras, exports it with `torch.export` at a static batch of 1 and of 32,
lowers it to ExecuTorch with the XNNPACK partitioner and checks each `.pte`
against Keras. It prints one JSON line; `benchmarks.runtime_process` times
the programs, each round in a fresh process.

    python -m benchmarks.executorch_peer FOLDER

Needs `pip install executorch` (1.5.1 was measured, beside torch 2.13 CPU).
"""

import json
import pathlib
import sys

import numpy as np

BATCH_SIZES = (1, 32)


def available():
    """Whether the child can run; looked up without importing PyTorch into the (TensorFlow) parent."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "executorch"))


def save_inputs(classifier, token_ids, expected, folder, validation_ids=None):
    """Write what the child needs: the CNN classifier's weights, the timed token ids `[32, L]` with Keras's
    outputs for them, and (optionally) validation ids whose `.pte` outputs the child writes back."""
    import keras

    from zoo.models.cnn import CNNBackbone

    backbone = classifier.backbone
    if not isinstance(backbone, CNNBackbone):
        raise NotImplementedError(f"{classifier.name}: the ExecuTorch peer is the CNN classifier's PyTorch twin")
    value = keras.ops.convert_to_numpy
    arrays = {"embedding": value(backbone.token_embedding.embeddings), "token_ids": np.asarray(token_ids, np.int64),
              "expected": np.asarray(expected, np.float32),
              "dense_kernel": value(classifier.output_dense.kernel), "dense_bias": value(classifier.output_dense.bias),
              "validation_ids": np.asarray(token_ids if validation_ids is None else validation_ids, np.int64)}
    for size, convolution in zip(backbone.kernel_sizes, backbone.convolutions):
        arrays[f"conv{size}_kernel"], arrays[f"conv{size}_bias"] = value(convolution.kernel), value(convolution.bias)
    facts = {"kernel_sizes": list(backbone.kernel_sizes), "naive_bayes": classifier.naive_bayes is not None}
    if classifier.naive_bayes is not None:
        branch = classifier.naive_bayes
        arrays["naive_bayes_table"], arrays["naive_bayes_scale"] = value(branch.table), value(branch.scale)
        facts.update(vocabulary_size=int(branch.vocabulary_size), bigram_buckets=int(branch.bigram_buckets))
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "inputs.npz", **arrays)
    (folder / "facts.json").write_text(json.dumps(facts))


def cnn_classifier(arrays, facts):
    """The PyTorch twin of zoo's CNN classifier, from `save_inputs`' arrays."""
    import torch

    class CNNClassifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.kernel_sizes = facts["kernel_sizes"]
            self.embedding = torch.nn.Embedding.from_pretrained(torch.from_numpy(arrays["embedding"]))
            self.convolutions = torch.nn.ModuleList()
            for size in self.kernel_sizes:
                kernel = arrays[f"conv{size}_kernel"]  # Keras [width, in, out]; PyTorch [out, in, width]
                convolution = torch.nn.Conv1d(kernel.shape[1], kernel.shape[2], size)
                convolution.weight.data = torch.from_numpy(kernel.transpose(2, 1, 0).copy())
                convolution.bias.data = torch.from_numpy(arrays[f"conv{size}_bias"])
                self.convolutions.append(convolution)
            dense = arrays["dense_kernel"]
            self.dense = torch.nn.Linear(*dense.shape)
            self.dense.weight.data = torch.from_numpy(dense.T.copy())
            self.dense.bias.data = torch.from_numpy(arrays["dense_bias"])
            self.naive_bayes = facts["naive_bayes"]
            if self.naive_bayes:
                self.register_buffer("table", torch.from_numpy(arrays["naive_bayes_table"]))
                self.scale = float(arrays["naive_bayes_scale"])
                self.vocabulary_size, self.bigram_buckets = facts["vocabulary_size"], facts["bigram_buckets"]

        def forward(self, token_ids):
            is_text = (token_ids != 0).to(torch.float32)
            x = (self.embedding(token_ids) * is_text[:, :, None]).transpose(1, 2)
            pooled = []
            for size, convolution in zip(self.kernel_sizes, self.convolutions):
                # As zoo's CNNBackbone: `size - 1` zeros after each row, one window per token.
                windows = torch.relu(convolution(torch.nn.functional.pad(x, (0, size - 1)))) * is_text[:, None, :]
                pooled.append(windows.amax(dim=2))
            logits = self.dense(torch.cat(pooled, dim=1))
            if self.naive_bayes:
                logits = logits + self.naive_bayes_scores(token_ids)
            return torch.softmax(logits, dim=-1)

        def naive_bayes_scores(self, token_ids):
            # As zoo.layers.NaiveBayesNgramLogits.features: unigram ids, hashed bigram ids, each counted once.
            first, second = token_ids[:, :-1], token_ids[:, 1:]
            bigrams = torch.remainder(first * self.vocabulary_size + second, self.bigram_buckets) + self.vocabulary_size
            bigrams = torch.where((first != 0) & (second != 0), bigrams, torch.zeros_like(bigrams))
            features = torch.cat([token_ids, bigrams], dim=1)
            width = features.shape[1]
            earlier = torch.tril(torch.ones(width, width, dtype=torch.bool), diagonal=-1)
            repeats = ((features[:, :, None] == features[:, None, :]) & earlier).any(dim=-1)
            present = ((features != 0) & ~repeats).to(torch.float32)
            return self.scale * (self.table[features] * present[:, :, None]).sum(dim=1)

    return CNNClassifier().eval()


def lower_to_executorch(module, example, path):
    """`torch.export` at `example`'s static shape, XNNPACK partitioner, written as `.pte`."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(module, (example,))
    program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
    pathlib.Path(path).write_bytes(program.buffer)
    return path


def build(folder):
    """Lower the twin at every batch size, check each `.pte` against Keras; writes `validation_outputs.npy`
    (the largest program's outputs over the validation ids, in slices)."""
    import importlib.metadata

    import torch
    from executorch.runtime import Runtime

    folder = pathlib.Path(folder)
    facts = json.loads((folder / "facts.json").read_text())
    with np.load(folder / "inputs.npz") as loaded:
        arrays = {key: loaded[key] for key in loaded.files}
    module = cnn_classifier(arrays, facts)
    token_ids = torch.from_numpy(arrays["token_ids"])
    with torch.no_grad():
        eager = module(token_ids).numpy()
    result = {"torch": torch.__version__, "executorch": importlib.metadata.version("executorch"),
              "eager_max_abs_diff_vs_keras": float(np.abs(eager - arrays["expected"]).max()), "batches": {}}
    runtime = Runtime.get()
    for batch in BATCH_SIZES:
        path = lower_to_executorch(module, token_ids[:batch], folder / f"model.batch{batch}.pte")
        method = runtime.load_program(str(path)).load_method("forward")
        outputs = method.execute([token_ids[:batch].contiguous()])[0].numpy()
        result["batches"][str(batch)] = {
            "path": str(path), "bytes": path.stat().st_size,
            "max_abs_diff_vs_keras": float(np.abs(outputs - arrays["expected"][:batch]).max())}
    # The largest program over the validation ids, the last slice padded with copies of its first row.
    batch, ids = BATCH_SIZES[-1], torch.from_numpy(arrays["validation_ids"])
    padded = torch.cat([ids, ids[:1].repeat(-len(ids) % batch, 1)])
    slices = [method.execute([padded[start:start + batch].contiguous()])[0].numpy()
              for start in range(0, len(padded), batch)]
    np.save(folder / "validation_outputs.npy", np.concatenate(slices)[: len(ids)])
    return result


if __name__ == "__main__":
    print(json.dumps(build(sys.argv[1])))
