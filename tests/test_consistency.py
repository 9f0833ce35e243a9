import pytest
import torch

from src.cli import main
from src.data.augment import TfIdfReplacement
from src.errors import UserError
from src.models.consistency import ConsistencyClassifier, consistency_loss
from tests.conftest import fit_ready
from tests.test_data import datamodule


def test_the_consistency_loss_is_zero_for_identical_predictions_and_positive_otherwise():
    clean = torch.tensor([[2.0, -1.0], [0.5, 0.3], [-3.0, 3.0]])
    assert consistency_loss(clean, clean.clone(), temperature=1.0, confidence=0.0).item() == pytest.approx(0.0)
    noisy = clean + torch.tensor([[-1.0, 1.0], [0.0, 0.0], [0.5, -0.5]])
    kl = torch.nn.functional.kl_div(noisy.log_softmax(-1), clean.log_softmax(-1), log_target=True,
                                    reduction="none").sum(-1)
    assert consistency_loss(clean, noisy, 1.0, 0.0).item() == pytest.approx(kl.mean().item()) and kl.mean() > 0
    # Row 1 (top probability 0.55) is below a 0.6 confidence: it counts as zero, the mean stays over all rows.
    assert consistency_loss(clean, noisy, 1.0, 0.6).item() == pytest.approx((kl[0] + kl[2]).item() / 3)
    # Sharpening moves the target away from the clean prediction: identical inputs no longer agree with it.
    assert consistency_loss(clean, clean.clone(), 0.5, 0.0) > 0


def batch_of(tokenizer, texts: list[str], labels: list[list[float]], noisy: list[str]) -> dict:
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    aug = tokenizer(noisy, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": torch.tensor(labels),
            "augmented_input_ids": aug["input_ids"], "augmented_attention_mask": aug["attention_mask"]}


class BagOfWords(torch.nn.Module):
    """A stand-in encoder whose logits clearly depend on the input (a random tiny BERT's barely do)."""

    def __init__(self, vocab: int):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(vocab, 2)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask[..., None].float()
        logits = (self.embed(input_ids) * mask).sum(1) / mask.sum(1)
        return type("Output", (), {"logits": 3 * logits})


def test_a_training_step_adds_the_consistency_term_to_the_labelled_rows_cross_entropy(tiny_bert):
    model = ConsistencyClassifier(model_name=tiny_bert, consistency_weight=100.0, temperature=1.0,
                                  confidence=0.0).eval()  # no dropout: the same input, the same prediction
    model.model = BagOfWords(model.tokenizer.vocab_size)
    texts = ["a wonderful film", "dull and boring", "the plot of the movie"]
    labels = [[0.0, 1.0], [0.8, 0.2], [0.0, 0.0]]  # human, a teacher's, none
    same = batch_of(model.tokenizer, texts, labels, texts)
    with torch.no_grad():
        logits = model(same).float()
        supervised = torch.nn.functional.cross_entropy(logits[:2], torch.tensor(labels[:2]))
        assert model._common_step(same, "train")["loss"].item() == pytest.approx(supervised.item(), abs=1e-5)
        other = batch_of(model.tokenizer, texts, labels, ["terrible awful", "superb brilliant moving", "fun"])
        noisy = model.model(input_ids=other["augmented_input_ids"],
                            attention_mask=other["augmented_attention_mask"]).logits
        term = consistency_loss(logits, noisy, 1.0, 0.0)
        assert term > 0  # every row counts, the unlabelled one too
        assert model._common_step(other, "train")["loss"].item() == pytest.approx((supervised + 100 * term).item())
    with pytest.raises(UserError, match="consistency_noise tfidf"):
        model._common_step({k: v for k, v in same.items() if not k.startswith("augmented")}, "train")


def test_tfidf_replacement_replaces_uninformative_tokens_by_uninformative_ones():
    # Token 5 stands in every review (idf 0), 7 in half of them, 999 in one: the review's informative token is 999.
    corpus = [[101, 5, 5, 7, 102], [101, 5, 8, 102], [101, 5, 7, 9, 102], [101, 5, 999, 102]]
    replace = TfIdfReplacement(corpus, special_ids=[101, 102], p=0.3)
    review = [101, *[5] * 10, 999, 102]
    torch.manual_seed(0)
    outs = [replace(review) for _ in range(400)]
    assert all(len(o) == len(review) and o[0] == 101 and o[-1] == 102 for o in outs)  # specials kept, same length
    assert all(o[11] == 999 for o in outs)  # the review's most informative token is never replaced
    changed = sum(o[i] != 5 for o in outs for i in range(1, 11)) / (400 * 10)
    assert changed == pytest.approx(1.1 * 0.3 * (1 - replace.draw[replace.vocab == 5].item()), abs=0.04)
    drawn = {o[i] for o in outs for i in range(1, 11)} - {5}
    assert drawn and drawn <= {7, 8, 9}  # corpus tokens; 999, the highest corpus TF-IDF, is never drawn


