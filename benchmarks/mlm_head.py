"""A MiniLM masked-LM training step: the vocabulary projection on every position versus on the masked ones only.

Why: MaskedLM (src/models/masked_lm.py) runs the head on the ~15% masked positions; on the 30,522-token
vocabulary the head costs about as much as the 6-layer encoder. Both arms compute the same loss.
Real masked blocks from the data module; arms alternate within each round; medians over rounds.
To run: .venv/bin/python benchmarks/mlm_head.py   (writes outputs/bench/mlm_head.json)
"""

from collections.abc import Callable

import torch
from timing import alternate, write  # benchmarks/timing.py, beside this script

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
    def step(loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            loss().backward()
            opt.step()
            opt.zero_grad()
        return run

    times = alternate({arm: step(loss) for arm, loss in arms.items()}, repeats)
    return write("outputs/bench/mlm_head.json", times, base="head on every position",
                 threads=torch.get_num_threads(), batch=batch, block=block)


if __name__ == "__main__":
    main()
