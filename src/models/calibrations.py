"""The zero-shot classifier's calibrations (src/models/zero_shot.py): each one class that registers itself by `name`,
so a new calibration is a new class here (or anywhere imported), which the module, `--model.calibration`, its
metrics and the prompt grid pick up without an edit.
- `none` keeps the raw label scores;
- `content_free` divides by the label probabilities the model gives content-free inputs such as "N/A" (Zhao et al.
  2021);
- `unlabelled` centres each class's score on its median over unlabelled reviews of the training pool, which `fit`
  scores (labels unused, nothing trained) and keeps in the checkpoint: then it applies to any input, one review
  included. With `calibration_lengths`, an input is centred on the medians of training texts of its own length;
- `labelled` fits class offsets and a temperature by logistic regression on the scores of labelled training reviews
  (Platt scaling), penalised towards the `unlabelled` calibration of the same reviews;
- `transductive` centres on the medians of the evaluated reviews themselves: a comparison only (it borrows the
  evaluation set's balance and cannot classify one review), never a prediction.

To run: python -m src fit --config configs/gpt_zeroshot_imdb.yaml --model.init_args.calibration content_free
"""

from typing import ClassVar

import torch
from torch import nn

from src.errors import UserError

CALIBRATIONS: dict[str, type["Calibration"]] = {}


def centre(log_scores: torch.Tensor) -> torch.Tensor:
    """Scores relative to their mean over the classes (a row's softmax is unchanged)."""
    return log_scores - log_scores.mean(1, keepdim=True)


def balance(log_scores: torch.Tensor) -> torch.Tensor:
    """Centre each class's score on its median over the rows: with two classes, half go to each."""
    centred = centre(log_scores)
    return centred - centred.median(0).values


