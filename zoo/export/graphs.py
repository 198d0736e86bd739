"""What tasks hand formats: endpoints over one model's weights, and what a runtime file asks of them.

A task builds a `Graph` (named endpoints, each a traceable function with its
input signature, plus the objects whose variables it reads); a format writes
it. `RuntimeTarget` is how a runtime-file format states its constraints
(static batch, unrolled loops) without the task knowing
which format asked.
"""

import dataclasses
import pathlib
from typing import Callable, Optional

from zoo.export.archive import ExportArchive


@dataclasses.dataclass(frozen=True)
class RuntimeTarget:
    """The shapes and loop style a runtime-file format asks of a task's graph.

    Args:
        batch_size: the static batch, or None for any batch.
        unroll: trace recurrent loops as unrolled steps over the fixed window
            (for a format whose loop op is slow or missing).
        features_input: the format writes the backbone itself (ONNX's native
            recurrent ops), so the graph takes the backbone's output as a
            second input, float32 `features` `[batch, width]`, and holds only
            what follows it (asked only of a task with `splits_at_features`).
        any_length: the token-id input's time dimension is dynamic (any
            length up to the window), for a runtime that can be handed each
            batch padded only to its longest text.
    """

    batch_size: Optional[int] = 1
    unroll: bool = False
    features_input: bool = False
    any_length: bool = False


@dataclasses.dataclass
class Endpoint:
    function: Callable
    input_signature: list


@dataclasses.dataclass
class Graph:
    """Named endpoints over one model's weights: what a format converts.

    Args:
        endpoints: `{signature name: Endpoint}`, in the order they are written.
        tracked: Keras models, layers or TF resources whose variables the
            endpoints read (written once each).
        custom_ops: ops outside the target's core set the graph needs (named
            in the manifest).
        examples: `{signature: [{input name: value}, ...]}`, example inputs of
            the shapes clients send (a server warms each up at load time).
    """

    endpoints: dict
    tracked: list
    custom_ops: tuple = ()
    examples: dict = dataclasses.field(default_factory=dict)

    def write_saved_model(self, directory):
        """The endpoints as a SavedModel with every variable frozen in once (zoo's `ExportArchive`)."""
        archive = ExportArchive()
        for trackable in self.tracked:
            archive.track(trackable)
        for name, endpoint in self.endpoints.items():
            archive.add_endpoint(name, endpoint.function, input_signature=endpoint.input_signature)
        archive.write_out(str(directory), verbose=False)
        return pathlib.Path(directory)
