import itertools
import json
import random
import statistics
from types import SimpleNamespace

import datasets
import pytest
import torch

import src.data.classification
from src.data import ClassificationDataModule
from src.data.collate import Collator
from src.data.sampler import LengthGroupedSampler
from src.data.sources import load_source
from src.data.text import clean, tokenize
from src.errors import UserError
from src.pretrained import load_tokenizer
from tests.conftest import fit_ready, make_split


def datamodule(tiny_bert, source, tmp_path, **kwargs) -> ClassificationDataModule:
    kwargs = {"val_size": 16, "batch_size": 8, "max_length": 64, "cache_dir": str(tmp_path / "cache"), **kwargs}
    return ClassificationDataModule(tokenizer=tiny_bert, source=str(source), **kwargs)


@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_folder_of_split_files(tmp_path, ext):
    ds = datasets.Dataset.from_dict(make_split(10, seed=0))
    {"parquet": ds.to_parquet, "csv": ds.to_csv, "jsonl": ds.to_json}[ext](str(tmp_path / f"train.{ext}"))
    raw, fingerprint = load_source(str(tmp_path))
    assert list(raw) == ["train"] and raw["train"]["label"] == ds["label"] and raw["train"]["text"] == ds["text"]
    assert str(tmp_path) in fingerprint


def test_aclimdb_tree(tmp_path):
    for split, folder, n in [("train", "pos", 2), ("train", "neg", 3), ("test", "pos", 1), ("train", "unsup", 4)]:
        (tmp_path / split / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (tmp_path / split / folder / f"{i}_7.txt").write_text(f"{folder} review {i}", encoding="utf-8")
    raw, _ = load_source(str(tmp_path))
    assert sorted(raw["train"]["label"]) == [0, 0, 0, 1, 1]
    assert raw["test"]["label"] == [1] and raw["unsupervised"]["label"] == [-1] * 4
    assert raw["train"]["text"][0] == "neg review 0"


def test_clean_removes_html_line_breaks():
    assert clean("good.<br /><br />Really") == "good.  Really"


def test_head_truncation_keeps_the_start(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    (ids,) = tokenize(["first " + "word " * 100 + "last"], tok, max_length=16, truncation="head")
    assert len(ids) == 16 and ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.convert_tokens_to_ids("first") == ids[1]


def test_head_tail_truncation_keeps_start_and_end(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    short, long = tokenize(["short one", "first " + "word " * 100 + "last"], tok, max_length=16, truncation="head_tail")
    assert short == tok("short one")["input_ids"]
    assert len(long) == 16 and long[0] == tok.cls_token_id and long[-1] == tok.sep_token_id
    assert long[1] == tok.convert_tokens_to_ids("first") and long[-2] == tok.convert_tokens_to_ids("last")


def test_validation_split_is_held_out_seeded_and_shuffled(tiny_bert, imdb_dir, tmp_path):
    a = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path))
    b = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path))
    c = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, seed=7))
    train, val = a.splits["train"], a.splits["validation"]
    assert len(val) == 16 and len(train) == 96 - 16
    assert not {tuple(x) for x in train["input_ids"]} & {tuple(x) for x in val["input_ids"]}
    assert val["input_ids"] == b.splits["validation"]["input_ids"]
    assert val["input_ids"] != c.splits["validation"]["input_ids"]
    assert 0 < sum(val["label"]) < len(val)  # the source is ordered by label: both classes must appear


def test_limits_cut_splits(tiny_bert, imdb_dir, tmp_path):
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, limit_train=10, limit_val=5, val_size=0.25))
    assert len(dm.splits["train"]) == 10 and len(dm.splits["validation"]) == 5


def test_tokenized_cache_is_reused(tiny_bert, imdb_dir, tmp_path, monkeypatch):
    first = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path))
    never = lambda *a, **k: pytest.fail("tokenized again despite the cache")  # noqa: E731
    monkeypatch.setattr(src.data.classification, "tokenize", never)
    second = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path))
    assert second.splits["train"]["input_ids"] == first.splits["train"]["input_ids"]
    with pytest.raises(pytest.fail.Exception):  # other settings: a new cache entry
        fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, max_length=32))


def test_batches_are_padded_dynamically(tiny_bert, imdb_dir, tmp_path):
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, max_length=512))
    widths = set()
    for batch in dm.train_dataloader():
        n, width = batch["input_ids"].shape
        assert width % 8 == 0 and batch["attention_mask"].shape == (n, width) and batch["labels"].shape == (n,)
        assert (batch["attention_mask"].sum(1).max() > width - 8).item()  # padded to the batch's longest only
        widths.add(width)
    assert len(widths) > 1


