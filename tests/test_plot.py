import pytest
from torch.utils.tensorboard import SummaryWriter

from src.errors import UserError
from src.plot import plot, smooth


def test_smooth_is_debiased_and_follows_a_constant():
    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert smooth([0.0, 1.0], weight=0.5) == pytest.approx([0.0, 2 / 3])


def test_plot_writes_a_png_of_the_runs_curves(tmp_path):
    writer = SummaryWriter(tmp_path / "run")
    for step in range(1, 21):
        writer.add_scalar("train/loss", 1 / step, step)
    for step in (10, 20):
        writer.add_scalar("val/loss", 0.5 / step, step)
        writer.add_scalar("val/acc", 0.8 + step / 100, step)
    writer.close()
    out = plot(tmp_path / "run", tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_plot_names_a_folder_without_scalars(tmp_path):
    with pytest.raises(UserError, match="has no train/loss scalars"):
        plot(tmp_path, tmp_path / "curves.png")
