import lightning as L
import pytest
import torch

from src.data import ClassificationDataModule
from src.models.zero_shot import ZeroShotClassifier, balance

TEMPLATE = "Review: {text}\nOverall, the movie was"


def encode(module: ZeroShotClassifier, texts: list[str]) -> dict:
    from src.data.text import tokenize

    ids = tokenize(texts, module.tokenizer, 64, "head", TEMPLATE)
    return module.tokenizer.pad({"input_ids": ids}, return_tensors="pt", padding_side="right")


def manual_log_prob(module: ZeroShotClassifier, ids: list[int], continuation: list[int]) -> float:
    x = torch.tensor([ids + continuation])
    with torch.no_grad():
        logp = module.model(input_ids=x).logits.float().log_softmax(-1)[0]
    return sum(logp[len(ids) - 1 + j, t].item() for j, t in enumerate(continuation))


def test_class_score_is_the_label_log_probability_after_the_prompt(tiny_causal_lm):
    module = ZeroShotClassifier(tiny_causal_lm, calibration="none", prompt_template=TEMPLATE)
    enc = encode(module, ["a fine film", "a very long and rather boring film indeed"])
    scores = module.label_log_probs(enc["input_ids"], enc["attention_mask"])
    for row in range(2):
        ids = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
        expected = [manual_log_prob(module, ids, label) for label in module.label_ids]
        assert scores[row].tolist() == pytest.approx(expected, abs=1e-4)
    rows = module.predict_step({**enc, "idx": torch.tensor([0, 1]), "text": ["a", "b"]}, 0)
    rows = module.finalize_predictions([dict(zip(rows, values)) for values in zip(*rows.values())])
    assert [r["label"] for r in rows] == scores.argmax(1).tolist()  # the label with the higher log-probability wins


def test_multi_token_label_phrases_sum_their_token_log_probs(tiny_causal_lm):
    module = ZeroShotClassifier(tiny_causal_lm, calibration="none", prompt_template=TEMPLATE,
                                label_words=[" terribly disappointing", " wonderful"])
    assert len(module.label_ids[0]) > 1
    enc = encode(module, ["short", "a somewhat longer review text"])
    scores = module.label_log_probs(enc["input_ids"], enc["attention_mask"])
    for row in range(2):
        ids = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
        assert scores[row].tolist() == pytest.approx([manual_log_prob(module, ids, lab) for lab in module.label_ids],
                                                     abs=1e-4)


def biased(module: ZeroShotClassifier, bias: float) -> ZeroShotClassifier:
    """Add `bias` to the logit of class 0's label word: a model with a strong prior for one label."""
    original = module._last_token_logits

    def logits(input_ids, attention_mask):
        out = original(input_ids, attention_mask).clone()
        out[:, module.label_ids[0][0]] += bias
        return out

    module._last_token_logits = logits
    return module


def test_content_free_calibration_cancels_a_label_prior(tiny_causal_lm):
    texts = [f"review number {i} of the film" for i in range(8)]
    calibrated = {}
    for bias in (0.0, 8.0):
        module = biased(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE, content_free_texts=["N/A"],
                                           calibration="content_free"), bias)
        raw_module = biased(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE, calibration="none"), bias)
        enc = encode(module, texts)
        calibrated[bias] = module.calibrate(module(enc)).softmax(-1)
        if bias:
            assert raw_module.calibrate(raw_module(enc)).argmax(1).tolist() == [0] * 8  # the prior wins everywhere
    assert torch.allclose(calibrated[0.0], calibrated[8.0], atol=1e-4)


def test_balancing_splits_a_biased_scorer_evenly():
    scores = torch.stack([torch.randn(100) + 5.0, torch.randn(100)], 1).log_softmax(-1)
    assert scores.argmax(1).sum() < 5
    assert balance(scores).argmax(1).sum().item() == 50


def test_validate_reports_calibrated_uncalibrated_and_balanced_metrics(tiny_causal_lm, imdb_dir, tmp_path):
    data = ClassificationDataModule(tokenizer=tiny_causal_lm, source=str(imdb_dir), prompt_template=TEMPLATE,
                                    val_size=16, eval_batch_size=5, max_length=64, cache_dir=str(tmp_path / "c"))
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.validate(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE), datamodule=data)
    for prefix in ("val/", "val/none/", "val/content_free/", "val/unlabelled/"):
        assert {f"{prefix}acc", f"{prefix}f1", f"{prefix}auroc"} <= set(metrics)
    assert metrics["val/acc"] == metrics["val/unlabelled/acc"]  # the default calibration


def test_unlabelled_calibration_balances_predictions_of_a_biased_model(tiny_causal_lm):
    module = biased(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE), 8.0)
    enc = encode(module, [f"review {i} " + "word " * i for i in range(10)])
    rows = module.predict_step({**enc, "idx": torch.arange(10), "text": ["x"] * 10}, 0)
    rows = [dict(zip(rows, values)) for values in zip(*rows.values())]
    assert all(max(r["scores"]) == r["scores"][0] for r in rows)  # raw: class 0 everywhere
    labels = [r["label"] for r in module.finalize_predictions(rows)]
    assert sorted(labels) == [0] * 5 + [1] * 5 and "scores" not in rows[0]


def test_prompt_keeps_its_end_when_the_review_is_truncated(tiny_causal_lm):
    module = ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE)
    (ids,) = encode(module, ["word " * 500])["input_ids"].tolist()
    assert len(ids) == 64 and module.tokenizer.decode(ids).endswith("\nOverall, the movie was")


def test_zero_shot_config_validates_and_predicts_through_the_cli(tiny_causal_lm, imdb_dir, tmp_path):
    import json

    from src.cli import main
    from tests.conftest import tiny_args

    common = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_zeroshot_imdb.yaml", data__max_length=64)
    cli = main(["validate", *common, "--data.limit_val", "null"])
    assert cli.trainer.callback_metrics["val/acc"] == cli.trainer.callback_metrics["val/unlabelled/acc"]
    main(["predict", *common, "--data.predict_texts", '["good film", "bad film", "fine", "dull"]'])
    (out,) = tmp_path.glob("runs/gpt_zeroshot_imdb/*/predictions.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["good film", "bad film", "fine", "dull"]
    assert sorted(r["label"] for r in rows) == [0, 0, 1, 1]  # unlabelled calibration splits the set evenly
