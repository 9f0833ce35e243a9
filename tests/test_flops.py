import math

import torch
from transformers import BertConfig, BertForSequenceClassification

from src.flops import attention_shape, matmul_peak, matmul_weights, train_flops


def tiny() -> BertForSequenceClassification:
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    return BertForSequenceClassification(config)


def test_matmul_weights_count_linear_layers_not_embeddings():
    # per layer: query, key, value, output (32x32 each), intermediate and output (32x64 each); pooler; classifier
    expected = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 32 + 2 * 32
    assert matmul_weights(tiny()) == expected
    assert attention_shape(tiny()) == (2, 32)
    assert attention_shape(torch.nn.Linear(2, 2)) == (0, 0)  # no config: weights only


def test_train_flops_count_real_tokens_and_attention():
    flops = train_flops(torch.tensor([3, 5]), weights=10, layers=2, hidden=4)
    assert float(flops) == 6 * 10 * 8 + 12 * 2 * 4 * (9 + 25)  # attention grows with each sequence's square


def test_matmul_peak_is_the_fastest_timed_matmul_after_the_warm_up(monkeypatch):
    """2 n^3 FLOPs over the shortest of the timed repeats; the warm-up call is not timed."""
    import src.flops

    # the clock at each call: the warm-up's start (its end is not read), then each repeat's start and end
    readings = iter([0.0, 10.0, 10.5, 20.0, 20.25, 30.0, 30.4])  # repeats of 0.5, 0.25 and 0.4 s

    def perf_counter() -> float:
        return next(readings)

    monkeypatch.setattr(src.flops.time, "perf_counter", perf_counter)
    assert matmul_peak.__wrapped__("cpu", torch.float32, size=64, repeats=3) == 2 * 64**3 / 0.25
    monkeypatch.undo()
    measured = matmul_peak("cpu", torch.float32, size=64)
    assert math.isfinite(measured) and measured > 0
