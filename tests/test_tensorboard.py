"""TensorBoard, as a user opens it: served on loopback against a finished tiny run, read through its HTTP API."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from src.cli import main
from tests.conftest import tiny_args

pytestmark = pytest.mark.slow  # starts processes


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def run_dir(tiny_bert, imdb_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tb")
    main(["fit", *tiny_args(tiny_bert, imdb_dir, tmp, trainer__max_epochs=2)])
    (run,) = (tmp / "runs" / "bert_imdb").iterdir()
    return run


def get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def serve(logdir) -> tuple[subprocess.Popen, str]:
    """TensorBoard on a free loopback port, once it answers."""
    with socket.socket() as s:  # a free port on loopback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
                             "--port", str(port), "--load_fast", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if get(f"{url}/data/plugin/scalars/tags"):
                break
        except OSError:
            pass
        time.sleep(0.5)
    return proc, url


@pytest.fixture(scope="module")
def board(run_dir):
    proc, url = serve(run_dir)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_scalars_over_http(board):
    (tags,) = get(f"{board}/data/plugin/scalars/tags").values()  # one run
    assert {"train/loss", "val/loss", "val/acc", "val/f1", "val/auroc", "train/samples_per_sec",
            "train/tokens_per_sec", "train/tflops_per_sec", "train/mfu"} <= set(tags)
    assert any(tag.startswith("lr-AdamW") for tag in tags)


def test_images_tables_and_hparams_over_http(board):
    (images,) = get(f"{board}/data/plugin/images/tags").values()
    assert {"val/confusion_matrix", "val/precision_recall"} <= set(images)
    (texts,) = get(f"{board}/data/plugin/text/tags").values()
    assert "val/worst_predictions/text_summary" in texts
    request = urllib.request.Request(f"{board}/data/plugin/hparams/experiment", data=b'{"experimentName": ""}',
                                     headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"})
    experiment = json.loads(urllib.request.urlopen(request, timeout=10).read())
    names = {h["name"] for h in experiment["hparamInfos"]}
    metrics = {m["name"]["tag"] for m in experiment["metricInfos"]}
    assert [h["name"] for h in experiment["hparamInfos"]][:2] != ["_class_path", "_instantiator"]
    assert {"learning_rate", "batch_size", "max_length", "labelled_reviews", "steps", "precision"} <= names
    assert not [n for n in names if n.startswith("_") or "cache_dir" in n]  # what a user compares, nothing else
    assert {"val/acc", "val/best_acc"} <= metrics
    (tags,) = get(f"{board}/data/plugin/scalars/tags").values()
    assert not [tag for tag in tags if tag.startswith(("best/", "final/"))]  # no lone points at step 0
    (best,) = get(f"{board}/data/plugin/scalars/scalars?run=.&tag=val/best_acc")
    assert best[1] > 0  # at the last step, beside the val/acc curve


def test_one_image_per_validation(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"images": 0})
    events.Reload()
    assert len(events.Images("val/confusion_matrix")) == 2  # two epochs; the sanity check logs none


def test_fit_ends_with_a_summary(tiny_bert, imdb_dir, tmp_path, capsys):
    main(["fit", *tiny_args(tiny_bert, imdb_dir, tmp_path, trainer__max_epochs=1)])
    out = capsys.readouterr().out
    summary = out[out.index("fit done after 5 optimizer steps"):]
    for line in ("best checkpoint: ", "(val/acc = ", "last checkpoint: ", "logs: ", "export: "):
        assert line in summary


def test_flops_per_token_between_weights_and_attention_bounds(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    weights = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 32 + 2 * 32  # the tiny BERT's matmul weights (tests/test_flops.py)
    tflops, tokens = events.Scalars("train/tflops_per_sec"), events.Scalars("train/tokens_per_sec")
    assert len(tflops) == len(tokens) > 0
    for f, t in zip(tflops, tokens):
        per_token = f.value * 1e12 / t.value
        assert 6 * weights < per_token < 6 * weights + 12 * 2 * 32 * 256  # attention adds up to 12 * L * d * 256


def chromium(*args: str) -> str:
    """Headless Chromium's output (`--dump-dom`: the page as rendered, scripts run)."""
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--run-all-compositor-stages-before-draw", "--window-size=1600,1100",
                           "--virtual-time-budget=40000", *args],
                          capture_output=True, text=True, timeout=180)
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium): the first screen is "
                    "read in a real browser")
def test_the_first_screen_is_loss_accuracy_and_learning_rate_in_a_real_browser(run_dir, tmp_path):
    """What a user sees on opening the run (TIME SERIES): the Overview group first, its cards in the story's order.
    The screenshots (SCALARS, whose SVG charts headless Chromium draws every time; HPARAMS; IMAGES) go to
    $TENSORBOARD_SHOTS: docs/make_figures.sh points it at docs/, and $TENSORBOARD_RUN at a real run."""
    run = Path(os.environ.get("TENSORBOARD_RUN", run_dir))
    proc, url = serve(run)
    try:
        dom = chromium("--dump-dom", f"{url}/?forceSvg=true")  # SVG lines: headless Chromium has no WebGL
        groups = re.findall(r'class="group-title" title="([^"]+)"', dom)
        assert groups[:1] == ["Overview"], groups
        cards = re.findall(r'title="(Overview/[^"]+)"', dom)
        assert cards[:4] == ["Overview/1 loss (training)", "Overview/1 loss (validation)",
                             "Overview/2 accuracy (validation)", "Overview/3 learning rate"], cards
        shots = Path(os.environ.get("TENSORBOARD_SHOTS", tmp_path))
        for name, page in (("scalars", "#scalars"), ("hparams", "#hparams"), ("images", "#images")):
            chromium(f"--screenshot={shots / f'tensorboard_{name}.png'}", f"{url}/{page}")
            assert (shots / f"tensorboard_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
