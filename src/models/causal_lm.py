"""CausalLM: a GPT-style model that is fine-tuned on review text (optionally with LoRA) and generates.

`fit` trains on packed blocks of reviews and reports validation loss and perplexity (a sample continuation
per validation comes from `src.callbacks.GenerationSample`); `predict` generates continuations of prompts.

To run: python -m src fit --config configs/gpt_finetune_imdb.yaml
        python -m src predict --config configs/gpt_generate.yaml
"""

import copy

import torch
from torchmetrics import Metric
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedModel

from src.errors import UserError, check_ranges
from src.models.base import EVAL_STAGES, HFModule
from src.models.metrics import PerplexityFromLoss
from src.pretrained import from_pretrained


class CausalLM(HFModule):
    """Fine-tunes and samples from `AutoModelForCausalLM` (GPT-2, Llama-family, GGUF files)."""

    def __init__(
        self,
        model_name: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
        lora_rank: int = 0,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        lora_target_modules: list[str] | None = None,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        top_k: int = 0,
        top_p: float = 1.0,
        repetition_penalty: float = 1.0,
        num_return_sequences: int = 1,
        **kwargs,
    ):
        """
        Args:
            model_name: hub id, local folder, .gguf file, or packaged offline model (see src/pretrained.py).
            lora_rank: LoRA rank; 0 trains all weights.
            lora_alpha: LoRA scaling numerator (the update is scaled by alpha / rank).
            lora_dropout: dropout on the LoRA input.
            lora_target_modules: module names that get adapters; None: peft's default for the architecture.
            max_new_tokens: generation: most new tokens per sequence.
            temperature: generation: sampling temperature; 0 decodes greedily.
            top_k: generation: sample among the k likeliest tokens; 0: no limit.
            top_p: generation: sample among the likeliest tokens whose probabilities sum to p.
            repetition_penalty: generation: > 1 discourages repeating tokens.
            num_return_sequences: generation: sequences per prompt.
            **kwargs: the optimizer settings of `HFModule`: learning_rate, weight_decay, warmup_ratio.
        """
        # Out of range these failed in generate (a division by zero, a config error) or ran as something else.
        check_ranges(
            "model",
            ("lora_rank", lora_rank, lora_rank >= 0, "0 or more (0: all weights train)"),
            ("max_new_tokens", max_new_tokens, max_new_tokens >= 1, "1 or more"),
            ("num_return_sequences", num_return_sequences, num_return_sequences >= 1, "1 or more"),
            ("temperature", temperature, temperature >= 0, "0 or more (0: greedy)"),
            ("top_k", top_k, top_k >= 0, "0 or more (0: no limit)"),
            ("top_p", top_p, 0 < top_p <= 1, "above 0, at most 1"),
            ("repetition_penalty", repetition_penalty, repetition_penalty > 0, "above 0 (1: none)"),
        )
        super().__init__(model_name, **kwargs)
        self.ppl = torch.nn.ModuleDict({stage: PerplexityFromLoss() for stage in EVAL_STAGES})
        sampling, tok = temperature > 0, self.tokenizer
        self.generation_config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=sampling, num_return_sequences=num_return_sequences,
            temperature=temperature if sampling else None, top_k=top_k if sampling and top_k else None,
            top_p=top_p if sampling else None, repetition_penalty=repetition_penalty,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
            eos_token_id=tok.eos_token_id,
        )

    def load_model(self) -> PreTrainedModel:
        hp = self.hparams
        model = from_pretrained(AutoModelForCausalLM, hp.model_name)
        if hp.lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(r=hp.lora_rank, lora_alpha=hp.lora_alpha, lora_dropout=hp.lora_dropout,
                                target_modules=hp.lora_target_modules, task_type="CAUSAL_LM")
            try:
                model = get_peft_model(model, config)
            except ValueError:  # peft: target modules not found in the model
                from transformers.pytorch_utils import Conv1D  # GPT-2's projections

                layers = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                                 if isinstance(m, (torch.nn.Linear, Conv1D))})
                raise UserError(f"model.lora_target_modules {hp.lora_target_modules}: not in the model; fix: names of "
                                f"its projections ({', '.join(layers)}), or null for peft's default") from None
        return model

    def forward(self, batch: dict) -> torch.Tensor:
        """Mean next-token cross-entropy over the non-padding tokens."""
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss

    def _common_step(self, batch: dict, stage: str) -> torch.Tensor:
        loss = self(batch)
        if stage == "train":
            self.log_train_loss(loss)
            return loss
        # Packed blocks are all full, so a mean over blocks is a mean over tokens.
        self.update_loss(stage, loss, weight=len(batch["input_ids"]))
        self.ppl[stage].update(loss, weight=len(batch["input_ids"]))
        return loss

    def epoch_metrics(self, stage: str) -> dict[str, Metric]:
        return {**super().epoch_metrics(stage), f"{stage}/ppl": self.ppl[stage]}

    def generate(self, prompts: list[str], generation_config: GenerationConfig | None = None) -> list[str]:
        """Continuations of `prompts` (without the prompts), one batch, greedy unless the config samples."""
        tok = self.tokenizer
        enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left").to(self.device)
        out = self.model.generate(**enc, generation_config=generation_config or self.generation_config)
        return tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """Continue each prompt: one row per generated sequence."""
        prompt_len = batch["input_ids"].shape[1]
        out = self.model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  generation_config=self.generation_config)
        new = out[:, prompt_len:]
        n = self.generation_config.num_return_sequences
        ended = (new == self.generation_config.eos_token_id).int()
        # Tokens up to and including the first EOS; everything after it is padding.
        new_tokens = torch.where(ended.any(1), ended.argmax(1) + 1, torch.full_like(ended[:, 0], new.shape[1]))
        rows = {"id": [], "sequence": [], "prompt": [], "text": [], "prompt_tokens": [], "new_tokens": []}
        for i, text in enumerate(self.tokenizer.batch_decode(new, skip_special_tokens=True)):
            rows["id"].append(batch["idx"][i // n].item() * n + i % n)
            rows["sequence"].append(i % n)
            rows["prompt"].append(batch["text"][i // n])
            rows["text"].append(text)
            rows["prompt_tokens"].append(int(batch["attention_mask"][i // n].sum()))
            rows["new_tokens"].append(int(new_tokens[i]))
        return rows

    def export_model(self) -> PreTrainedModel:
        """The plain Hugging Face model: LoRA adapters merged into a copy of the weights."""
        if self.hparams.lora_rank > 0:
            return copy.deepcopy(self.model).merge_and_unload().eval()
        return self.model

    def export_hparams(self) -> dict:
        """The export holds the merged weights: it loads without adapters."""
        return {**super().export_hparams(), "lora_rank": 0}