def test_length_grouped_sampler_covers_all_and_groups_lengths():
    lengths = [(i * 37) % 500 for i in range(1000)]
    sampler = LengthGroupedSampler(lengths, batch_size=10, seed=0)
    order = list(sampler)
    assert sorted(order) == list(range(1000))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in zip(*[iter(order)] * 10)]
    assert statistics.median(spread) < 50  # random batches of 10 would spread over ~400
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_eval_batches_are_sorted_longest_first(tiny_bert, imdb_dir, tmp_path):
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path))
    lengths = [int(n) for b in dm.val_dataloader() for n in b["attention_mask"].sum(1)]
    assert lengths == sorted(lengths, reverse=True) and len(lengths) == 16


def test_predict_inputs_from_file_and_list(tiny_bert, tmp_path):
    f = tmp_path / "reviews.txt"
    f.write_text("from the\u2028file\r\n\nthe second line is the longest review here\n", encoding="utf-8")
    dm = datamodule(tiny_bert, tmp_path / "unused", tmp_path, predict_file=str(f), predict_texts=["from config"])
    dm.setup("predict")
    rows = dm.splits["predict"]
    assert rows["text"][:2] == ["from config", "from the\u2028file"] and len(rows) == 3
    assert rows["idx"] == [0, 1, 3]  # a blank line is skipped, and a file row's id stays its line number (after 1)
    batch = next(iter(dm.predict_dataloader()))
    assert batch["text"][0].startswith("the second line") and batch["idx"].tolist()[0] == 3  # longest first


def test_a_max_length_the_prompt_template_fills_is_refused(tiny_bert):
    with pytest.raises(UserError, match="the prompt template alone takes"):
        tokenize(["A fine film."], load_tokenizer(tiny_bert), 4, "head_tail", "Review: {text}\nOverall, the movie was")


def test_collator_keeps_text():
    from transformers import AutoTokenizer

    from src.pretrained import packaged_path

    tok = AutoTokenizer.from_pretrained(str(packaged_path("sentence-transformers/all-MiniLM-L6-v2")))
    batch = Collator(tok)([{"input_ids": [101, 7, 102], "text": "a"}, {"input_ids": [101, 102], "text": "b"}])
    assert batch["text"] == ["a", "b"] and batch["input_ids"].shape == (2, 8)


# ---- bad input: one clear error each ----

def test_missing_data_path(tiny_bert, tmp_path):
    with pytest.raises(UserError, match="not found"):
        fit_ready(datamodule(tiny_bert, tmp_path / "no" / "such" / "folder", tmp_path))


@pytest.mark.parametrize("source", ["my_reviews/", "./my_reviews", "data\\reviews", "reviews.csv", "a/b/c"])
def test_a_path_like_source_that_is_missing_is_not_looked_up_on_the_hub(source):
    from src.data.sources import load_source

    with pytest.raises(UserError, match=f"data folder {source!r} not found: fix data.source".replace("\\", "\\\\")):
        load_source(source)


