"""The peer for GPT-2: Hugging Face transformers (PyTorch, CPU) on the same shape.

Same protocol as zoo's side in `benchmarks.gpt2`: the same weights (zoo's
model written as a transformers checkpoint by the parent), the same id
windows (batch x sequence_length), AdamW with GPT-2's recipe (weight decay
0.01, clipping the global gradient norm at 1.0). Greedy `generate` with the
KV cache for the same prompt ids and number of new tokens.

PyTorch is optional (`pip install '.[peers]'`, torch 2.13 CPU): check
`available()` (which does not import it) before running a side that needs it.
"""

import statistics

from benchmarks.timing import time_calls

INSTALL_HINT = "torch/transformers not installed (pip install '.[peers]')"


def available():
    """Whether torch and transformers are installed; looked up without importing PyTorch into this process."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "transformers"))


def _model(checkpoint, threads):
    """`GPT2LMHeadModel` with the weights in `checkpoint` (a transformers folder), float32, `threads` threads."""
    import torch
    import transformers

    torch.set_num_threads(threads)
    return transformers.GPT2LMHeadModel.from_pretrained(str(checkpoint), dtype=torch.float32)


def training_step(checkpoint, windows, batch_size, threads=2):
    """A `step(index)` callable: one `GPT2LMHeadModel` training step on batch `index` of `windows` ([n, length + 1] ids).

    Call `available()` first.
    """
    import torch

    model = _model(checkpoint, threads).train()
    # As zoo's trainer: no weight decay on biases, norms and embeddings.
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        decays = parameter.ndim >= 2 and "wte" not in name and "wpe" not in name
        (decay if decays else no_decay).append(parameter)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=5e-4)
    windows = torch.as_tensor(windows, dtype=torch.long)

    def step(index):
        batch = windows[(index * batch_size) % len(windows):][:batch_size]
        logits = model(batch[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def generation(checkpoint, prompt_ids, new_tokens, repeats, threads=2):
    """New tokens/s of greedy `generate` (KV cache) from `prompt_ids`, exactly `new_tokens` each, and its tokens."""
    import torch

    model = _model(checkpoint, threads).eval()
    inputs = torch.as_tensor([prompt_ids], dtype=torch.long)

    def call():
        with torch.inference_mode():
            return model.generate(inputs, attention_mask=torch.ones_like(inputs), max_new_tokens=new_tokens,
                                  min_new_tokens=new_tokens, do_sample=False, pad_token_id=prompt_ids[0])

    token_ids = call()[0, len(prompt_ids):].tolist()
    seconds = time_calls(call, 0, repeats)
    return {"new_tokens": new_tokens, "median_seconds": statistics.median(seconds),
            "tokens_per_second": new_tokens / statistics.median(seconds), "threads": threads, "token_ids": token_ids}
