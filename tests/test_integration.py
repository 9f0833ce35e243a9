"""Integration: the packaged all-MiniLM-L6-v2 and the shared IMDB mirror, on small slices."""

import math
from pathlib import Path

import pytest

from src.cli import main
from src.data.sources import load_source

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_shared_mirror_loads_with_its_documented_splits(shared_imdb):
    raw, _ = load_source(str(shared_imdb))
    assert len(raw["train"]) == 25_000 and len(raw["unsupervised"]) == 50_000 and len(raw["test"]) == 12_500
    assert sum(raw["train"]["label"]) == 12_500 and sum(raw["test"]["label"]) == 6_250


def test_the_study_scores_2000_distinct_test_reviews_none_in_a_training_split(shared_imdb):
    from src.data.selection import evaluation_reviews
    from src.studies.schema import load_study

    study = load_study("configs/studies/label_budget.yaml")
    reviews = evaluation_reviews(study.source, study.eval_split, study.eval_size, study.eval_seed)
    raw, _ = load_source(str(shared_imdb))
    training = set(raw["train"]["text"]) | set(raw["unsupervised"]["text"])
    assert len(set(reviews.texts)) == 2000 and sum(reviews.labels) == 1000 and not set(reviews.texts) & training
    assert set(reviews.texts) <= set(raw["test"]["text"])


@pytest.fixture(scope="module")
def mirror_slice(shared_imdb, tmp_path_factory) -> Path:
    """A seeded sample of the mirror's labelled training reviews (600) as a source folder: a run below tokenizes those,
    not all 25,000 (13 to 30 s of a test on 2 cores)."""
    raw, _ = load_source(str(shared_imdb))
    path = tmp_path_factory.mktemp("imdb_slice")
    raw["train"].shuffle(seed=0).select(range(600)).to_parquet(str(path / "train.parquet"))
    return path


def test_fit_packaged_minilm_on_a_slice_of_the_mirror(mirror_slice, tmp_path):
    cli = main([
        "fit", "--config", "configs/bert_imdb.yaml", "--data.source", str(mirror_slice), "--data.val_size", "32",
        "--data.limit_train", "32", "--data.max_length", "64",
        "--data.cache_dir", str(tmp_path / "cache"), "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
    ])
    metrics = cli.trainer.callback_metrics
    assert {"val/acc", "val/f1", "val/auroc", "val/loss"} <= set(metrics)
    assert math.isfinite(metrics["val/loss"]) and 0 <= metrics["val/acc"] <= 1
    assert cli.trainer.global_step == 2  # 32 reviews in batches of 16


def test_the_packaged_smollm_folder_gives_the_gguf_files_outputs():
    """The packaged GGUF file, read once into a folder (src/pretrained.py): its tokenizer and logits are the file's."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from src.pretrained import from_pretrained, load_tokenizer, packaged_path

    gguf = packaged_path(SMOLLM)
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    direct_tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model, tokenizer = from_pretrained(AutoModelForCausalLM, SMOLLM), load_tokenizer(SMOLLM)
    assert not list(Path(model.name_or_path).glob("*.gguf"))  # loaded from the folder
    text = "Review: An absolute masterpiece, 10/10 \U0001f3ac\u00e9\nOverall, the movie was"
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids.tolist() == direct_tokenizer(text, return_tensors="pt")["input_ids"].tolist()
    assert tokenizer.chat_template == direct_tokenizer.chat_template
    with torch.no_grad():
        assert torch.equal(model(ids).logits, direct(ids).logits)


def test_packaged_gguf_smollm_generates(tmp_path):
    import json
    import time

    from src.pretrained import gguf_folder, packaged_path

    gguf_folder(packaged_path(SMOLLM))  # a fresh clone converts the GGUF file once (not what this test times)
    start = time.perf_counter()
    main(["predict", "--config", "configs/gpt_generate.yaml", "--trainer.logger.init_args.save_dir", str(tmp_path),
          "--model.init_args.max_new_tokens", "12", "--model.init_args.temperature", "0",
          "--data.predict_texts", '["Name a famous science-fiction film."]', "--trainer.enable_progress_bar", "false"])
    elapsed = time.perf_counter() - start
    (out,) = tmp_path.glob("gpt_generate/*/generations.jsonl")
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["new_tokens"] >= 3 and len(row["text"].split()) >= 2
    assert elapsed < 60


def test_packaged_smollm_zero_shot_classifies_single_clear_reviews(mirror_slice, tmp_path):
    """The calibration is fitted on 8 unlabelled training reviews (64 tokens); each review is classified on its own."""
    import json

    common = ["--config", "configs/gpt_zeroshot_imdb.yaml", "--data.source", str(mirror_slice), "--data.val_size", "16",
              "--data.cache_dir", str(tmp_path / "cache"), "--trainer.logger.init_args.save_dir", str(tmp_path),
              "--trainer.enable_progress_bar", "false", "--trainer.precision", "32-true", "--data.max_length", "64"]
    main(["fit", *common, "--data.limit_train", "8", "--trainer.limit_val_batches", "0"])
    (ckpt,) = tmp_path.glob("gpt_zeroshot_imdb/version_0/checkpoints/last.ckpt")
    reviews = {"positive": "An absolute masterpiece: moving, funny and beautifully acted. I loved every minute.",
               "negative": "A dull, badly acted mess. The plot made no sense and I walked out bored and annoyed."}
    # One predict for both: each review is calibrated on its own (tests/test_zero_shot.py checks that a review's answer
    # does not depend on its batch), and a second predict would load SmolLM2 again.
    main(["predict", *common, "--ckpt_path", str(ckpt), "--data.predict_texts", json.dumps(list(reviews.values()))])
    (out,) = tmp_path.glob("gpt_zeroshot_imdb/version_0/predict/version_*/predictions.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for want, row in zip(reviews, rows):
        assert row["label_name"] == want and max(row["probabilities"]) > 0.6, row
