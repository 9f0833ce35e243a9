import lightning as L
import pytest
import torch

from src.data import ClassificationDataModule
from src.models.zero_shot import ZeroShotClassifier, balance, centre

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
    assert rows["label"] == scores.argmax(1).tolist()  # the label with the higher log-probability wins


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


def tiny_reviews(model: str, imdb_dir, tmp_path) -> ClassificationDataModule:
    return ClassificationDataModule(tokenizer=model, source=str(imdb_dir), prompt_template=TEMPLATE, val_size=16,
                                    batch_size=8, eval_batch_size=5, max_length=64, cache_dir=str(tmp_path / "c"))


def quiet_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                     enable_checkpointing=False, **kwargs)


def test_fit_calibrates_on_training_reviews_then_validate_reports_every_calibration(tiny_causal_lm, imdb_dir,
                                                                                     tmp_path):
    data, module = tiny_reviews(tiny_causal_lm, imdb_dir, tmp_path), ZeroShotClassifier(tiny_causal_lm,
                                                                                         prompt_template=TEMPLATE)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    quiet_trainer(max_epochs=1, num_sanity_val_steps=2).fit(module, datamodule=data)
    assert module.fitted and all(torch.equal(v, before[k]) for k, v in module.model.state_dict().items())
    train = [data.splits["train"][i]["input_ids"] for i in range(len(data.splits["train"]))]
    raw = module(module.tokenizer.pad({"input_ids": train}, return_tensors="pt", padding_side="right"))
    assert module.unlabelled_offset.tolist() == pytest.approx(centre(raw).median(0).values.tolist(), abs=1e-5)
    (metrics,) = quiet_trainer().validate(module, datamodule=data)
    for prefix in ("val/", "val/none/", "val/content_free/", "val/unlabelled/", "val/transductive/"):
        assert {f"{prefix}acc", f"{prefix}f1", f"{prefix}auroc"} <= set(metrics)
    assert metrics["val/acc"] == metrics["val/unlabelled/acc"]  # the default calibration


def test_an_unfitted_unlabelled_calibration_says_how_to_fit_it(tiny_causal_lm, imdb_dir, tmp_path):
    from src.errors import UserError

    with pytest.raises(UserError, match="not fitted: run `python -m src fit`"):
        quiet_trainer().validate(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE),
                                 datamodule=tiny_reviews(tiny_causal_lm, imdb_dir, tmp_path))


def test_the_fitted_calibration_balances_a_biased_model_one_review_at_a_time(tiny_causal_lm):
    module = biased(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE), 8.0)
    pool = encode(module, [f"training review {i} " + "word " * (i % 7) for i in range(40)])
    module.unlabelled_offset.copy_(centre(module(pool)).median(0).values)  # what fit computes from the pool
    texts = [f"review {i} " + "film " * i for i in range(10)]
    enc = encode(module, texts)
    assert module(enc).argmax(1).tolist() == [0] * 10  # raw: the prior wins everywhere
    together = module.predict_step({**enc, "idx": torch.arange(10), "text": texts}, 0)
    alone = [module.predict_step({**encode(module, [t]), "idx": torch.tensor([i]), "text": [t]}, 0)
             for i, t in enumerate(texts)]
    assert 0 < sum(together["label"]) < 10  # calibrated: both classes occur
    assert [a["label"][0] for a in alone] == together["label"]  # a review's answer does not depend on its batch
    for a, p in zip(alone, together["probabilities"]):
        assert a["probabilities"][0] == pytest.approx(p, abs=1e-5)


def test_prompt_keeps_its_end_when_the_review_is_truncated(tiny_causal_lm):
    module = ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE)
    (ids,) = encode(module, ["word " * 500])["input_ids"].tolist()
    assert len(ids) == 64 and module.tokenizer.decode(ids).endswith("\nOverall, the movie was")


def test_zero_shot_recipe_fits_its_calibration_then_predicts_single_reviews_through_the_cli(tiny_causal_lm, imdb_dir,
                                                                                          tmp_path, capsys):
    import json

    from src.cli import main
    from tests.conftest import entry, tiny_args

    common = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_zeroshot_imdb.yaml", data__max_length=64)
    cli = main(["fit", *common, "--data.limit_val", "null"])
    assert cli.trainer.callback_metrics["val/acc"] == cli.trainer.callback_metrics["val/unlabelled/acc"]
    (ckpt,) = tmp_path.glob("runs/gpt_zeroshot_imdb/version_0/checkpoints/last.ckpt")
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert list(state) == ["unlabelled_offset"]  # the calibration, not the frozen model's weights
    rows = []
    for text in ("good film", "bad film"):  # one review per command
        main(["predict", *common, "--ckpt_path", str(ckpt), "--data.predict_texts", json.dumps([text])])
        (out,) = tmp_path.glob("runs/gpt_zeroshot_imdb/version_0/predict/version_*/predictions.jsonl")
        rows += [json.loads(line) for line in out.read_text().splitlines()]
        out.unlink()
    module = cli.model.eval()
    for row in rows:
        enc = encode(module, [row["text"]])
        want = (centre(module(enc)) - state["unlabelled_offset"]).softmax(-1)[0]
        assert row["probabilities"] == pytest.approx(want.tolist(), abs=1e-5)
    with pytest.raises(SystemExit):
        entry(["predict", *common, "--data.predict_texts", '["good film"]'])
    assert "error: the zero-shot `unlabelled` calibration is not fitted" in capsys.readouterr().err