def test_folder_without_split_files(tiny_bert, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no split files"):
        fit_ready(datamodule(tiny_bert, tmp_path / "empty", tmp_path))


def test_file_without_text_and_label_columns(tiny_bert, tmp_path):
    datasets.Dataset.from_dict({"review": ["x"], "sentiment": [1]}).to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(UserError, match=r"lacks column\(s\) \['label', 'text'\]"):
        fit_ready(datamodule(tiny_bert, tmp_path, tmp_path))


def test_labels_outside_the_classes(tiny_bert, tmp_path):
    rows = {"text": ["a", "b", "c"], "label": [0, 1, 5]}
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(UserError, match=r"labels \[5\] outside the classes 0..1"):
        fit_ready(datamodule(tiny_bert, tmp_path, tmp_path))


def test_missing_split_when_a_stage_needs_it(tiny_bert, imdb_dir, tmp_path):
    dm = datamodule(tiny_bert, imdb_dir, tmp_path)
    with pytest.raises(UserError, match="has no 'test' split .* set data.test_split validation"):
        dm._load_tokenized(["test"], write=True)
    dm = datamodule(tiny_bert, imdb_dir, tmp_path, test_split="validation", limit_test=4)
    dm.prepare_data()
    dm.setup("test")
    assert len(dm.splits["test"]) == 4


def test_missing_predict_file(tiny_bert, tmp_path):
    dm = datamodule(tiny_bert, tmp_path, tmp_path, predict_file=str(tmp_path / "nope.txt"))
    with pytest.raises(UserError, match="predict file .* does not exist"):
        dm.setup("predict")
    (tmp_path / "blank.txt").write_text("\n  \n")
    blank = datamodule(tiny_bert, tmp_path, tmp_path, predict_file=str(tmp_path / "blank.txt"))
    with pytest.raises(UserError, match="predict file .*blank.txt' holds no text .*; fix: write one input per line"):
        blank.setup("predict")


def test_length_grouped_sampler_shards_global_batches_and_resumes_mid_epoch():
    lengths = [random.Random(i).randint(5, 500) for i in range(103)]
    one = list(LengthGroupedSampler(lengths, batch_size=8, seed=3))  # one process, batch 8
    ranks = [list(LengthGroupedSampler(lengths, batch_size=4, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 4 * 13  # 103 padded to 13 global batches of 8
    # Each global batch of the two processes is the single process's batch of 8 (the short last one padded).
    for b in range(13):
        global_batch = ranks[0][4 * b : 4 * b + 4] + ranks[1][4 * b : 4 * b + 4]
        assert set(one[8 * b : 8 * b + 8]) <= set(global_batch) and len(global_batch) == 8
    assert set(ranks[0]) | set(ranks[1]) == set(range(103))
    chunks = [one[i : i + 8] for i in range(0, 103, 8)]  # what the DataLoader makes of the flat order
    spread = [max(lengths[i] for i in c) - min(lengths[i] for i in c) for c in chunks]
    assert max(spread) < 100  # every chunk is one length group (lengths span 5..500)
    sampler = LengthGroupedSampler(lengths, batch_size=8, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.skip_batches(epoch=2, batches=5)
    assert list(sampler) == full[40:]  # resumes after 5 batches
    assert list(sampler) == full  # once: the next pass starts from the top
    sampler.skip_batches(epoch=1, batches=5)
    assert list(sampler) == full  # a skip for another epoch does not apply


def test_the_training_loader_saves_and_restores_its_place_in_the_epoch(tiny_bert, imdb_dir, tmp_path):
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, batch_size=8))  # 80 reviews: 10 batches
    full = [b["input_ids"] for b in dm.train_dataloader()]
    assert dm.state_dict() == {"epoch": 1, "batches_done": 0}  # a whole epoch done: resume at the next one
    loader = dm.train_dataloader()
    seen = [b["input_ids"] for b in itertools.islice(loader, 3)]  # as training stopped after 3 steps
    state = dm.state_dict()
    assert state == {"epoch": 0, "batches_done": 3} and all(a.equal(b) for a, b in zip(seen, full))
    resumed = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, batch_size=8))
    resumed.load_state_dict(state)  # as Lightning does from a checkpoint, before it asks for the loader
    rest = [b["input_ids"] for b in resumed.train_dataloader()]
    assert len(rest) == 7 and all(a.equal(b) for a, b in zip(rest, full[3:]))


def test_loaders_pin_their_batches_when_the_trainer_is_on_a_gpu_only(tiny_bert, imdb_dir, tmp_path):
    # Lightning copies a batch to a GPU with non_blocking=True: from pageable memory that copy waits for the GPU.
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path))
    assert not dm.val_dataloader().pin_memory  # no trainer: the study's and the API's own loops
    for device, pinned in (("cpu", False), ("cuda", True)):
        dm.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)), world_size=1,
                                     global_rank=0)
        assert dm.train_dataloader().pin_memory is pinned and dm.val_dataloader().pin_memory is pinned


def test_balanced_sample_takes_each_class_equally_and_follows_its_seed():
    from src.data.selection import balanced_sample

    labels = [0] * 70 + [1] * 20 + [2] * 10
    chosen = balanced_sample(labels, 16, 3, seed=1)
    counts = [sum(labels[i] == c for i in chosen) for c in range(3)]
    assert counts == [6, 5, 5] and len(set(chosen)) == 16 and chosen == sorted(chosen)
    assert chosen == balanced_sample(labels, 16, 3, seed=1) != balanced_sample(labels, 16, 3, seed=2)
    assert set(balanced_sample(labels, 30, 3, seed=0)) >= {i for i, y in enumerate(labels) if y == 2}


def test_a_label_budget_larger_than_a_class_says_so(tiny_bert, imdb_dir, tmp_path):
    from src.errors import UserError

    dm = ClassificationDataModule(tokenizer=tiny_bert, source=str(imdb_dir), val_size=16, label_budget=1000,
                                  cache_dir=str(tmp_path / "c"))
    with pytest.raises(UserError, match="sample of 1000 needs 500 reviews of class 0"):
        fit_ready(dm)


