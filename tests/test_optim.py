import torch
from torch import nn

from src.optim import adamw_linear_warmup


def test_no_weight_decay_on_biases_and_norms():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    opt = adamw_linear_warmup(model, lr=1e-3, weight_decay=0.1, warmup_ratio=0.1, total_steps=10)["optimizer"]
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3  # linear bias, norm weight and bias


def test_linear_warmup_then_linear_decay_to_zero():
    model = nn.Linear(2, 2)
    out = adamw_linear_warmup(model, lr=1.0, weight_decay=0.0, warmup_ratio=0.2, total_steps=10)
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[1] < lrs[2] == 1.0  # warmup over 2 steps reaches the peak
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))  # then decays
    assert opt.param_groups[0]["lr"] == 0.0
