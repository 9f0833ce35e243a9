"""A MiniLM masked-LM training step: the vocabulary projection on every position versus on the masked ones only.

Why: MaskedLM (src/masked_lm.py) runs the head on the ~15% masked positions; on the 30,522-token
vocabulary the head costs about as much as the 6-layer encoder. Both arms compute the same loss.
Real masked blocks from the data module; arms alternate within each round; medians over rounds.
To run: .venv/bin/python benchmarks/mlm_head.py   (writes outputs/bench/mlm_head.json)
"""

import json
import statistics
import time
from pathlib import Path

import torch

from src.data import MaskedLMDataModule
from src.models import MaskedLM


def main(batch: int = 16, block: int = 256, repeats: int = 3) -> dict:
    torch.manual_seed(0)
    dm = MaskedLMDataModule(block_size=block, batch_size=batch, val_size=2500, limit_train=200, limit_val=20)
    dm.prepare_data()
    dm.setup("fit")
    data = next(iter(dm.train_dataloader()))
    module = MaskedLM(config_overrides={"attention_probs_dropout_prob": 0.0})  # as configs/mlm_imdb.yaml
    opt = torch.optim.AdamW(module.parameters(), lr=1e-5)

    def full_head() -> torch.Tensor:
        return module.model(input_ids=data["input_ids"], attention_mask=data["attention_mask"],
                            labels=data["labels"]).loss

    arms = {"head on every position": full_head, "head on masked positions (MaskedLM)": lambda: module(data)[0]}
    times = {arm: [] for arm in arms}
    for i in range(repeats + 1):  # the first round warms up and is dropped
        for arm, step in arms.items():
            start = time.perf_counter()
            step().backward()
            opt.step()
            opt.zero_grad()
            if i:
                times[arm].append(time.perf_counter() - start)
    median = {arm: statistics.median(t) for arm, t in times.items()}
    base = median["head on every position"]
    result = {"threads": torch.get_num_threads(), "batch": batch, "block": block, "median_step_s": median,
              "speedup": {arm: base / t for arm, t in median.items()}, "all_step_s": times}
    out = Path("outputs/bench/mlm_head.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for arm in arms:
        print(f"{arm:40s} {median[arm]:7.2f} s/step  x{base / median[arm]:.2f}")
    print("->", out)
    return result


if __name__ == "__main__":
    main()
