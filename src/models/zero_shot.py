"""ZeroShotClassifier: classify reviews with a causal LM by prompting, without training.

Each review sits in a prompt template (the data module's `prompt_template`); the score of a class
is the log-probability of its label word (or phrase) right after the prompt. A calibration (src/models/calibrations.py,
a registry: `none`, `content_free`, `unlabelled`, `labelled`, ...) removes the model's prior for one label over
another; `fit` scores training reviews for the ones that need fitting (nothing is trained) and keeps them in the
checkpoint, so one review classifies on its own. `validate` and `test` log the configured calibration's metrics
under `{stage}/` and every compared calibration's under `{stage}/<name>/`, so one run compares them.

To run: python -m src fit --config configs/gpt_zeroshot_imdb.yaml   (calibrates, then validates)
"""

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel

from src.data.text import template_ids, tokenize
from src.errors import UserError
from src.models.base import EVAL_STAGES, HFModule, OnePassFit
from src.models.calibrations import CALIBRATIONS, balance, centre, predicting  # noqa: F401 (balance: re-exported)
from src.models.metrics import class_scores, classification_metrics
from src.pretrained import from_pretrained


class ZeroShotClassifier(OnePassFit, HFModule):
    """Scores each class by the log-probability of its label word after the prompt."""

    def __init__(
        self,
        model_name: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
        label_words: list[str] = [" negative", " positive"],
        label_names: list[str] = ["negative", "positive"],
        prompt_template: str = "Review: {text}\nOverall, the movie was",
        calibration: str = "unlabelled",
        content_free_texts: list[str] = ["N/A", "", "[MASK]"],
        calibration_lengths: list[int] = [],
        calibration_l2: float = 0.1,
    ):
        """
        Args:
            model_name: hub id, local folder, .gguf file, or packaged offline model (see src/pretrained.py).
            label_words: the continuation scored for each class, by label id (mind the leading space).
            label_names: class names by label id, for predictions.
            prompt_template: the prompt, with `{text}` where the review goes (the data module's `prompt_template`).
            calibration: a registered calibration (src/models/calibrations.py): `unlabelled` centres scores on their
                medians over unlabelled training reviews (fitted by `fit`, kept in the checkpoint); `labelled` fits
                offsets and a temperature on the labels of the training reviews `fit` scores (set
                data.label_budget); `content_free` divides by the label probabilities of content-free inputs;
                `none` keeps raw scores.
            content_free_texts: inputs with no content, put in the template to measure the model's prior.
            calibration_lengths: `unlabelled` by input length: `fit` also scores each calibration review cut to its
                first this many tokens (e.g. [16, 32, 64, 128]), and an input is centred on the medians of the
                training texts nearest its length (log scale; longer ones: of whole reviews). []: one offset for all.
            calibration_l2: the `labelled` calibration's penalty (per review) on its log-temperature and on its
                offsets' distance from the `unlabelled` ones: how far a few labels may move it.
        """
        n = len(label_words)
        # Checked before the model loads: each would fail later, in a shape error, an index error or a wrong name.
        if n < 2 or len(label_names) != n:
            raise UserError(f"model.label_words has {n} and model.label_names {len(label_names)}; fix: a word and a "
                            "name for each class, at least 2 ([' negative', ' positive'] and [negative, positive])")
        if not content_free_texts:
            raise UserError("model.content_free_texts is empty; fix: a few inputs with no content, e.g. ['N/A', '']")
        if calibration not in predicting():  # an unknown one; or one that cannot classify a review on its own
            only = " (a comparison only: it cannot classify one review)" if calibration in CALIBRATIONS else ""
            raise UserError(f"model.calibration is {calibration!r}{only}; fix: one of "
                            f"{', '.join(map(repr, predicting()))}")
        super().__init__(model_name)
        self.label_ids = [self.tokenizer(w, add_special_tokens=False)["input_ids"] for w in label_words]
        self.metrics = nn.ModuleDict({
            f"{s}_{kind}": classification_metrics(n).clone(prefix=f"{s}/{kind}/" if kind != "main" else f"{s}/")
            for s in EVAL_STAGES for kind in ("main", *CALIBRATIONS)
        })
        self.log_prior: torch.Tensor | None = None  # content-free prior, measured on first use
        self.num_classes = n
        for name, cls in CALIBRATIONS.items():  # what each keeps in the checkpoint (NaN until fitted)
            cls().attach(self, name == calibration)
        self.template_tokens = tuple(map(len, template_ids(prompt_template, self.tokenizer)))  # as tokenize builds it
        self._scores: list[torch.Tensor] = []
        self._labels: list[torch.Tensor] = []

    def load_model(self) -> PreTrainedModel:
        return from_pretrained(AutoModelForCausalLM, self.hparams.model_name).eval().requires_grad_(False)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        # The data module puts the reviews in its template, the prior and the length buckets use this one: a template
        # changed in one place only would calibrate the scores of one prompt with the prior of another.
        data = self.trainer.datamodule
        theirs = data.hparams.get("prompt_template") if data is not None else None
        if theirs is not None and theirs != self.hparams.prompt_template:
            raise UserError(f"data.prompt_template {theirs!r} is not model.prompt_template "
                            f"{self.hparams.prompt_template!r}; fix: set both to the same (the configs share one YAML "
                            "anchor, *prompt)")

    @torch.no_grad()
    def label_log_probs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[batch, classes]: log P(label word | prompt), for right-padded prompts."""
        if all(len(ids) == 1 for ids in self.label_ids):  # one forward pass scores every class
            last = self._last_token_logits(input_ids, attention_mask).log_softmax(-1)
            return last[:, [ids[0] for ids in self.label_ids]]
        return torch.stack([self._continuation_log_prob(input_ids, attention_mask, ids) for ids in self.label_ids], 1)

    def _hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                         logits_to_keep=1)
        return out.hidden_states[-1]  # after the final norm: the LM head's input

    def _last_token_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self._hidden(input_ids, attention_mask)
        last = attention_mask.sum(1) - 1
        # Only the last prompt position goes through the LM head: a [batch, vocab] matrix, not [batch, length, vocab].
        return self.model.get_output_embeddings()(hidden[torch.arange(len(last)), last]).float()

    def _continuation_log_prob(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, ids: list[int]
    ) -> torch.Tensor:
        lengths = attention_mask.sum(1)
        cont = torch.tensor(ids, device=input_ids.device)
        width = int(lengths.max()) + len(ids)
        seq = input_ids.new_full((len(lengths), width), self.tokenizer.pad_token_id or 0)
        mask = torch.zeros_like(seq)
        for i, n in enumerate(lengths.tolist()):
            seq[i, :n], seq[i, n : n + len(ids)] = input_ids[i, :n], cont
            mask[i, : n + len(ids)] = 1
        hidden = self._hidden(seq, mask)
        # Position n-1+j predicts continuation token j.
        pos = lengths[:, None] - 1 + torch.arange(len(ids), device=seq.device)
        picked = hidden[torch.arange(len(lengths))[:, None], pos]
        logp = self.model.get_output_embeddings()(picked).float().log_softmax(-1)
        return logp.gather(-1, cont.expand(len(lengths), -1)[..., None]).squeeze(-1).sum(-1)

    def content_free_prior(self) -> torch.Tensor:
        """Log of the mean label probabilities (renormalised over the labels) on content-free prompts."""
        if self.log_prior is None:
            hp = self.hparams
            ids = tokenize(hp.content_free_texts, self.tokenizer, 10_000, "head", hp.prompt_template)
            enc = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt", padding_side="right")
            enc = enc.to(self.device)
            probs = self.label_log_probs(enc["input_ids"], enc["attention_mask"]).log_softmax(-1).exp().mean(0)
            self.log_prior = probs.log()
        return self.log_prior

    def forward(self, batch: dict) -> torch.Tensor:
        """Raw class log-scores, [batch, classes]: label log-probabilities renormalised over the labels."""
        return self.label_log_probs(batch["input_ids"], batch["attention_mask"]).log_softmax(-1)

    @property
    def fitted(self) -> bool:
        """Whether the `unlabelled` calibration has been fitted (by `fit`, or loaded from its checkpoint)."""
        return CALIBRATIONS["unlabelled"]().ready(self)

    @property
    def labelled_fitted(self) -> bool:
        """Whether the `labelled` calibration is the configured one and has been fitted."""
        return CALIBRATIONS["labelled"]().ready(self)

    def review_tokens(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """How many tokens of each prompt are the review's (the template's own tokens not counted)."""
        return attention_mask.sum(1) - sum(self.template_tokens)

    def calibrate(self, raw: torch.Tensor, calibration: str | None = None,
                  review_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Calibrated log-scores of any number of reviews, one included (`transductive`: of a whole set only);
        `review_tokens` picks each input's length bucket where the calibration has them."""
        return CALIBRATIONS[calibration or self.hparams.calibration]().apply(self, raw, review_tokens)

    def collect(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """`fit` scores training reviews for the calibration: scores, review lengths, whether a row is a whole review,
        labels (read by the `labelled` calibration only; -1 where a batch has none). With `calibration_lengths`, each
        review is also cut to its first k review tokens."""
        scores, ids, mask = self(batch), batch["input_ids"], batch["attention_mask"]
        labels = batch["labels"] if "labels" in batch else torch.full((len(ids),), -1, device=ids.device)
        lengths, (head, tail) = mask.sum(1).tolist(), self.template_tokens
        rows, tokens, row_labels = [scores], [self.review_tokens(mask)], [labels]
        for k in self.hparams.calibration_lengths:
            longer = [i for i, n in enumerate(lengths) if n - head - tail > k]
            if not longer:
                continue
            # The template's start, the review's first k tokens, the template's end: all the same length, no padding.
            cut = torch.stack([torch.cat([ids[i, : head + k], ids[i, lengths[i] - tail : lengths[i]]]) for i in longer])
            rows.append(self({"input_ids": cut, "attention_mask": torch.ones_like(cut)}))
            tokens.append(torch.full((len(longer),), k, device=ids.device))
            row_labels.append(labels[longer])
        whole = torch.zeros(sum(len(r) for r in rows), dtype=torch.bool, device=ids.device)
        whole[: len(scores)] = True
        return torch.cat(rows), torch.cat(tokens), whole, torch.cat(row_labels)

    def solve(self, scores: torch.Tensor, review_tokens: torch.Tensor, whole: torch.Tensor,
              labels: torch.Tensor) -> None:
        centred = centre(scores)
        for cls in CALIBRATIONS.values():  # in registry order: `labelled` is penalised towards `unlabelled`
            cls().fit(self, centred, review_tokens, whole, labels)

    def _common_step(self, batch: dict, stage: str) -> None:
        raw = self(batch)
        kinds = [name for name, cls in CALIBRATIONS.items() if cls.per_review and cls().ready(self)]
        tokens = self.review_tokens(batch["attention_mask"])
        for kind in kinds:  # calibrations that score each review on its own: metrics update as we go
            self._update(f"{stage}_{kind}", self.calibrate(raw, kind, tokens), batch["labels"])
        if self.hparams.calibration in kinds:
            self._update(f"{stage}_main", self.calibrate(raw, review_tokens=tokens), batch["labels"])
        elif not self.trainer.sanity_checking:  # before fit has calibrated, the sanity check logs what it can
            self.calibrate(raw)  # raises the not-fitted error
        self._scores.append(raw)
        self._labels.append(batch["labels"])

    def _update(self, key: str, log_scores: torch.Tensor, labels: torch.Tensor) -> None:
        self.metrics[key].update(class_scores(log_scores.softmax(-1)), labels)

    def log_epoch_metrics(self, stage: str) -> None:
        """Every calibration scored this epoch (its metrics were reset at the epoch's start), once (see
        `HFModule.log_epoch_metrics`); the chosen one on the progress bar."""
        for key, metrics in self.metrics.items():
            if key.startswith(f"{stage}_") and any(m.update_called for m in metrics.values()):
                self.log_dict(metrics, prog_bar=key.endswith("_main"))

    def _epoch_end(self, stage: str) -> None:
        """A calibration of a whole set (`transductive`) needs every evaluated review's score (from every rank) before
        it can classify one, so its metrics are updated here, once, from the gathered scores."""
        if self._scores:
            scores = self.all_gather(torch.cat(self._scores)).reshape(-1, len(self.label_ids))
            labels = self.all_gather(torch.cat(self._labels)).reshape(-1)
            self._scores, self._labels = [], []
            for name in (name for name, cls in CALIBRATIONS.items() if not cls.per_review):
                self._update(f"{stage}_{name}", self.calibrate(scores, name), labels)
        self.log_epoch_metrics(stage)

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def on_predict_start(self) -> None:
        self.calibrate(torch.zeros(1, len(self.label_ids)))  # a missing calibration fails before any work

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Each review's label and class probabilities, calibrated on its own."""
        probs = self.calibrate(self(batch), review_tokens=self.review_tokens(batch["attention_mask"])).softmax(-1)
        labels = probs.argmax(-1).tolist()
        return {"id": batch["idx"].tolist(), "text": batch["text"], "label": labels,
                "label_name": [self.hparams.label_names[i] for i in labels], "probabilities": probs.tolist()}
