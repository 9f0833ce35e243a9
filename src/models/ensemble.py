"""Ensemble: the mean of trained classifiers' class probabilities, as one classifier. Its members are runs (run
folders, checkpoints or exports) loaded as `src.api.load` loads them, each with its own prompt, label words,
calibration and tokenization; each review's probabilities are the mean of theirs, as `data.soft_labels` averages the
members' prediction files for a distilled student (src/data/soft_labels.py). So the ensemble teacher of the
label-budget study is scored on its own from the very runs that labelled its student's reviews.

Nothing is fitted (the members are): `fit` has no training batches, and the ensemble classifies through `predict`, the
Python API and the study runner, from its inputs' texts (each member tokenizes them its own way).

To run: python -m src predict --config configs/gpt_zeroshot_ensemble_imdb.yaml
          --model.init_args.members '[<run>, <run>]' --data.init_args.predict_texts '["A moving film."]'
"""

import torch

from src.errors import UserError
from src.models.base import HFModule


class Ensemble(HFModule):
    """The mean of its member runs' class probabilities."""

    def __init__(self, members: list[str], model_name: str = "HuggingFaceTB/SmolLM2-135M-Instruct"):
        """
        Args:
            members: the runs averaged: run folders, checkpoints or exports of classifiers with the same classes (a
                fitted zero-shot run: `python -m src fit --config configs/gpt_zeroshot_imdb.yaml`).
            model_name: the tokenizer of the data module's inputs (the members tokenize the texts themselves).
        """
        if not members:
            raise UserError("model.members is empty; fix: list the runs to average (run folders or checkpoints)")
        super().__init__(model_name)
        self.predictors: list | None = None

    def load_model(self) -> torch.nn.ModuleList:
        # The members' modules, loaded on first use (`setup`, or the first prediction) and not here: a module built
        # inside another's __init__ under LightningCLI would record the outer one's hyperparameters as its own.
        return torch.nn.ModuleList()

    def setup(self, stage: str) -> None:  # not HFModule's: nothing trains
        self.members()

    def members(self) -> list:
        """The members, as `src.api.load` loads them (one `Predictor` each), on this module's device."""
        if self.predictors is None:
            from src.api import load  # here: src.api imports the models package

            # full precision: the members score as they were fitted (a teacher's soft labels do not move with the CPU)
            self.predictors = [load(path, device=str(self.device), quantize="none") for path in self.hparams.members]
            names = {tuple(p.module.hparams.label_names) for p in self.predictors}
            if len(names) > 1:
                raise UserError(f"the ensemble's members classify into different classes ({sorted(names)}); fix: "
                                "average runs with the same label_names")
            self.model.extend(p.module for p in self.predictors)  # moved with the ensemble from now on
            self.label_names = list(names.pop())
        return self.predictors

    def configure_optimizers(self) -> None:
        return None  # nothing to train

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Each text's label and class probabilities: the mean of the members' probabilities."""
        texts = batch["text"]
        probs = torch.stack([torch.tensor([row["probabilities"] for row in member.predict(texts)])
                             for member in self.members()]).mean(0)
        labels = probs.argmax(-1).tolist()
        return {"id": batch["idx"].tolist(), "text": texts, "label": labels,
                "label_name": [self.label_names[i] for i in labels], "probabilities": probs.tolist()}
