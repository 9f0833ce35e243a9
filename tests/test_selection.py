"""Which reviews a study reads: evaluation reviews of a named split that never reach a training input, and every
random choice of a run following its seed."""

import pytest

from src.data.selection import demonstrations, evaluation_reviews
from src.errors import UserError
from tests.conftest import fit_ready


def test_test_reviews_are_balanced_distinct_seeded_and_in_no_training_split(imdb_test_dir):
    import pyarrow.parquet as pq

    split = {s: pq.read_table(imdb_test_dir / f"{s}.parquet").to_pydict() for s in ("train", "unsupervised", "test")}
    every = evaluation_reviews(str(imdb_test_dir), "test", None)
    training = set(split["train"]["text"]) | set(split["unsupervised"]["text"])
    assert len(every.texts) == len(set(every.texts)) == 32 - 3  # two copied from training splits, one twice
    assert not set(every.texts) & training
    some = evaluation_reviews(str(imdb_test_dir), "test", 12, seed=1)
    assert sorted(some.labels) == [0] * 6 + [1] * 6 and set(some.texts) <= set(every.texts)
    assert evaluation_reviews(str(imdb_test_dir), "test", 12, seed=2).texts != some.texts
    assert evaluation_reviews(str(imdb_test_dir), "test", 12, seed=1) == some
    labels = dict(zip(split["test"]["text"], split["test"]["label"]))
    assert all(labels[t] == y for t, y in zip(some.texts, some.labels))


def test_a_source_without_a_test_split_says_so_when_the_test_split_is_asked_for(imdb_dir):
    with pytest.raises(UserError, match="has no test split.*eval_split: validation"):
        evaluation_reviews(str(imdb_dir), "test", 10)


def test_no_evaluation_review_reaches_any_training_input(tiny_bert, imdb_test_dir, tmp_path):
    """Label sample, demonstrations, calibration sample, a teacher's (or a self-training student's) unlabelled
    reviews, consistency training's unlabelled reviews, masked-LM text: none holds an evaluation review, of the test
    split or of the validation split (whose twins in the training part are dropped)."""
    from src.data import ClassificationDataModule, MaskedLMDataModule

    source, common = str(imdb_test_dir), {"val_size": 16, "cache_dir": str(tmp_path / "c"), "seed": 42}
    for split in ("test", "validation"):
        evaluation = evaluation_reviews(source, split, None, val_size=16)
        dm = ClassificationDataModule(tokenizer=tiny_bert, source=source, **common)
        held = {tuple(ids) for ids in dm.predict_ids(evaluation.texts)}
        for seed in (0, 1):
            labelled = fit_ready(ClassificationDataModule(tokenizer=tiny_bert, source=source, label_budget=20,
                                                          label_seed=seed, sample_seed=seed, unlabelled=16, **common))
            assert len(labelled.splits["train"]) == 36  # every unsupervised review, the test review's twin included
            calibration = fit_ready(ClassificationDataModule(tokenizer=tiny_bert, source=source, limit_train=30,
                                                             sample_seed=seed, **common))
            for inputs in (labelled.splits["train"]["input_ids"], calibration.splits["train"]["input_ids"]):
                assert not {tuple(ids) for ids in inputs} & held
            assert not set(demonstrations(source, 8, seed, 16).texts) & set(evaluation.texts)
            teacher = ClassificationDataModule(tokenizer=tiny_bert, source=source, predict_split="unsupervised",
                                               sample_seed=seed, **common)
            teacher.setup("predict")
            assert not set(teacher.splits["predict"]["text"]) & set(evaluation.texts)
        mlm = fit_ready(MaskedLMDataModule(tokenizer=tiny_bert, source=source, block_size=32, **common))
        text = " ".join(" ".join(map(str, ids)) for ids in mlm.splits["train"]["input_ids"])
        for ids in held:  # no evaluation review's tokens (past the first special token) inside any block
            assert " ".join(map(str, ids[1:25])) not in text


def test_every_random_choice_follows_the_seed(tiny_bert, imdb_test_dir, tmp_path):
    from src.data import ClassificationDataModule

    source, common = str(imdb_test_dir), {"val_size": 16, "cache_dir": str(tmp_path / "c")}

    def calibration(seed):
        return fit_ready(ClassificationDataModule(tokenizer=tiny_bert, source=source, limit_train=10,
                                                  sample_seed=seed, **common)).splits["train"]["input_ids"]

    def teacher(seed):
        dm = ClassificationDataModule(tokenizer=tiny_bert, source=source, predict_split="unsupervised",
                                      limit_predict=5, sample_seed=seed, **common)
        dm.setup("predict")
        return dm.splits["predict"]["text"]

    def order(seed):
        dm = fit_ready(ClassificationDataModule(tokenizer=tiny_bert, source=source, sample_seed=seed, **common))
        dm.trainer = None
        return [b["labels"].tolist() for b in dm.train_dataloader()]

    for choice in (calibration, teacher, order, lambda s: demonstrations(source, 4, s, 16).texts):
        assert choice(0) == choice(0) != choice(1)
    # without a sample seed, the first rows of the split's order as before (recipes are unchanged)
    plain = fit_ready(ClassificationDataModule(tokenizer=tiny_bert, source=source, limit_train=10, **common))
    every = fit_ready(ClassificationDataModule(tokenizer=tiny_bert, source=source, **common))
    assert plain.splits["train"]["input_ids"] == every.splits["train"]["input_ids"][:10]
