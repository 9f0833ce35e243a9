"""InContextClassifier: zero-shot prompting with k labelled demonstrations before each review (in-context learning).

The demonstrations (each review cut to `demonstration_tokens` tokens, in the prompt template, followed by its label
word) form one prefix that every query shares. Its keys and values are computed once and reused for every batch (a
KV-cache prefix), so a query costs its own tokens plus attention over the prefix, not a forward pass over k more
reviews. Scoring and calibration are the zero-shot classifier's (`unlabelled` is fitted by `fit` on unlabelled
training reviews, with the demonstrations in front, as every query sees them).

To run: python -m src study run --config configs/studies/label_budget.yaml   (draws the demonstrations per seed)
"""

import torch
from transformers import DynamicCache

from src.data.text import tokenize
from src.models.zero_shot import ZeroShotClassifier


class InContextClassifier(ZeroShotClassifier):
    """A zero-shot classifier whose prompt starts with labelled demonstrations, held as a KV-cache prefix."""

    def __init__(self, demonstrations: list[str], demonstration_labels: list[int], demonstration_tokens: int = 96,
                 **kwargs):
        """
        Args:
            demonstrations: the labelled example reviews, in prompt order.
            demonstration_labels: their class ids (each shown as that class's label word).
            demonstration_tokens: each demonstration's review is cut to this many tokens (head and tail).
            **kwargs: the zero-shot classifier's arguments: model_name, label_words, label_names, prompt_template,
                calibration, content_free_texts.
        """
        super().__init__(**kwargs)
        if len(demonstrations) != len(demonstration_labels):
            raise ValueError("one label per demonstration")
        self._prefix: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per layer: keys, values

    def prefix_ids(self) -> list[int]:
        """The demonstrations as one token sequence: template, label word, blank line, for each."""
        hp, ids = self.hparams, []
        (template,) = tokenize([""], self.tokenizer, 10**6, "head", hp.prompt_template)  # the template's own tokens
        budget = len(template) + hp.demonstration_tokens
        for text, label in zip(hp.demonstrations, hp.demonstration_labels):
            (demo,) = tokenize([text], self.tokenizer, budget, "head_tail", hp.prompt_template)
            ids += demo + self.tokenizer(hp.label_words[label] + "\n\n", add_special_tokens=False)["input_ids"]
        return ids

    def _prefix_cache(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self._prefix is None or self._prefix[0][0].device != self.device:
            ids = torch.tensor([self.prefix_ids()], device=self.device)
            with torch.no_grad():
                cache = self.model(input_ids=ids, use_cache=True, logits_to_keep=1).cache
            self._prefix = [(layer.keys, layer.values) for layer in cache.layers]
        return self._prefix

    def _hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        prefix, n = self._prefix_cache(), len(input_ids)
        # A fresh cache per batch: the model appends the queries' keys to it, and the prefix must stay as it is.
        cache = DynamicCache([(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in prefix],
                             config=self.model.config)
        mask = torch.cat([attention_mask.new_ones(n, prefix[0][0].shape[-2]), attention_mask], 1)
        out = self.model(input_ids=input_ids, attention_mask=mask, cache=cache, use_cache=True,
                         output_hidden_states=True, logits_to_keep=1)
        return out.hidden_states[-1]  # the queries' positions only
