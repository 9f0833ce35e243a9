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


def test_matmul_peak_is_a_rate():
    small, large = matmul_peak("cpu", torch.float32, size=64), matmul_peak("cpu", torch.float32, size=256)
    assert math.isfinite(small) and 0 < small and 0 < large
