import math

import torch

from src.models.metrics import PerplexityFromLoss, WeightedMean


def test_weighted_mean_weights_each_batch_by_its_count_and_shows_a_nan():
    mean = WeightedMean()
    mean.update(torch.tensor(1.0), weight=3)
    mean.update(torch.tensor(2.0, dtype=torch.bfloat16), weight=1)  # a bf16-mixed loss
    assert mean.compute().item() == 1.25  # (3 * 1 + 2) / 4, not the unweighted 1.5
    mean.update(torch.tensor(float("nan")), weight=2)
    assert math.isnan(mean.compute().item())  # MeanMetric's default drops it with a warning


def test_perplexity_is_the_exp_of_the_weighted_mean_loss():
    ppl = PerplexityFromLoss()
    ppl.update(torch.tensor(0.5), weight=10)
    ppl.update(torch.tensor(2.0), weight=30)
    assert ppl.compute().item() == torch.tensor((0.5 * 10 + 2.0 * 30) / 40).exp().item()
