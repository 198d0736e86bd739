"""README.md and docs/*.md run as written: every code block, in order, on tiny settings.

A page runs (`test_page_runs`) in a fresh folder `<tmp>/page`, beside
`<tmp>/shared/data` (a link to the real data), so `../shared/data` and zoo's
default data resolve as in a checkout and nothing is downloaded. One Python
process per page runs its blocks in order (`python -m tests.test_docs`, the
`__main__` below): `python` blocks share one namespace, so a block may use
what an earlier one made; `bash` blocks run with `bash -e` and the venv's
`zoo` first on PATH. A page's prerequisites (a model trained and exported
into `saved_models/`, as its prose says) are built once per session by
`docs_models` and copied in (`PAGE_NEEDS`).

Fence languages: `python` and `bash` run; `text` is output or a listing and
never runs; any block that cannot run here (another machine, a phone app,
minutes on the full data) carries `<!-- template: why -->` on the line above.
A failing block fails its page's test with the page, the block's line and the
error (a Python traceback points at the page's own line numbers).
"""

import dataclasses
import fcntl
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PAGES = ["README.md", *sorted(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md"))]
RUNS = ("python", "bash")
NEVER_RUNS = ("text",)
TEMPLATE = re.compile(r"<!--\s*template:\s*(?P<reason>.*?)\s*-->")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
FAILED = "BLOCK FAILED"
PAGE_TIMEOUT = 900

# What each page assumes was done before its first block: `(model, stage)`, stage "trained"
# (`saved_models/<model>/model.keras` and its report) or "exported" (also version 1).
PAGE_NEEDS = {
    "docs/cli.md": [("gpt2_tiny", "exported")],
    "docs/export.md": [("lstm_classifier", "trained"), ("cnn_multi_label_classifier", "exported")],
    "docs/labelling.md": [("lstm_classifier", "exported")],
    "docs/phones.md": [("lstm_classifier", "exported"), ("gpt2_tiny", "exported")],
    "docs/runtime.md": [("lstm_classifier", "exported"), ("cnn_multi_label_classifier", "exported"),
                        ("gpt2_tiny", "exported")],
}
# The multi-label pages tag passages of tinyshakespeare with who of these speaks in them (classifiers.md).
SPEAKERS = ("CORIOLANUS", "JULIET", "MENENIUS", "PETRUCHIO", "ROMEO")


@dataclasses.dataclass
class Block:
    page: str
    line: int  # the block's first code line, 1-based, in the page
    language: str
    code: str
    template: str = None  # why it cannot run here


def read_blocks(page):
    """Every fenced block of `page` (a path relative to the repository)."""
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening["fence"]
        above = next((line for line in reversed(lines[:index]) if line.strip()), "")
        template = TEMPLATE.fullmatch(above.strip())
        end = next((i for i in range(index + 1, len(lines)) if lines[i].strip() == fence), None)
        if end is None:
            raise AssertionError(f"{page}:{index + 1}: the block opened here is never closed")
        blocks.append(Block(page, index + 2, opening["info"].split()[0] if opening["info"] else "",
                            "\n".join(lines[index + 1 : end]) + "\n", template["reason"] if template else None))
        index = end + 1
    return blocks


def test_every_block_runs_or_is_a_template():
    problems = []
    for page in PAGES:
        # An indented code block would go unseen (and unrun): blocks are fenced.
        lines, fenced = (REPO / page).read_text(encoding="utf-8").splitlines(), False
        for number, line in enumerate(lines, start=1):
            fenced ^= bool(FENCE.match(line.strip())) and not line.startswith(" ")
            if not fenced and line.startswith("    ") and not lines[number - 2].strip():
                problems.append(f"{page}:{number}: an indented code block; fence it (```python, ```bash, ```text)")
        for block in read_blocks(page):
            where = f"{page}:{block.line - 1}"
            if block.template is not None:
                if not block.template:
                    problems.append(f"{where}: a template needs its reason: <!-- template: why -->")
            elif block.language not in RUNS + NEVER_RUNS:
                problems.append(f"{where}: a {block.language or 'plain'!r} block neither runs ({', '.join(RUNS)}) "
                                f"nor is output ({', '.join(NEVER_RUNS)}); mark it <!-- template: why -->")
    assert not problems, "\n".join(problems)


# A link target: (path)(#anchor); external links and bare anchors of other sites are not checked.
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


def anchors(page):
    """GitHub's heading anchors of `page`."""
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    slugs = set()
    for heading in re.findall(r"^#+\s+(.*)$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def test_links_between_pages_resolve():
    problems = []
    for page in [*PAGES, "benchmarks/README.md"]:
        for target in LINK.findall((REPO / page).read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (REPO / page).parent / path if path else REPO / page
            if not linked.exists():
                problems.append(f"{page}: link to {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                problems.append(f"{page}: link to {target}: no heading with that anchor")
    assert not problems, "\n".join(problems)


def results_tables():
    """The markdown the benchmark scripts write from `benchmarks/results/*.json`: speed, distributed, accuracy,
    bulk labelling, long documents."""
    from benchmarks import bulk_labelling, classifier_accuracy, distributed, long_documents, report

    results = REPO / "benchmarks" / "results"
    speed = json.loads((results / "speed.json").read_text())
    return (report.markdown(speed, plots_relative_to=REPO / "benchmarks", json_path=results / "speed.json"),
            distributed.table(json.loads((results / "distributed.json").read_text())),
            classifier_accuracy.markdown_table(json.loads((results / "classifier_accuracy.json").read_text())),
            bulk_labelling.markdown_table(json.loads((results / "bulk_labelling.json").read_text())),
            long_documents.markdown_table(json.loads((results / "long_documents.json").read_text())))


# A measured figure: a median with its range, "316.9 (307.5-321.9)" or "1.61x (1.45-1.67)", or a percentage.
FIGURE = re.compile(r"\d[\d,.]*x? \(\d[\d,.]*-\d[\d,.]*\)|\d+(?:\.\d+)?%")


def test_measurements_are_the_recorded_ones():
    """benchmarks/README.md quotes each report verbatim; README's figures are figures of those reports."""
    tables = results_tables()
    benchmarks_readme = (REPO / "benchmarks" / "README.md").read_text(encoding="utf-8")
    for table in tables:
        assert table.strip() in benchmarks_readme, f"benchmarks/README.md lacks this report:\n{table}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    unrecorded = [figure for figure in FIGURE.findall(readme) if not any(figure in table for table in tables)]
    assert not unrecorded, f"README.md figures in no results report: {unrecorded}"


# === Running the pages ===


@pytest.fixture(scope="session")
def docs_models(tmp_path_factory):
    """`saved_models/` with the tiny models the pages assume, built once per session (shared by xdist workers)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    shared = tmp_path_factory.getbasetemp().parent if worker else tmp_path_factory.getbasetemp()
    root = shared / "docs-models"
    with open(shared / "docs-models.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "done").exists():
            shutil.rmtree(root, ignore_errors=True)
            build_docs_models(root)
            (root / "done").touch()
    return root / "saved_models"


def build_docs_models(root):
    """A tiny LSTM classifier trained on every fifth rt-polarity review, a tiny multi-label CNN trained on
    tinyshakespeare's passages of three speeches (tagged with the `SPEAKERS` among their speakers) and a
    tiny GPT-2 trained on 2,000 lines of tinyshakespeare, each exported as version 1 in the formats the
    pages run."""
    from benchmarks.multi_label_accuracy import speeches
    from zoo.causal_lm import train_causal_lm
    from zoo.data import default_data_dir, load_texts
    from zoo.export import export
    from zoo.training import train_classifier

    models = root / "saved_models"
    models.mkdir(parents=True)
    sample = load_texts().subset(range(0, 10662, 5))
    reviews = root / "reviews.jsonl"
    reviews.write_text("".join(json.dumps({"text": text, "label": sample.class_names[label]}) + "\n"
                               for text, label in zip(sample.texts, sample.labels)), encoding="utf-8")
    train_classifier("lstm_classifier", reviews, out_dir=models / "lstm_classifier", epochs=2, verbose=0,
                     vocabulary_size=2000, sequence_length=32, embedding_dim=16, hidden_dim=16,
                     naive_bayes_buckets=4096)
    export(models / "lstm_classifier", root=models, formats=("litert", "onnx"), variants=("dynamic_int8",))
    plays = (default_data_dir() / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    pairs = speeches(plays)
    passages = [pairs[start : start + 3] for start in range(0, len(pairs) - 2, 3)]
    tagged = root / "speakers.jsonl"
    tagged.write_text("".join(json.dumps({"text": "\n".join(speech for _, speech in passage),
                                          "labels": sorted({name for name, _ in passage} & set(SPEAKERS))}) + "\n"
                              for passage in passages), encoding="utf-8")
    train_classifier("cnn_multi_label_classifier", tagged, out_dir=models / "cnn_multi_label_classifier",
                     label_column="labels", epochs=2, verbose=0, vocabulary_size=2000, embedding_dim=16,
                     hidden_dim=16, naive_bayes_buckets=4096)
    export(models / "cnn_multi_label_classifier", root=models, formats=("saved_model", "litert", "onnx"), variants=())
    corpus = root / "corpus.txt"
    lines = plays.splitlines()
    corpus.write_text("\n".join(lines[:2000]) + "\n", encoding="utf-8")
    train_causal_lm("gpt2_tiny", corpus, out_dir=models / "gpt2_tiny", epochs=1, batch_size=8, verbose=0,
                    jit_compile=False, tokenizer="train", bpe_vocabulary_size=512, num_layers=1, hidden_dim=32,
                    num_heads=2, intermediate_dim=64, sequence_length=32, max_sequence_length=64)
    export(models / "gpt2_tiny", root=models, formats=("litert", "litert_lm"), variants=(), cache_length=64,
           validation_data=["ROMEO:", "JULIET:"])


def copy_needs(page, models, destination):
    for name, stage in PAGE_NEEDS.get(page, ()):
        source, target = models / name, destination / "saved_models" / name
        target.mkdir(parents=True)
        for item in source.iterdir():
            if item.name.isdigit() and stage != "exported":
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, target / item.name)


def page_environment():
    environment = dict(os.environ)
    environment.pop("ZOO_DATA_DIR", None)  # the pages read ../shared/data, as in a checkout
    environment["PATH"] = os.pathsep.join([str(pathlib.Path(sys.executable).parent), environment.get("PATH", "")])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH")]))
    return environment


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_runs(page, tmp_path, request):
    from zoo.data import default_data_dir

    blocks = [block for block in read_blocks(page) if block.language in RUNS and block.template is None]
    data = default_data_dir().resolve()
    assert data.is_dir(), f"the pages read the shared data (rt-polarity, tinyshakespeare): no {data}; set ZOO_DATA_DIR"
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data, target_is_directory=True)
    workdir = tmp_path / "page"
    workdir.mkdir()
    if page in PAGE_NEEDS:
        copy_needs(page, request.getfixturevalue("docs_models"), workdir)
    process = subprocess.Popen([sys.executable, "-m", "tests.test_docs"], cwd=workdir, env=page_environment(),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(json.dumps([dataclasses.asdict(block) for block in blocks]),
                                        timeout=PAGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{page}: its blocks ran past {PAGE_TIMEOUT} s\n{output[-4000:]}")
    if process.returncode:
        failed = next((line for line in output.splitlines() if line.startswith(FAILED)),
                      f"{FAILED}: {page} (where: the last '---' line below)")
        pytest.fail(f"{failed}\n{output[-6000:]}", pytrace=False)


# === The page process ===


def run_blocks(blocks):
    """Run one page's blocks in order in this process; on the first failure say where and why, exit 1."""
    namespace = {"__name__": "__main__"}
    for block in map(lambda fields: Block(**fields), blocks):
        where = f"{block.page}:{block.line}"
        print(f"--- {where} ({block.language})", flush=True)
        started, cpu = time.perf_counter(), cpu_seconds()
        # Padded with blank lines so errors carry the page's own line numbers.
        source = "\n" * (block.line - 1) + block.code
        if block.language == "python":
            filename = str(REPO / block.page)
            try:
                exec(compile(source, filename, "exec"), namespace)
            except BaseException as error:  # noqa: BLE001 - the report is the point
                frames = traceback.extract_tb(error.__traceback__)
                line = next((frame.lineno for frame in reversed(frames) if frame.filename == filename), block.line)
                print(f"{FAILED}: {block.page}:{line}: {type(error).__name__}: {error}", flush=True)
                traceback.print_exception(error, file=sys.stdout)
                return 1
        else:
            # The ERR trap names the failing command and its line in the page.
            trap = "trap 'echo \"" + FAILED + ": " + block.page + ":$LINENO: $BASH_COMMAND (exit $?)\"' ERR\n"
            result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", trap + source[1:]], stdout=sys.stdout,
                                    stderr=subprocess.STDOUT)
            if result.returncode:
                print(f"--- {where}: the bash block exited {result.returncode}", flush=True)
                return 1
        print(f"--- {where}: {time.perf_counter() - started:.1f} s, {cpu_seconds() - cpu:.1f} s of CPU", flush=True)
    return 0


def cpu_seconds():
    """CPU time of this process and of the finished processes it started."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


if __name__ == "__main__":
    sys.exit(run_blocks(json.load(sys.stdin)))