def test_the_data_module_adds_unlabelled_reviews_and_noisy_copies(tiny_bert, imdb_dir, tmp_path):
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=4, unlabelled=6, consistency_noise="tfidf",
                              consistency_p=0.5))
    train = dm.splits["train"]
    assert train["label"].count([0.0, 0.0]) == 6 and len(train) == 10
    assert len({tuple(x) for x in train["input_ids"]}) == 10  # none twice
    torch.manual_seed(0)
    batch = next(iter(dm.train_dataloader()))
    plain = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=4, unlabelled=6))
    assert "augmented_input_ids" not in next(iter(plain.train_dataloader()))
    assert batch["augmented_input_ids"].shape[0] == batch["input_ids"].shape[0]
    assert not torch.equal(batch["augmented_input_ids"], batch["input_ids"])
    with pytest.raises(UserError, match="data.unlabelled 100"):
        fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=4, unlabelled=100))


def test_the_consistency_recipe_fits(tiny_bert, imdb_dir, tmp_path):
    from tests.conftest import tiny_args

    args = tiny_args(tiny_bert, imdb_dir, tmp_path, data__label_budget="8", data__unlabelled="8",
                     trainer__max_steps="3", trainer__limit_val_batches="0")
    args[2:2] = ["--config", "configs/studies/few_labels.yaml", "--config", "configs/studies/consistency.yaml"]
    cli = main(["fit", *args])
    assert isinstance(cli.model, ConsistencyClassifier) and cli.trainer.global_step == 3
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_training_signal_annealing_rises_from_one_over_k_to_one_and_drops_learnt_human_labels(tiny_bert):
    from src.models.consistency import tsa_threshold

    for schedule in ("linear", "log", "exp"):
        assert tsa_threshold(schedule, 0.0, 2) == pytest.approx(0.5, abs=0.01)
        assert tsa_threshold(schedule, 1.0, 2) == pytest.approx(1.0, abs=0.01)  # log: 1 - exp(-5) of the way
    assert tsa_threshold("log", 0.5, 2) > tsa_threshold("linear", 0.5, 2) == 0.75 > tsa_threshold("exp", 0.5, 2)
    model = ConsistencyClassifier(model_name=tiny_bert, temperature=1.0, confidence=0.0, tsa="linear").eval()
    texts = ["a wonderful film", "dull and boring", "the plot"]
    with torch.no_grad():
        probe = batch_of(model.tokenizer, texts, [[0.0, 1.0]] * 3, texts)
        predicted = model(probe).float().argmax(-1)
        # Row 0: labelled with the class the model already prefers (above 1/2: learnt); row 1: with the other one;
        # row 2: a teacher's probabilities, which annealing never leaves out.
        labels = [[float(c == predicted[0]) for c in range(2)], [float(c != predicted[1]) for c in range(2)],
                  [0.3, 0.7]]
        batch = batch_of(model.tokenizer, texts, labels, texts)
        logits = model(batch).float()
        want = torch.nn.functional.cross_entropy(logits[1:], torch.tensor(labels[1:]))
        assert model._common_step(batch, "train")["loss"].item() == pytest.approx(want.item(), abs=1e-5)


def test_the_human_labels_repeat_to_make_their_share_of_the_training_set(tiny_bert, imdb_dir, tmp_path):
    dm = fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=4, unlabelled=6, labelled_share=0.5))
    train = dm.splits["train"]
    assert len(train) == 4 * 2 + 6 and train["label"].count([0.0, 0.0]) == 6  # 8 of 14: at least half
    assert train["input_ids"][:4] == train["input_ids"][4:8]
    with pytest.raises(UserError, match="labelled_share 1.0"):
        fit_ready(datamodule(tiny_bert, imdb_dir, tmp_path, label_budget=4, unlabelled=6, labelled_share=1.0))


def test_unlabelled_reviews_read_on_past_copies_of_the_teachers_reviews():
    """IMDB's unsupervised split repeats some reviews: a copy of a teacher's review further on is skipped, and the
    reviews after it still fill the count (it used to stop short: "has 1998 reviews not already trained on")."""
    from types import SimpleNamespace

    import datasets

    from src.data.classification import ClassificationDataModule

    rows = [[i] for i in range(10)] + [[0], [1]] + [[i] for i in range(10, 20)]  # two copies of taken reviews
    pool = datasets.Dataset.from_dict({"input_ids": rows})
    taken = {(0,), (1,)}  # the teacher's reviews, each also further on in the split

    def unlabelled(n):  # the method alone, on the two attributes it reads
        self = SimpleNamespace(hparams=SimpleNamespace(unlabelled=n), order_seed=7)
        return ClassificationDataModule.unlabelled_ids(self, pool, taken)

    ids = unlabelled(18)
    assert sorted(ids) == [[i] for i in range(2, 20)]
    with pytest.raises(UserError, match="data.unlabelled 19: the unsupervised split has 18 reviews"):
        unlabelled(19)
