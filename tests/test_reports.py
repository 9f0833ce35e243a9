"""ClassificationReport's worst-mistakes table: the reviews with the lowest probability of their true class, over every
batch of an epoch."""

from types import SimpleNamespace

import torch

from src.callbacks import ClassificationReport


def test_worst_rows_are_the_epochs_lowest_true_class_probabilities_whatever_the_batch():
    torch.manual_seed(0)
    report = ClassificationReport(worst=5)
    report.setup(None, SimpleNamespace(hparams=SimpleNamespace(label_names=["neg", "pos"]), device="cpu"), "validate")
    expected = []
    for size, length in ((8, 12), (3, 20), (8, 7)):  # a last batch smaller than `worst`, batches of other lengths
        probs = torch.rand(size, 2).softmax(-1)
        labels = torch.randint(0, 2, (size,))
        ids = torch.randint(5, 100, (size, length))
        mask = (torch.arange(length) < torch.randint(1, length + 1, (size, 1))).long()  # padded at the end
        report._update({"probs": probs}, {"labels": labels, "input_ids": ids, "attention_mask": mask})
        for i in range(size):
            expected.append((float(probs[i, labels[i]]), int(labels[i]), int(probs[i].argmax()),
                             ids[i, : int(mask[i].sum())].tolist()))
    assert report.worst_rows() == sorted(expected)[:5]
    assert report.curves["confusion"].compute().sum() == 19  # every review counted, not only the worst
    report._reset()
    assert report.worst_rows() == []


def test_the_worst_mistakes_show_the_review_as_written_escaped_and_cut():
    from src.callbacks.reports import quoted

    report = ClassificationReport(worst=2)
    report.setup(None, SimpleNamespace(hparams=SimpleNamespace(label_names=["neg", "pos"]), device="cpu"), "validate")
    texts = ["Fine.", "It's 80's <b>camp</b>, $1.50 well spent!", "Dull.", "Loved *every* minute"]
    probs = torch.tensor([[0.2, 0.8], [0.9, 0.1], [0.6, 0.4], [0.7, 0.3]])
    ids = torch.ones(4, 3, dtype=torch.long)
    report._update({"probs": probs}, {"labels": torch.tensor([1, 1, 0, 1]), "input_ids": ids,
                                      "attention_mask": torch.ones_like(ids), "text": texts})
    assert [(truth, pred, text) for _, truth, pred, text in report.worst_rows()] == [
        (1, 0, "It's 80's <b>camp</b>, $1.50 well spent!"), (1, 0, "Loved *every* minute")]  # not re-tokenized
    assert quoted("A <script>x</script><br /><br />film") == r"A \<script\>x\</script\> film"  # shown, not run
    long = quoted("word " * 100, chars=30)
    assert long.endswith(" …") and len(long) <= 32 and "wor …" not in long  # cut at a word