def short_biased(module: ZeroShotClassifier, below: int, bias: float = 8.0) -> ZeroShotClassifier:
    """A prior for class 1 on prompts of fewer than `below` review tokens only: a model that leans one way on short
    inputs, as SmolLM2 leans positive on one-line reviews."""
    original = module._last_token_logits

    def logits(input_ids, attention_mask):
        out = original(input_ids, attention_mask).clone()
        out[:, module.label_ids[1][0]] += bias * (module.review_tokens(attention_mask) < below)
        return out

    module._last_token_logits = logits
    return module


def test_length_calibration_cuts_reviews_in_the_prompt_as_the_tokenizer_would(tiny_causal_lm):
    module = ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE, calibration_lengths=[3])
    texts = ["a long and winding review of a film I saw", "another rather long review of a film"]
    scores, tokens, whole, labels = module.collect({**encode(module, texts), "labels": torch.tensor([1, 0])})
    body = [module.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert tokens.tolist() == [len(b) for b in body] + [3, 3] and whole.tolist() == [True, True, False, False]
    assert labels.tolist() == [1, 0, 1, 0]  # a cut review keeps its review's label
    cut = encode(module, [module.tokenizer.decode(b[:3]) for b in body])  # the first 3 tokens, as a text
    assert torch.allclose(scores[2:], module(cut), atol=1e-4)


def test_length_calibration_keeps_short_inputs_from_leaning_one_way(tiny_causal_lm, imdb_dir, tmp_path):
    short = [f"{word} film" for word in ("good", "bad", "fine", "dull", "great", "awful", "nice", "poor")]
    labels = {}
    for lengths in ([], [2, 4, 8]):
        module = short_biased(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE,
                                                 calibration_lengths=lengths), below=6)
        quiet_trainer(max_epochs=1, limit_val_batches=0).fit(module, datamodule=tiny_reviews(tiny_causal_lm, imdb_dir,
                                                                                            tmp_path))
        enc = encode(module, short)
        labels[len(lengths)] = module.predict_step({**enc, "idx": torch.arange(8), "text": short}, 0)["label"]
        if lengths:
            long = encode(module, ["word " * 40])
            offsets = module.length_offsets
            by_length = module.calibrate(module(long), review_tokens=module.review_tokens(long["attention_mask"]))
            assert torch.allclose(by_length, module.calibrate(module(long)), atol=0.3)  # whole reviews: as before
            assert not offsets.isnan().any() and offsets[0, 1] > offsets[-1, 1] + 3  # the short prior (8 / 2, centred)
    assert labels[0] == [1] * 8  # one offset, fitted on whole reviews: every short input leans to class 1
    assert 0 < sum(labels[3]) < 8  # by length: the short inputs' own prior is removed


def test_labelled_calibration_fits_offsets_and_a_temperature_on_the_labels(tiny_causal_lm):
    module = biased(ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE, calibration="labelled",
                                       calibration_l2=1e-4), 2.0)
    # Scores whose class-1 margin tells the classes apart but is shifted, on reviews 3 to 1 positive: the medians
    # (`unlabelled`) put the boundary mid-positives; the labels put it where it is.
    torch.manual_seed(0)
    labels = torch.tensor([0] * 10 + [1] * 30)
    margin = 3.0 * (2 * labels - 1) + 1.5 + 0.5 * torch.randn(40)
    scores = torch.stack([-margin / 2, margin / 2], 1).log_softmax(-1)
    module.solve(scores, torch.zeros(40), torch.ones(40, dtype=torch.bool), labels)
    accuracy = {kind: (module.calibrate(scores, kind).argmax(1) == labels).float().mean() for kind in
                ("unlabelled", "labelled")}
    assert accuracy["unlabelled"] < 0.8 and accuracy["labelled"] > 0.95
    # At the solution the penalised loss's gradient vanishes: the regression was solved, not merely stepped.
    log_scale = module.labelled_scale.log().clone().requires_grad_(True)
    offset = module.labelled_offset.clone().requires_grad_(True)
    value = torch.nn.functional.cross_entropy(centre(scores) * log_scale.exp() - offset, labels) + 1e-4 * (
        log_scale.square().sum() + (offset - module.unlabelled_offset).square().sum())
    value.backward()
    assert log_scale.grad.abs().max() < 1e-3 and offset.grad.abs().max() < 1e-3
    # A strong penalty keeps it at the unlabelled calibration with temperature 1.
    module.hparams.calibration_l2 = 1e4
    module.solve(scores, torch.zeros(40), torch.ones(40, dtype=torch.bool), labels)
    assert module.labelled_scale.item() == pytest.approx(1.0, abs=1e-2)
    assert module.labelled_offset.tolist() == pytest.approx(module.unlabelled_offset.tolist(), abs=1e-2)


