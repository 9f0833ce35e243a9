"""CausalLM: a GPT-style model that is fine-tuned on review text (optionally with LoRA) and generates.

`fit` trains on packed blocks of reviews and reports validation loss and perplexity; `predict`
generates continuations of prompts into `generations.jsonl`.

To run: python -m src fit --config configs/gpt_finetune_imdb.yaml
        python -m src predict --config configs/gpt_generate.yaml
"""

import copy

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchmetrics import MeanMetric
from transformers import AutoModelForCausalLM, GenerationConfig

from src.optim import adamw_linear_warmup
from src.pretrained import from_pretrained, load_tokenizer


class CausalLM(L.LightningModule):
    """Fine-tunes and samples from `AutoModelForCausalLM` (GPT-2, Llama-family, GGUF files)."""

    def __init__(
        self,
        model_name: str = "HuggingFaceTB/SmolLM2-135M-Instruct",
        learning_rate: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_ratio: float = 0.05,
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
        sample_prompt: str | None = "I watched this movie last night and",
    ):
        """
        Args:
            model_name: hub id, local folder, .gguf file, or packaged offline model (see src/pretrained.py).
            learning_rate: peak AdamW learning rate.
            weight_decay: AdamW weight decay (none on biases and norm weights).
            warmup_ratio: fraction of the training steps spent warming the learning rate up from 0.
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
            sample_prompt: a prompt continued greedily at each validation and logged to TensorBoard as text.
        """
        super().__init__()
        self.save_hyperparameters()
        self.tokenizer = load_tokenizer(model_name)
        model = from_pretrained(AutoModelForCausalLM, model_name)
        if lora_rank > 0:
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(r=lora_rank, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                                target_modules=lora_target_modules, task_type="CAUSAL_LM")
            model = get_peft_model(model, config)
        self.model = model
        self.model.train()  # from_pretrained returns eval mode, and Lightning keeps the modes it finds
        self.val_loss = MeanMetric()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        sampling = temperature > 0
        self.generation_config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=sampling, num_return_sequences=num_return_sequences,
            temperature=temperature if sampling else None, top_k=top_k if sampling and top_k else None,
            top_p=top_p if sampling else None, repetition_penalty=repetition_penalty,
            pad_token_id=pad, eos_token_id=self.tokenizer.eos_token_id,
        )

    def forward(self, batch: dict) -> torch.Tensor:
        """Mean next-token cross-entropy over the non-padding tokens."""
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        # Packed blocks are all full, so a mean over blocks is a mean over tokens.
        self.val_loss.update(self(batch), weight=len(batch["input_ids"]))

    def on_validation_epoch_start(self) -> None:
        self.val_loss.reset()  # here, not at the end: states made in this epoch's grad mode (see masked_lm.py)

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.log_dict({"val/loss": loss, "val/ppl": loss.exp()}, prog_bar=True)  # compute() already synced ranks
        tensorboard = isinstance(self.logger, TensorBoardLogger)
        if self.hparams.sample_prompt and tensorboard and not self.trainer.sanity_checking:
            enc = self.tokenizer([self.hparams.sample_prompt], return_tensors="pt").to(self.device)
            out = self.model.generate(**enc, generation_config=GenerationConfig(
                max_new_tokens=48, do_sample=False, pad_token_id=self.generation_config.pad_token_id))
            text = self.tokenizer.decode(out[0], skip_special_tokens=True)
            self.logger.experiment.add_text("val/sample", text, self.global_step)

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

    def export_model(self):
        """The plain Hugging Face model: LoRA adapters merged into a copy of the weights."""
        if self.hparams.lora_rank > 0:
            return copy.deepcopy(self.model).merge_and_unload().eval()
        return self.model

    def configure_optimizers(self) -> dict:
        hp = self.hparams
        return adamw_linear_warmup(
            self.model, hp.learning_rate, hp.weight_decay, hp.warmup_ratio, self.trainer.estimated_stepping_batches
        )
