import json
import math

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.cli import main
from src.data import MaskedLMDataModule
from src.models import MaskedLM
from tests.conftest import entry, packed_data, tiny_args


def mlm_data(tokenizer, imdb_dir, tmp_path, **kwargs) -> MaskedLMDataModule:
    return packed_data(MaskedLMDataModule, tokenizer, imdb_dir, tmp_path, **kwargs)


def masked_sample(dm: MaskedLMDataModule, draws: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Original blocks, their masked copies and labels: every training block masked `draws` times."""
    rows = [{"input_ids": ids} for ids in dm.splits["train"]["input_ids"]]
    original = torch.tensor([r["input_ids"] for r in rows]).repeat(draws, 1)
    masked = [dm.collator(seed=seed)([dict(r) for r in rows]) for seed in range(draws)]
    return original, torch.cat([m["input_ids"] for m in masked]), torch.cat([m["labels"] for m in masked])


def test_masking_rates_follow_bert(tiny_bert, imdb_dir, tmp_path):
    dm = mlm_data(tiny_bert, imdb_dir, tmp_path)
    original, inputs, labels = masked_sample(dm)
    special = torch.isin(original, torch.tensor(dm.tokenizer.all_special_ids))
    chosen = labels != -100
    assert original[~special].numel() > 20_000
    assert not chosen[special].any()  # [CLS]/[SEP] are never chosen
    assert torch.equal(labels[chosen], original[chosen]) and torch.equal(inputs[~chosen], original[~chosen])
    assert chosen[~special].float().mean().item() == pytest.approx(0.15, abs=0.01)
    to_mask = (inputs[chosen] == dm.tokenizer.mask_token_id).float().mean().item()
    unchanged = (inputs[chosen] == original[chosen]).float().mean().item()
    assert to_mask == pytest.approx(0.8, abs=0.03) and unchanged == pytest.approx(0.1, abs=0.03)
    assert 1 - to_mask - unchanged == pytest.approx(0.1, abs=0.03)  # random tokens


def test_whole_word_masking_masks_every_piece_of_a_word(tiny_bert, tmp_path):
    import datasets

    words = "an unwatchable overacted mess , cinematographically gorgeous though ; shyamalan misfires".split()
    reviews = {"text": [" ".join(words[i % 5 :] + words[: i % 5]) for i in range(60)],
               "label": [i % 2 for i in range(60)]}
    (tmp_path / "imdb").mkdir()
    datasets.Dataset.from_dict(reviews).to_parquet(str(tmp_path / "imdb" / "train.parquet"))
    dm = mlm_data(tiny_bert, tmp_path / "imdb", tmp_path, whole_word_mask=True, use_unsupervised=False)
    assert "offset_mapping" in dm.splits["train"].column_names
    batch = next(iter(dm.train_dataloader()))
    assert "offset_mapping" not in batch
    rows = [dict(r) for r in dm.splits["train"].select_columns(["input_ids", "offset_mapping"])]
    out = dm.collator(seed=0)(rows)
    pieces = torch.tensor([[t.startswith("##") for t in dm.tokenizer.convert_ids_to_tokens(r["input_ids"])]
                           for r in rows])
    chosen = out["labels"] != -100
    assert pieces.any() and chosen.any()
    # A word piece is chosen exactly when the token before it (same word) is, except at a block's start.
    assert torch.equal(chosen[:, 1:][pieces[:, 1:]], chosen[:, :-1][pieces[:, 1:]])
    assert (out["input_ids"][chosen] == dm.tokenizer.mask_token_id).all()


def test_validation_masks_are_fixed_and_training_masks_fresh(tiny_bert, imdb_dir, tmp_path):
    first, second = (mlm_data(tiny_bert, imdb_dir, tmp_path) for _ in range(2))
    assert first.splits["validation"]["labels"] == second.splits["validation"]["labels"]
    assert first.splits["validation"]["input_ids"] == second.splits["validation"]["input_ids"]
    collate = first.train_dataloader().collate_fn
    rows = [{"input_ids": ids} for ids in first.splits["train"]["input_ids"][:8]]
    assert not torch.equal(collate([dict(r) for r in rows])["labels"], collate([dict(r) for r in rows])["labels"])


def test_loss_on_masked_positions_only_equals_the_full_models(tiny_bert, imdb_dir, tmp_path):
    dm = mlm_data(tiny_bert, imdb_dir, tmp_path)
    module = MaskedLM(tiny_bert).eval()
    assert module.head_name == "cls"
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        loss, logits, targets = module(batch)
        full = module.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            labels=batch["labels"])
    assert loss.item() == pytest.approx(full.loss.item(), rel=1e-5)
    assert torch.allclose(logits, full.logits[batch["labels"] != -100], atol=1e-5)
    assert torch.equal(targets, batch["labels"][batch["labels"] != -100])


def test_from_scratch_has_the_configured_sizes(tiny_bert):
    sizes = {"hidden_size": 48, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 96}
    module = MaskedLM(tiny_bert, from_scratch=True, config_overrides=sizes)
    config = module.model.config
    assert {k: getattr(config, k) for k in sizes} == sizes
    assert len(module.model.bert.encoder.layer) == 3
    assert module.model.bert.embeddings.word_embeddings.weight.shape[1] == 48
    layer = module.model.bert.encoder.layer[0]
    assert layer.intermediate.dense.out_features == 96 and layer.attention.self.num_attention_heads == 4
    pretrained = MaskedLM(tiny_bert)  # the same name without from_scratch loads the saved weights
    assert pretrained.model.config.hidden_size == 32


def test_perplexity_is_exp_of_loss_and_training_lowers_it(tiny_bert, imdb_dir, tmp_path):
    L.seed_everything(0)
    dm = mlm_data(tiny_bert, imdb_dir, tmp_path)
    module = MaskedLM(tiny_bert, learning_rate=3e-3, warmup_ratio=0.0)
    trainer = L.Trainer(accelerator="cpu", max_steps=15, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    (before,) = trainer.validate(module, datamodule=dm)
    assert before["val/ppl"] == pytest.approx(math.exp(before["val/loss"]), rel=1e-5)
    assert 0 <= before["val/acc"] <= 1
    trainer.fit(module, datamodule=dm)
    (after,) = trainer.validate(module, datamodule=dm)
    assert after["val/loss"] < before["val/loss"] - 1 and after["val/acc"] > before["val/acc"]


def test_fit_exports_a_fill_mask_model_that_starts_the_classifier(tiny_bert, imdb_dir, tmp_path):
    from transformers import pipeline

    from src.models import SequenceClassifier

    export = tmp_path / "export"
    main(["fit", *tiny_args(tiny_bert, imdb_dir, tmp_path, "configs/mlm_imdb.yaml", data__block_size=32,
                            data__limit_train="null", data__limit_val="null"),
          "--trainer.callbacks.init_args.output_dir", str(export)])
    (run,) = (tmp_path / "runs" / "mlm_imdb").iterdir()
    events = EventAccumulator(str(run))
    events.Reload()
    assert {"train/loss", "val/loss", "val/ppl", "val/acc"} <= set(events.Tags()["scalars"])

    text = "the movie was [MASK] and the plot was boring"
    fill = pipeline("fill-mask", model=str(export / "last"), top_k=3)
    candidates = fill(text)
    assert len(candidates) == 3 and all("[MASK]" not in c["sequence"] for c in candidates)
    module = MaskedLM.load_from_checkpoint(run / "checkpoints" / "last.ckpt").eval()
    encoded = fill.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        rows = module.predict_step({**encoded, "idx": torch.tensor([0]), "text": [text]}, 0)
    ours = rows["masks"][0][0][:3]
    assert [c["token_str"] for c in candidates] == [fill.tokenizer.convert_tokens_to_string([m["token"]]) for m in ours]
    assert [c["score"] for c in candidates] == pytest.approx([m["probability"] for m in ours], abs=1e-5)

    # The chain: a classifier whose model_name is the exported folder starts from the adapted encoder.
    classifier = SequenceClassifier(str(export / "last"))
    exported = module.model.bert.state_dict()
    for name, value in classifier.model.bert.state_dict().items():
        if name in exported:
            assert torch.equal(value, exported[name]), name
    assert "encoder.layer.0.attention.self.query.weight" in exported
    json.loads((export / "best" / "config.json").read_text())  # a plain Hugging Face folder


def test_the_from_scratch_recipe_trains_a_model_of_its_sizes(tiny_bert, imdb_dir, tmp_path):
    sizes = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    main(["fit", *tiny_args(tiny_bert, imdb_dir, tmp_path, "configs/mlm_scratch_imdb.yaml", data__block_size=32,
                            data__limit_val="null", model__init_args__config_overrides=json.dumps(sizes),
                            trainer__max_steps=3),
          "--trainer.callbacks.init_args.output_dir", str(tmp_path / "export")])
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tmp_path / "export" / "last")
    assert {k: getattr(config, k) for k in sizes} == sizes and config.architectures == ["BertForMaskedLM"]


@pytest.mark.parametrize("extra, message", [
    (["--data.init_args.mlm_probability", "0"], "data.mlm_probability is 0.0; fix: above 0, at most 1"),
    (["--model.init_args.config_overrides", "{hidden_sise: 64}"],
     "has no 'hidden_sise' (did you mean 'hidden_size'"),
])
def test_a_masked_lm_setting_that_cannot_work_is_one_line(tiny_bert, imdb_dir, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_:
        entry(["fit", *tiny_args(tiny_bert, imdb_dir, tmp_path, "configs/mlm_imdb.yaml", data__block_size=32), *extra])
    assert exit_.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]
