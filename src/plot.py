"""Plot a run's training curves from its TensorBoard event files into one PNG.

Top: training loss (raw and smoothed) and validation loss against the step; bottom: the
validation metrics (accuracy, F1, AUROC, or perplexity for language models).

To run: python -m src plot outputs/bert_imdb/version_0 docs/training_curves.png
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
from matplotlib import pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from src.errors import ArgumentParser, UserError  # noqa: E402


def smooth(values: list[float], weight: float = 0.9) -> list[float]:
    """TensorBoard's exponential moving average, debiased at the start."""
    out, last = [], 0.0
    for i, v in enumerate(values, 1):
        last = weight * last + (1 - weight) * v
        out.append(last / (1 - weight**i))
    return out


def plot(run: Path, out: Path, title: str | None = None) -> Path:
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    if "train/loss" not in tags:
        raise UserError(f"{run} has no train/loss scalars; fix: give a run folder with TensorBoard event files")
    series = {t: ([e.step for e in events.Scalars(t)], [e.value for e in events.Scalars(t)]) for t in tags}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    steps, loss = series["train/loss"]
    top.plot(steps, loss, color="tab:blue", alpha=0.3, label="train loss")
    top.plot(steps, smooth(loss), color="tab:blue", label="train loss (smoothed)")
    if "val/loss" in series:
        top.plot(*series["val/loss"], "o-", color="tab:red", label="validation loss")
    top.set_ylabel("loss")
    top.legend()
    top.grid(alpha=0.3)
    for tag in ("val/acc", "val/f1", "val/auroc", "val/ppl"):
        if tag in series:
            bottom.plot(*series[tag], "o-", label=tag)
    bottom.set_xlabel("optimizer step")
    bottom.set_ylabel("validation metric")
    bottom.legend()
    bottom.grid(alpha=0.3)
    fig.suptitle(title or str(run))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str]) -> None:
    parser = ArgumentParser(prog="python -m src plot", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder holding TensorBoard event files")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--title", help="figure title (default: the run folder)")
    args = parser.parse_args(argv)
    print(plot(args.run, args.out, args.title))

