"""GPT-2 decode on ExecuTorch (XNNPACK): PyTorch's phone runtime as the peer of zoo's LiteRT decoders.

The same weights: the parent (TensorFlow side) writes zoo's keras-hub model as a transformers checkpoint
(`save_checkpoint`, keras-hub's `export_to_transformers`). In a process with PyTorch and no TensorFlow,
`build` loads it into `GPT2LMHeadModel`, wraps it with transformers' own ExecuTorch integration
(`TorchExportableModuleForDecoderOnlyLM`: a static KV cache of `cache_length` rows held as mutable buffers
inside the program, batch 1, one token and its position per call), `torch.export`s it and lowers it with
the XNNPACK partitioner, twice:

- `float32`;
- `dynamic_int8`: int8 per-channel weights with activations quantized per call (torchao's
  `Int8DynamicActivationIntxWeightConfig`), the scheme of LiteRT's dynamic-range int8 file. transformers
  writes GPT-2's projections as `Conv1D` (a transposed `nn.Linear`), which torchao does not quantize, so
  they are swapped for the equivalent `nn.Linear` first.

`generate` is greedy decoding as an app does it on ExecuTorch: one `forward` per token, the prompt fed
token by token (the short benchmark prompt is 3 tokens), argmax of the last logits.

    python -m benchmarks.executorch_gpt2 build CHECKPOINT FOLDER CACHE_LENGTH

Needs `pip install '.[peers]'` (torch 2.13 CPU, transformers, executorch 1.5.1).
"""

import json
import pathlib
import sys
import time

QUANTIZATIONS = ("float32", "dynamic_int8")


def available():
    """Whether a child can build and run the programs; looked up without importing PyTorch here."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers", "executorch"))


def save_checkpoint(model, folder):
    """zoo's GPT-2 (a keras-hub `GPT2CausalLM`) as a transformers checkpoint in `folder`."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.backbone.export_to_transformers(str(folder))
    return folder


def _linear_projections(module):
    """Swap transformers' `Conv1D` (y = x W + b, W [in, out]) for the same `nn.Linear`, in place."""
    import torch
    from transformers.pytorch_utils import Conv1D

    for name, child in module.named_children():
        if isinstance(child, Conv1D):
            linear = torch.nn.Linear(*child.weight.shape)
            linear.weight.data = child.weight.data.T.contiguous()
            linear.bias.data = child.bias.data
            setattr(module, name, linear)
        else:
            _linear_projections(child)


def build(checkpoint, folder, cache_length):
    """`{quantization: {"path", "bytes", "seconds"}}`: the `.pte` programs written to `folder`."""
    import torch
    import transformers
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from transformers.integrations.executorch import TorchExportableModuleForDecoderOnlyLM

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    programs = {}
    for quantization in QUANTIZATIONS:
        started = time.perf_counter()
        model = transformers.GPT2LMHeadModel.from_pretrained(str(checkpoint), dtype=torch.float32).eval()
        model.generation_config.cache_implementation = "static"
        if quantization == "dynamic_int8":
            from torchao.quantization import quantize_
            from torchao.quantization.granularity import PerAxis
            from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig

            _linear_projections(model)
            quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8,
                                                                   weight_granularity=PerAxis(0)))
        exportable = TorchExportableModuleForDecoderOnlyLM(model, batch_size=1, max_cache_len=cache_length)
        exported = exportable.export(input_ids=torch.tensor([[0]], dtype=torch.long),
                                     cache_position=torch.tensor([0], dtype=torch.long))
        program = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch()
        path = folder / f"gpt2.{quantization}.pte"
        path.write_bytes(program.buffer)
        programs[quantization] = {"path": str(path), "bytes": path.stat().st_size,
                                  "seconds": round(time.perf_counter() - started, 1)}
    return programs


class Decoder:
    """A `.pte` GPT-2 program with its static KV cache: greedy generation, one `forward` per token."""

    def __init__(self, path, num_threads=2):
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        # XNNPACK's thread pool is process-wide; 2 threads like every other runtime timed here.
        portable_lib._unsafe_reset_threadpool(num_threads)
        self.method = Runtime.get().load_program(str(path)).load_method("forward")

    def generate_token_ids(self, prompt_ids, new_tokens):
        import torch

        tokens = list(prompt_ids)
        for position in range(len(prompt_ids) + new_tokens - 1):
            logits = self.method.execute([torch.tensor([[tokens[position]]], dtype=torch.long),
                                          torch.tensor([position], dtype=torch.long)])[0]
            if position >= len(prompt_ids) - 1:
                tokens.append(int(logits[0, -1].argmax()))
        return tokens[len(prompt_ids):]


def generation(path, prompt_ids, new_tokens, repeats, num_threads=2):
    """Greedy decode tokens/s (median of `repeats` after a warm-up) and the tokens of the last run."""
    import statistics

    from benchmarks.timing import time_calls

    decoder = Decoder(path, num_threads)
    tokens = decoder.generate_token_ids(prompt_ids, new_tokens)
    seconds = time_calls(lambda: decoder.generate_token_ids(prompt_ids, new_tokens), 0, repeats)
    return {"new_tokens": len(tokens), "median_seconds": statistics.median(seconds),
            "tokens_per_second": len(tokens) / statistics.median(seconds), "token_ids": tokens}


if __name__ == "__main__":
    if sys.argv[1:2] != ["build"] or len(sys.argv) != 5:
        raise SystemExit("usage: python -m benchmarks.executorch_gpt2 build CHECKPOINT FOLDER CACHE_LENGTH")
    print(json.dumps(build(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
