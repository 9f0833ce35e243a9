"""A fit on a time budget (src/callbacks/time_budget.py), on a fake clock: the learning rate warms up and decays by the
time spent, training goes around the reviews as often as the budget allows, and the final validation fits inside it;
a resume keeps the time already spent."""

import re

import lightning as L
import pytest

from src.callbacks import TimeBudget
from src.cli import main
from src.errors import UserError
from tests.conftest import tiny_args


class FakeTime(L.Callback):
    """Each training step takes 10 s and each validation batch 5 s, on the budget's clock (the sanity check's batches
    `sanity` s each, in turn; none by default); notes what happened."""

    def __init__(self, sanity: tuple[float, ...] = ()):
        self.now, self.lrs, self.validations, self.sanity = 0.0, [], [], list(sanity)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.now += 10

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self.now += 5
        elif self.sanity:
            self.now += self.sanity.pop(0)

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validations.append((trainer.global_step, self.now))


def test_a_budgeted_fit_schedules_by_time_goes_around_the_data_and_validates_last_within_budget(
        tiny_bert, imdb_dir, tmp_path, capsys):
    # 80 training reviews in batches of 16: 5 steps an epoch; 16 validation reviews in batches of 8: 10 s each time.
    cli = main([*tiny_args(tiny_bert, imdb_dir, tmp_path, trainer__max_epochs="-1", data__eval_batch_size="8",
                           progress_lines__every_n_steps="5"),
                "--trainer.callbacks+=src.callbacks.TimeBudget", "--trainer.callbacks.init_args.minutes", "4",
                "--trainer.callbacks.init_args.margin", "0"], run=False)
    (budget,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, TimeBudget)]
    fake = FakeTime()
    budget.clock, budget.start = (lambda: fake.now), 0.0
    cli.trainer.callbacks.insert(0, fake)  # its clock moves before the budget looks
    cli.trainer.fit(cli.model, cli.datamodule)
    steps = cli.trainer.global_step
    assert cli.trainer.current_epoch >= 3  # around the 80 reviews several times: 240 s hold about 22 steps
    assert fake.now <= budget.budget  # the final validation included
    assert budget.budget - fake.now < 20  # and little of it left unused: less than two steps
    # Validations at each epoch's end, and one more of the final weights: the fit stopped mid-epoch, on time.
    assert steps % 5 and fake.validations[-1][0] == steps and fake.validations[-2][0] == steps - steps % 5
    peak = max(fake.lrs)
    assert fake.lrs[0] == 0 and fake.lrs[2] < peak and fake.lrs.index(peak) <= 5  # warm-up: the first 10% of the time
    assert all(a >= b for a, b in zip(fake.lrs[fake.lrs.index(peak):], fake.lrs[fake.lrs.index(peak) + 1:]))
    assert fake.lrs[-1] < 0.2 * peak  # decayed by the budget's end (to within two of these 23 long steps)
    # Progress lines count no step total (there is none) and say the budget's time left: at step 5, 240 - 50 s.
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert lines[0].startswith("step 5  loss ") and lines[0].endswith("left 0:03:10 of the budget")


def test_a_budget_shorter_than_the_validation_interval_keeps_time_for_the_last_validation(
        tiny_bert, imdb_dir, tmp_path):
    # No validation inside the fit (the interval is an hour of real time), so nothing times one before the last: the
    # sanity check's two batches (8 s, then 5 s) stand in, scaled to the 8 batches of 2 reviews (8 + 7 x 5 = 43 s).
    cli = main([*tiny_args(tiny_bert, imdb_dir, tmp_path, trainer__max_epochs="-1", data__eval_batch_size="2",
                           trainer__val_check_interval="00:01:00:00", trainer__num_sanity_val_steps="2"),
                "--trainer.callbacks+=src.callbacks.TimeBudget", "--trainer.callbacks.init_args.minutes", "4",
                "--trainer.callbacks.init_args.margin", "0"], run=False)
    (budget,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, TimeBudget)]
    fake = FakeTime(sanity=(8, 5))
    budget.clock, budget.start = (lambda: fake.now), 0.0
    cli.trainer.callbacks.insert(0, fake)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert budget.last_validation == 40  # the final validation, timed: 8 batches of 5 s
    assert len(fake.validations) == 1 and fake.validations[0][0] == cli.trainer.global_step  # of the final weights
    assert fake.now <= budget.budget  # the last validation fit inside the budget
    assert budget.budget - fake.now < 20  # little of it unused: the estimate was 3 s over the real 40


def test_a_resumed_budget_keeps_the_time_already_spent():
    now = [100.0]
    first = TimeBudget(minutes=10)
    first.clock = lambda: now[0]
    first.start, first.last_validation = 40.0, 12.0  # 60 s spent so far
    second = TimeBudget(minutes=10)
    second.load_state_dict(first.state_dict())
    second.clock, second.start = (lambda: now[0]), now[0]  # the resumed fit starts now
    now[0] += 30
    assert second.elapsed() == pytest.approx(90.0) and second.training_budget() == pytest.approx(600 * 0.99 - 12)


@pytest.mark.parametrize("kwargs, problem", [
    ({"minutes": 0}, "minutes is 0"),
    ({"minutes": 5, "margin": 1.0}, "margin is 1.0"),
])
def test_a_budget_that_cannot_be_spent_is_refused(kwargs, problem):
    with pytest.raises(UserError, match=problem):
        TimeBudget(**kwargs)


class BarProbe(L.Callback):
    """What the progress bar's training line says after each step."""

    def __init__(self, bar):
        self.bar, self.said = bar, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.said.append(self.bar.progress.tasks[self.bar.train_progress_bar_id].description)


def test_a_budgeted_fit_on_a_terminal_shows_the_budget_not_a_negative_epoch_count(tiny_bert, imdb_dir, tmp_path):
    from src.callbacks import BudgetProgressBar
    from src.callbacks.progress import budget_description

    assert budget_description(1, 751, 2700) == "Epoch 1 · 12:31 of 45:00"
    cli = main([*tiny_args(tiny_bert, imdb_dir, tmp_path, trainer__max_epochs="-1", trainer__max_steps="3"),
                "--trainer.enable_progress_bar", "true",
                "--trainer.callbacks+=src.callbacks.TimeBudget", "--trainer.callbacks.init_args.minutes", "4"],
               run=False)
    (bar,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, BudgetProgressBar)]  # in place of Lightning's bar
    probe = BarProbe(bar)
    cli.trainer.callbacks.append(probe)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert len(probe.said) == 3 and all(re.fullmatch(r"Epoch 0 · 0:0\d of 4:00", said) for said in probe.said)
    plain = main([*tiny_args(tiny_bert, imdb_dir, tmp_path / "plain"), "--trainer.enable_progress_bar", "true"],
                 run=False)
    assert not [cb for cb in plain.trainer.callbacks if isinstance(cb, BudgetProgressBar)]  # no budget: Lightning's