def test_the_label_budget_trains_on_a_balanced_sample_and_keeps_the_validation_split(tiny_bert, imdb_dir, tmp_path):
    common = {"tokenizer": tiny_bert, "source": str(imdb_dir), "val_size": 16, "cache_dir": str(tmp_path / "c")}
    full = fit_ready(ClassificationDataModule(**common))
    few = fit_ready(ClassificationDataModule(**common, label_budget=8, label_seed=3))
    assert sorted(few.splits["train"]["label"]) == [0] * 4 + [1] * 4
    assert few.splits["validation"]["input_ids"] == full.splits["validation"]["input_ids"]
    train = {tuple(x) for x in full.splits["train"]["input_ids"]}
    assert all(tuple(x) in train for x in few.splits["train"]["input_ids"])  # drawn from the training reviews


def test_predict_reads_a_split_of_the_source_in_a_seeded_order(tiny_bert, imdb_dir, tmp_path):
    dm = datamodule(tiny_bert, imdb_dir, tmp_path, predict_split="unsupervised", limit_predict=5)
    dm.setup("predict")
    again = datamodule(tiny_bert, imdb_dir, tmp_path, predict_split="unsupervised", limit_predict=5)
    again.setup("predict")
    unsupervised = load_source(str(imdb_dir))[0]["unsupervised"]["text"]
    texts = dm.splits["predict"]["text"]
    assert len(texts) == 5 and set(texts) <= set(unsupervised) and texts == again.splits["predict"]["text"]
    assert texts != list(unsupervised[:5])  # shuffled: a source's rows may be ordered
    with pytest.raises(UserError, match="has no 'test' split"):
        datamodule(tiny_bert, imdb_dir, tmp_path, predict_split="test").setup("predict")


def test_soft_labels_add_the_teachers_reviews_with_their_probabilities(tiny_bert, imdb_dir, tmp_path):
    teacher = tmp_path / "predictions.jsonl"
    rows = [{"id": 0, "text": "a wonderful\u2028film", "probabilities": [0.2, 0.8]},  # as PredictionWriter writes it
            {"id": 1, "text": "dull and boring", "probabilities": [0.9, 0.1]}]
    teacher.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=4, soft_labels=str(teacher)))
    train = dm.splits["train"]
    assert sorted(map(tuple, train["label"])) == [(0.0, 1.0)] * 2 + [(0.2, 0.8)] + [(0.9, 0.1)] + [(1.0, 0.0)] * 2
    assert dm.tokenizer.decode(train["input_ids"][-1], skip_special_tokens=True) == "dull and boring"
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (6, 2)
    only_teacher = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=0, soft_labels=str(teacher)))
    assert only_teacher.splits["train"]["label"] == [[0.2, 0.8], [0.9, 0.1]]
    teacher.write_text(json.dumps({"text": "no probabilities"}) + "\n")
    with pytest.raises(UserError, match="lacks `text` or 2 `probabilities`"):
        fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=0, soft_labels=str(teacher)))


def test_sharpening_raises_probabilities_to_one_over_t_and_one_keeps_them():
    from src.data.soft_labels import sharpen

    probs = [[0.2, 0.8], [0.5, 0.5]]
    assert sharpen(probs, 1.0) == probs
    (a, b) = sharpen(probs, 0.5)
    assert a == pytest.approx([0.04 / 0.68, 0.64 / 0.68]) and b == pytest.approx([0.5, 0.5])
    assert sharpen([[1e-30, 1.0]], 0.01)[0] == pytest.approx([0.0, 1.0])  # no underflow to NaN
    with pytest.raises(UserError, match="temperature above 0"):
        sharpen(probs, 0.0)


def test_the_confident_selection_keeps_the_most_confident_reviews_of_each_class():
    from src.data.soft_labels import most_confident

    probs = [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.95, 0.05], [0.45, 0.55], [0.3, 0.7]]
    assert most_confident(probs, 2) == [0, 2, 3, 5]  # class 0: rows 3, 0; class 1: rows 2, 5
    assert most_confident(probs, 10) == list(range(6))  # a class with fewer keeps all it has
    with pytest.raises(UserError, match="give 1 or more"):
        most_confident(probs, 0)