class Calibration:
    """How raw class log-scores become calibrated ones. A subclass sets `name` and registers itself:
    - `attach(module, chosen)` registers what it keeps in the module's checkpoint (`chosen`: it is the configured
      calibration), in `__init__`;
    - `fit(module, centred, review_tokens, whole, labels)` fits it on the training reviews `fit` scored;
    - `ready(module)` says whether it can calibrate now, `apply(module, raw, review_tokens)` calibrates (or raises the
      `UserError` that says how to make it ready).
    `label_free`: fitted without a label (the prompt grid compares these); `per_review`: calibrates one review on its
    own (else of a whole evaluated set only, and never predicts); `compared`: logged in every validate/test."""

    name: ClassVar[str]
    label_free: ClassVar[bool] = True
    per_review: ClassVar[bool] = True
    compared: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        CALIBRATIONS[cls.name] = cls

    def attach(self, module: nn.Module, chosen: bool) -> None:
        pass

    def fit(self, module: nn.Module, centred: torch.Tensor, review_tokens: torch.Tensor, whole: torch.Tensor,
            labels: torch.Tensor) -> None:
        pass

    def ready(self, module: nn.Module) -> bool:
        return True

    def apply(self, module: nn.Module, raw: torch.Tensor, review_tokens: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError


def predicting() -> list[str]:
    """The calibrations a run may be configured with (those that calibrate one review on its own)."""
    return [name for name, cls in CALIBRATIONS.items() if cls.per_review]


def label_free() -> list[str]:
    """The calibrations fitted without a label that predict: what the prompt grid chooses among."""
    return [name for name, cls in CALIBRATIONS.items() if cls.label_free and cls.per_review]


def compared() -> list[str]:
    """The calibrations every validate/test logs under `{stage}/{name}/`: one run compares them."""
    return [name for name, cls in CALIBRATIONS.items() if cls.compared]


class NoCalibration(Calibration):
    name = "none"

    def apply(self, module, raw, review_tokens):
        return raw


class ContentFree(Calibration):
    name = "content_free"

    def apply(self, module, raw, review_tokens):
        return raw - module.content_free_prior().to(raw.device)


class Unlabelled(Calibration):
    name = "unlabelled"

    def attach(self, module, chosen):
        # Always kept: the `labelled` calibration is penalised towards it, and every run compares it.
        module.register_buffer("unlabelled_offset", torch.full((module.num_classes,), float("nan")))
        lengths = sorted(module.hparams.calibration_lengths)
        if lengths:  # one offset per length bucket; edges halfway (log scale) between the cut lengths
            uppers = lengths[1:] + [2 * lengths[-1]]
            module.length_edges = torch.tensor([(a * b) ** 0.5 for a, b in zip(lengths, uppers)])
            module.register_buffer("length_offsets", torch.full((len(lengths) + 1, module.num_classes), float("nan")))

    def fit(self, module, centred, review_tokens, whole, labels):
        # whole reviews only: the offset without lengths
        module.unlabelled_offset.copy_(centred[whole].median(0).values)
        if module.hparams.calibration_lengths:
            buckets = torch.bucketize(review_tokens.float().cpu(), module.length_edges)
            for b in range(len(module.length_offsets)):
                chosen = (buckets == b).to(centred.device)
                offsets = centred[chosen].median(0).values if chosen.any() else module.unlabelled_offset
                module.length_offsets[b] = offsets

    def ready(self, module):
        return not module.unlabelled_offset.isnan().any()

    def apply(self, module, raw, review_tokens):
        if not self.ready(module):
            raise UserError(
                "the zero-shot `unlabelled` calibration is not fitted: run `python -m src fit` with this recipe "
                "(it scores unlabelled training reviews, trains nothing) and pass its checkpoint "
                "(--ckpt_path <run>/checkpoints/last.ckpt), or set --model.calibration content_free")
        if review_tokens is not None and module.hparams.calibration_lengths:
            buckets = torch.bucketize(review_tokens.float().cpu(), module.length_edges)
            return centre(raw) - module.length_offsets[buckets].to(raw.device)
        return centre(raw) - module.unlabelled_offset.to(raw.device)


class Labelled(Calibration):
    name = "labelled"
    label_free = False
    compared = False  # logged where it is the configured one (it needs the labels of that run's fit)

    def attach(self, module, chosen):
        if chosen:  # only then: checkpoints of the other calibrations keep their keys
            module.register_buffer("labelled_scale", torch.full((1,), float("nan")))  # 1 / temperature
            module.register_buffer("labelled_offset", torch.full((module.num_classes,), float("nan")))

    def ready(self, module):
        return module.hparams.calibration == self.name and not module.labelled_scale.isnan().any()

    def fit(self, module, centred, review_tokens, whole, labels):
        """Platt scaling: the scale (1 / temperature) and class offsets minimising the cross-entropy of
        `centred * scale - offset` on the labelled reviews, penalised towards scale 1 and the `unlabelled` offsets;
        one full-batch L-BFGS solve."""
        if module.hparams.calibration != self.name:
            return
        centred, labels = centred[whole], labels[whole]
        if (labels < 0).any() or len(labels.unique()) < 2:
            raise UserError("the zero-shot `labelled` calibration needs labelled training reviews of every class; fix: "
                            "set --data.init_args.label_budget N (N at least the number of classes)")
        with torch.inference_mode(False), torch.enable_grad():  # validation hooks run without autograd
            x, y = centred.detach().float().clone(), labels.clone()
            prior = module.unlabelled_offset.detach().float().clone()
            log_scale = torch.zeros(1, device=x.device, requires_grad=True)
            offset = prior.clone().requires_grad_(True)
            optimizer = torch.optim.LBFGS([log_scale, offset], max_iter=200, line_search_fn="strong_wolfe")

            def loss() -> torch.Tensor:
                optimizer.zero_grad()
                value = nn.functional.cross_entropy(x * log_scale.exp() - offset, y) + module.hparams.calibration_l2 * (
                    log_scale.square().sum() + (offset - prior).square().sum())
                value.backward()
                return value

            optimizer.step(loss)
        module.labelled_scale.copy_(log_scale.detach().exp())
        module.labelled_offset.copy_(offset.detach())

    def apply(self, module, raw, review_tokens):
        if not self.ready(module):
            raise UserError(
                "the zero-shot `labelled` calibration is not fitted: run `python -m src fit` with this recipe and "
                "--data.init_args.label_budget N (it fits on those labelled reviews) and pass its checkpoint "
                "(--ckpt_path <run>/checkpoints/last.ckpt)")
        return centre(raw) * module.labelled_scale.to(raw.device) - module.labelled_offset.to(raw.device)


class Transductive(Calibration):
    name = "transductive"
    per_review = False

    def apply(self, module, raw, review_tokens):
        return balance(raw)
