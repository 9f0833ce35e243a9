import json
import math

import lightning as L
import pytest
import torch

from src.cli import main
from src.data import CausalLMDataModule
from src.data.text import pack
from src.models import CausalLM
from tests.conftest import entry, packed_data, tiny_args


def lm_data(model, imdb_dir, tmp_path, **kwargs) -> CausalLMDataModule:
    return packed_data(CausalLMDataModule, model, imdb_dir, tmp_path, **kwargs)


def prompts(module: CausalLM, texts: list[str]) -> dict:
    enc = module.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
    return {**enc, "idx": torch.arange(len(texts)), "text": texts}


def test_packed_blocks_have_block_size_and_no_padding(tiny_causal_lm, imdb_dir, tmp_path):
    dm = lm_data(tiny_causal_lm, imdb_dir, tmp_path)
    blocks = dm.splits["train"]["input_ids"]
    assert blocks and all(len(b) == 32 for b in blocks)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (4, 32) and bool(batch["attention_mask"].all())
    eos = dm.tokenizer.eos_token_id
    assert sum(t == eos for b in blocks for t in b) > 1  # reviews are separated by EOS


def test_pack_keeps_every_token_in_order():
    import datasets

    ds = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]], "label": [0, 1, 0]})
    assert pack(ds, 4)["input_ids"] == [[1, 2, 3, 4], [5, 6, 7, 8]]  # the tail shorter than a block is dropped


def test_lm_training_uses_unsupervised_split_and_label_filters(tiny_causal_lm, imdb_dir, tmp_path):
    with_unsup = lm_data(tiny_causal_lm, imdb_dir, tmp_path)
    without = lm_data(tiny_causal_lm, imdb_dir, tmp_path, use_unsupervised=False)
    positive = lm_data(tiny_causal_lm, imdb_dir, tmp_path, use_unsupervised=False, only_label=1)
    n = [len(d.splits["train"]) for d in (with_unsup, without, positive)]
    assert n[0] > n[1] > n[2] > 0


def test_label_prefixes_are_prepended(tiny_causal_lm, imdb_dir, tmp_path):
    dm = lm_data(tiny_causal_lm, imdb_dir, tmp_path, use_unsupervised=False, label_prefixes=["NEG: ", "POS: "])
    text = dm.tokenizer.decode(dm.splits["train"]["input_ids"][0] + dm.splits["train"]["input_ids"][1])
    assert "NEG: " in text or "POS: " in text


def test_perplexity_is_exp_of_loss(tiny_causal_lm, imdb_dir, tmp_path):
    dm = lm_data(tiny_causal_lm, imdb_dir, tmp_path)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.validate(CausalLM(tiny_causal_lm), datamodule=dm)
    assert metrics["val/ppl"] == pytest.approx(math.exp(metrics["val/loss"]), rel=1e-5)
    assert metrics["val/loss"] == pytest.approx(math.log(dm.tokenizer.vocab_size), rel=0.1)  # random init: ~uniform


def test_generation_shapes_and_token_counts(tiny_causal_lm):
    module = CausalLM(tiny_causal_lm, max_new_tokens=5, temperature=0.8, top_k=20, num_return_sequences=3).eval()
    rows = module.predict_step(prompts(module, ["a much longer prompt than the other", "short"]), 0)
    assert len(rows["text"]) == 6 and rows["sequence"] == [0, 1, 2, 0, 1, 2]
    assert rows["prompt"][:3] == ["a much longer prompt than the other"] * 3
    assert all(1 <= n <= 5 for n in rows["new_tokens"]) and rows["prompt_tokens"][3] < rows["prompt_tokens"][0]


def test_same_seed_same_samples(tiny_causal_lm):
    module = CausalLM(tiny_causal_lm, max_new_tokens=8, temperature=1.0).eval()
    batch = prompts(module, ["the film", "an actor"])
    runs = []
    for seed in (1, 1, 2):
        L.seed_everything(seed)
        runs.append(module.predict_step(batch, 0)["text"])
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_greedy_decoding_takes_the_argmax(tiny_causal_lm):
    module = CausalLM(tiny_causal_lm, max_new_tokens=4, temperature=0.0).eval()
    batch = prompts(module, ["the movie was"])
    out = module.model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                generation_config=module.generation_config)
    ids = batch["input_ids"]
    for _ in range(4):
        with torch.no_grad():
            nxt = module.model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], 1)
    assert out.tolist() == ids.tolist()


