"""`ExportTask`: the contract between one task and the export, in format-neutral terms.

A task knows its model class, its data and its outputs; it never names a
format. It hands formats `Graph`s (`zoo.export.graphs`): a serving graph
that takes raw inputs (text, prompts) and a runtime graph that takes tensors
under a `RuntimeTarget`; it describes the tensors' meaning for a runtime
file's sidecar; and it holds the validation data and the parity rules every
written file is held to.

The export loop calls, in order: `options`, `check_model`, `validation_set`,
`reference`; then per file: the format writes it (calling the graph and
description methods), runs it on `probe_inputs` (or the serving graph
through `serving_outputs`), `check_runtime_file` and `compare`; finally
`manifest_fields`, `validation_examples`, `format_table`.
"""

from zoo.export.errors import ExportError


class ExportTask:
    """Base class of the export tasks; subclasses fill in every method that raises here.

    Class attributes:
        name: the registry's task name ("text-classification").
        default_formats: formats written when none are asked for.
        variants: the variants besides the float32 reference that this
            task's files may come in (names the formats define).
        default_variants: variants written when none are asked for.
        splits_at_features: `runtime_graph` can take the backbone's output
            as an input (`RuntimeTarget.features_input`), for a format that
            writes the backbone itself.
    """

    name = None
    default_formats = ()
    variants = ()
    default_variants = ()
    splits_at_features = False

    # === Arguments and data ===

    def options(self, model, **options):
        """This task's export options, checked, with defaults filled in (`{}`: it takes none)."""
        if options:
            raise ExportError(f"{model.name}: {', '.join(sorted(options))} do not apply to {self.name} models")
        return {}

    def check_model(self, model):
        """Raise ExportError when `model` cannot be exported (say what to do first)."""
        if getattr(model, "preprocessor", None) is None:
            raise ExportError(f"{model.name}: the model has no preprocessor (tokenizer) attached; zoo exports take "
                              "raw text")

    def validation_set(self, model, data, calibration_texts, trained_split, options):
        """What every file is validated on (and, where a variant needs it, calibrated on).

        Args:
            data: the user's validation data, or None for the task's default.
            calibration_texts: training texts for calibrated variants, or None.
            trained_split: `(train, validation)` datasets the model was trained
                on (from its `train_report.json`), or None.
        """
        raise NotImplementedError

    def reference(self, model, validation):
        """Keras's own outputs on the validation set, kept on it for `compare`; returns Keras's report row."""
        raise NotImplementedError

    def probe_inputs(self, validation):
        """`{name: array}`: what `zoo.runtime.validation_probe` feeds a runtime file of this task."""
        raise NotImplementedError

    def compare(self, validation, key, outputs, exact):
        """Parity figures of one file from `{runtime: {output: array}}` (the first runtime is its reference).

        `exact`: the file's weights are float32, so it must reproduce Keras
        (raise ParityError otherwise); other variants report their agreement.
        """
        raise NotImplementedError

    def check_runtime_file(self, path, validation):
        """Checks of a written runtime file and its sidecar beyond running it (default: none)."""

    def validation_examples(self, validation):
        raise NotImplementedError

    # === Graphs ===

    def serving_graph(self, model, validation, scratch):
        """A `Graph` that takes raw inputs (a server's graph); its `examples` (from `validation`, when
        given) warm each endpoint up. `scratch`: a folder for files the graph reads (assets)."""
        raise NotImplementedError

    def serving_outputs(self, signatures, validation):
        """`{runtime: {output: array}}` from the serving graph's loaded `signatures` on the validation set."""
        raise NotImplementedError

    def runtime_graph(self, model, target, options):
        """A `Graph` that takes tensors under `target` (a runtime file's graph)."""
        raise NotImplementedError

    def runtime_description(self, model, options):
        """What a runtime file's sidecar says of the task: its tokenizer and labels, or its generation loop."""
        raise NotImplementedError

    def calibration_inputs(self, model, validation):
        """`[{input name: array}]`: representative runtime-graph inputs for calibrated variants."""
        raise ExportError(f"{self.name} models have no calibrated variant")

    def supports_runtime_files(self, model):
        """Whether `runtime_graph` can be built for `model` (else formats that need it are left out)."""
        return True

    # === Reports ===

    def manifest_fields(self, model, options):
        raise NotImplementedError

    def format_table(self, parity):
        raise NotImplementedError