def test_labelled_calibration_fits_in_fit_on_the_label_budget_and_says_when_it_has_no_labels(tiny_causal_lm, imdb_dir,
                                                                                             tmp_path):
    from src.errors import UserError

    data = ClassificationDataModule(tokenizer=tiny_causal_lm, source=str(imdb_dir), prompt_template=TEMPLATE,
                                    val_size=16, batch_size=8, max_length=64, cache_dir=str(tmp_path / "c"),
                                    label_budget=6, label_seed=1)
    module = ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE, calibration="labelled")
    quiet_trainer(max_epochs=1).fit(module, datamodule=data)
    assert len(data.splits["train"]) == 6  # the labelled reviews it fitted on
    (metrics,) = quiet_trainer().validate(module, datamodule=data)
    assert module.labelled_fitted and metrics["val/acc"] == metrics["val/labelled/acc"]
    assert "labelled_scale" in module.state_dict()
    with pytest.raises(UserError, match="labelled` calibration is not fitted"):
        ZeroShotClassifier(tiny_causal_lm, prompt_template=TEMPLATE, calibration="labelled").calibrate(
            torch.zeros(1, 2))
    with pytest.raises(UserError, match="needs labelled training reviews of every class"):
        module.solve(torch.zeros(4, 2), torch.zeros(4), torch.ones(4, dtype=torch.bool), torch.full((4,), -1))


@pytest.mark.parametrize("extra, message", [
    (["--model.init_args.label_words", "[' negative']"], "model.label_words has 1 and model.label_names 2"),
    (["--model.init_args.label_names", "[negative]"], "model.label_words has 2 and model.label_names 1"),
    (["--model.init_args.content_free_texts", "[]"], "model.content_free_texts is empty"),
    (["--model.init_args.prompt_template", "No slot", "--data.init_args.prompt_template", "No slot"],
     "prompt template 'No slot' has 0 {text} slots; fix: one"),
    (["--data.init_args.prompt_template", "Other: {text}\nSo it was"],
     "data.prompt_template 'Other: {text}\\nSo it was' is not model.prompt_template"),
])
def test_a_zero_shot_setting_that_cannot_work_is_one_line(tiny_causal_lm, imdb_dir, tmp_path, capsys, extra, message):
    from tests.conftest import entry, tiny_args

    common = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_zeroshot_imdb.yaml", data__max_length=64)
    with pytest.raises(SystemExit) as exit_:
        entry(["fit", *common, "--data.limit_train", "8", *extra])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture
def registered_sharpened():
    """A calibration added as one class (centred scores, twice as sure), in the registry for one test only."""
    from src.models.calibrations import CALIBRATIONS, Calibration

    class Sharpened(Calibration):
        name = "test_sharpened"

        def apply(self, module, raw, review_tokens):
            return 2 * centre(raw)

    yield Sharpened
    CALIBRATIONS.pop(Sharpened.name)


def test_a_calibration_added_as_one_class_is_used_by_the_cli_and_serve(registered_sharpened, tiny_causal_lm, imdb_dir,
                                                                       tmp_path):
    from src.cli import main
    from src.errors import UserError
    from src.serve import RunAPI
    from tests.conftest import tiny_args

    common = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_zeroshot_imdb.yaml", data__max_length=64)
    cli = main(["fit", *common, "--model.init_args.calibration", "test_sharpened"])
    metrics = cli.trainer.callback_metrics
    assert metrics["val/acc"] == metrics["val/test_sharpened/acc"] and "val/unlabelled/acc" in metrics
    (run,) = tmp_path.glob("runs/gpt_zeroshot_imdb/version_0")
    api = RunAPI(str(run), 100)
    api.setup("cpu")  # what serve's worker does
    (row,) = api.predict(["good film"])
    module = cli.model.eval()
    want = (2 * centre(module(encode(module, ["good film"])))).softmax(-1)[0]
    assert row["probabilities"] == pytest.approx(want.tolist(), abs=1e-5)
    with pytest.raises(UserError, match="model.calibration is 'transductive' .a comparison only"):
        ZeroShotClassifier(tiny_causal_lm, calibration="transductive")