def test_lora_trains_only_adapter_weights(tiny_causal_lm, imdb_dir, tmp_path):
    module = CausalLM(tiny_causal_lm, lora_rank=4, lora_alpha=8, learning_rate=1e-2)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    dm = lm_data(tiny_causal_lm, imdb_dir, tmp_path)
    L.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(module, datamodule=dm)
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable
    merged = module.export_model()
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    x = torch.tensor([[1, 2, 3, 4]])
    module.eval()
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=x).logits, module.model(input_ids=x).logits, atol=1e-4)


def test_fit_then_generate_through_the_cli(tiny_causal_lm, imdb_dir, tmp_path):
    main(["fit", *tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_finetune_imdb.yaml",
                            data__block_size=32, data__limit_train=20, data__limit_val="null",
                            model__init_args__lora_target_modules="null")])
    (run,) = (tmp_path / "runs" / "gpt_finetune_imdb").iterdir()
    for kind in ("last", "best"):  # Hugging Face folders, LoRA merged: loadable without peft
        assert (run / "export" / kind / "model.safetensors").is_file()
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(run / "export" / "best")
    assert not any("lora" in name for name, _ in exported.named_parameters())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"tensors": 0})
    events.Reload()
    assert {"val/loss", "val/ppl", "train/loss"} <= set(events.Tags()["scalars"])
    assert "val/sample/text_summary" in events.Tags()["tensors"]
    main(["predict", *tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_generate.yaml",
                                model__init_args__max_new_tokens=3, data__predict_texts='["one", "two two"]')])
    (out,) = (tmp_path / "runs" / "gpt_generate").glob("*/generations.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["one", "two two"] and all(r["new_tokens"] <= 3 for r in rows)
    from src.api import load

    generated = load(run).predict(["one", "two two"])  # the fine-tuned run, greedy, from Python
    assert [r["prompt"] for r in generated] == ["one", "two two"] and all(r["new_tokens"] >= 1 for r in generated)


@pytest.mark.parametrize("config, sub, extra, message", [
    ("gpt_finetune_imdb", "fit", ["--model.init_args.lora_rank", "-2"], "model.lora_rank is -2; fix:"),
    ("gpt_finetune_imdb", "fit", ["--model.init_args.lora_rank", "4", "--model.init_args.lora_target_modules",
                                  "[no_such_module]"], "model.lora_target_modules ['no_such_module']: not in the"),
    ("gpt_finetune_imdb", "fit", ["--data.init_args.only_label", "5"], "data.only_label is 5: no review has that"),
    ("gpt_finetune_imdb", "fit", ["--data.init_args.label_prefixes", "['Neg: ']"],
     "data.label_prefixes has 1 prefixes and the reviews have label 1"),
    ("gpt_generate", "predict", ["--model.init_args.num_return_sequences", "0"], "model.num_return_sequences is 0"),
    ("gpt_generate", "predict", ["--model.init_args.top_p", "1.5"], "model.top_p is 1.5; fix:"),
    ("gpt_generate", "predict", ["--model.init_args.temperature", "-1"], "model.temperature is -1.0; fix:"),
])
def test_a_language_model_setting_that_cannot_work_is_one_line(tiny_causal_lm, imdb_dir, tmp_path, capsys, config,
                                                                 sub, extra, message):
    args = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, f"configs/{config}.yaml", data__block_size=32,
                     data__limit_train=20, data__predict_texts='["one"]', model__init_args__lora_target_modules="null")
    with pytest.raises(SystemExit) as exit_:
        entry([sub, *args, *extra])
    assert exit_.value.code == 2 and message in capsys.readouterr().err.strip().splitlines()[-1]
