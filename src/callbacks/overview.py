"""TensorBoard's first screen: the story of a fit (loss, accuracy, learning rate) in a group of its own, `Overview`,
which sorts before the others (TensorBoard orders groups by name, capitals first), so that a user opening a run sees
those curves first rather than Lightning's `epoch` staircase. The same values as `train/loss`, `val/*` and the
learning-rate monitor's, logged at the same steps.

To run: on in every fit (src/cli.py adds it); tensorboard --logdir outputs
"""

import lightning as L
from lightning.pytorch.callbacks import Callback

GROUP = "Overview"
# Card names sort in the story's order within the group.
TRAINING_LOSS, VALIDATION_LOSS, LEARNING_RATE = "1 loss (training)", "1 loss (validation)", "3 learning rate"
VALIDATION = {"val/acc": "2 accuracy (validation)", "val/ppl": "2 perplexity (validation)"}


class Overview(Callback):
    """Logs the fit's training loss and learning rate every `log_every_n_steps` steps, and its validation loss and
    accuracy (perplexity for a language model) after each validation, under `Overview/`."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        every, step = trainer.log_every_n_steps, trainer.global_step
        logged = trainer.logger is not None and every and step % every == 0
        if not logged or not isinstance(outputs, dict) or "loss" not in outputs:
            return
        values = {f"{GROUP}/{TRAINING_LOSS}": float(outputs["loss"])}  # a host read on the logged steps only
        if trainer.optimizers:
            values[f"{GROUP}/{LEARNING_RATE}"] = trainer.optimizers[0].param_groups[0]["lr"]
        trainer.logger.log_metrics(values, step - 1)  # at the step Lightning logs train/loss

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.logger is None or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        metrics = trainer.callback_metrics
        values = {f"{GROUP}/{card}": float(metrics[tag]) for tag, card in VALIDATION.items() if tag in metrics}
        if "val/loss" in metrics:
            values[f"{GROUP}/{VALIDATION_LOSS}"] = float(metrics["val/loss"])
        if values:
            trainer.logger.log_metrics(values, max(trainer.global_step - 1, 0))  # as Lightning logs val/*