def test_the_data_module_sharpens_and_selects_the_teachers_reviews(tiny_bert, imdb_dir, tmp_path):
    teacher = tmp_path / "predictions.jsonl"
    rows = [{"text": "fine", "probabilities": [0.4, 0.6]}, {"text": "superb", "probabilities": [0.1, 0.9]},
            {"text": "awful", "probabilities": [0.8, 0.2]}]
    teacher.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=0, soft_labels=str(teacher),
                              soft_labels_per_class=1, soft_label_temperature=0.5))
    train = dm.splits["train"]
    assert [dm.tokenizer.decode(x, skip_special_tokens=True) for x in train["input_ids"]] == ["superb", "awful"]
    assert train["label"] == [pytest.approx([1 / 82, 81 / 82]), pytest.approx([0.64 / 0.68, 0.04 / 0.68])]


def test_an_ensemble_teachers_probabilities_are_the_mean_of_its_members(tiny_bert, imdb_dir, tmp_path):
    members = {"a": [[0.2, 0.8], [0.9, 0.1]], "b": [[0.6, 0.4], [0.5, 0.5]], "c": [[0.1, 0.9], [0.7, 0.3]]}
    for name, probs in members.items():
        rows = [{"text": t, "probabilities": p} for t, p in zip(["superb", "awful"], probs)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths = [str(tmp_path / f"{name}.jsonl") for name in members]
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=0, soft_labels=paths))
    assert dm.splits["train"]["label"] == [pytest.approx([0.3, 0.7]), pytest.approx([0.7, 0.3])]
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "other", "probabilities": [0.5, 0.5]}) + "\n")
    with pytest.raises(UserError, match="labels other reviews than"):
        fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=0, soft_labels=paths))


def test_token_dropout_leaves_out_non_special_tokens_of_training_reviews_only(tiny_bert, imdb_dir, tmp_path):
    from src.data.augment import TokenDropout
    from src.data.collate import Collator

    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, token_dropout=0.5))
    tok = dm.tokenizer
    review = {"input_ids": [tok.cls_token_id, *range(1000, 1200), tok.sep_token_id], "label": 1}
    torch.manual_seed(0)
    (kept,) = dm.train_collator()([dict(review)])["input_ids"].tolist()
    kept = [t for t in kept if t != tok.pad_token_id]
    assert kept[0] == tok.cls_token_id and kept[-1] == tok.sep_token_id  # special tokens stay
    inner = kept[1:-1]
    assert inner == sorted(inner) and set(inner) <= set(range(1000, 1200))  # a subsequence, in order
    assert 60 <= len(inner) <= 140  # about half of 200
    torch.manual_seed(0)
    assert dm.train_collator()([dict(review)])["input_ids"].tolist()[0][: len(kept)] == kept  # seeded
    plain = Collator(tok)([dict(review)])
    assert torch.equal(fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path)).train_collator()([dict(review)])[
        "input_ids"], plain["input_ids"])  # 0: nothing dropped
    batch = next(iter(dm.val_dataloader()))  # evaluation reviews untouched: the longest, at full length
    lengths = sorted(dm.splits["validation"]["length"], reverse=True)
    assert batch["attention_mask"].sum(1).tolist() == lengths[: len(batch["input_ids"])]
    with pytest.raises(UserError, match=r"probability in \[0, 1\)"):
        TokenDropout(tok.all_special_ids, 1.0)


def test_a_test_limit_is_a_seeded_class_balanced_sample_not_the_first_of_a_sorted_split(tiny_bert, imdb_test_dir,
                                                                                        tmp_path):
    """IMDB's splits are sorted by label: the first 16 of 32 test reviews are all negative, so `limit_test` taking
    the first would score one class (accuracy 1.0 or 0.0, nothing said)."""
    raw = datasets.load_dataset("parquet", data_files=str(imdb_test_dir / "test.parquet"))["train"]
    assert set(raw["label"][:16]) == {0}  # sorted, like the release

    def test_reviews(seed: int, limit: int) -> list:
        dm = datamodule(tiny_bert, imdb_test_dir, tmp_path, limit_test=limit, seed=seed)
        dm._load_tokenized(["test"], write=True)  # what prepare_data tokenizes for `test`
        dm.setup("test")
        return [(tuple(x), y) for x, y in zip(dm.splits["test"]["input_ids"], dm.splits["test"]["label"])]

    chosen = test_reviews(42, 8)
    assert sorted(y for _, y in chosen) == [0] * 4 + [1] * 4  # balanced, where the first 8 are all negative
    assert chosen == test_reviews(42, 8) != test_reviews(7, 8)  # the same reviews for the same seed
    from src.data.base import take_balanced

    skewed = datasets.Dataset.from_dict({"label": [0] * 10 + [1] * 2, "text": ["r"] * 12})
    with pytest.raises(UserError, match="data.limit_test 8: a class-balanced sample .* needs 4 reviews of each .* fix"):
        take_balanced(skewed, 8, 0, "test")
