import lightning as L
import torch

from src.data import ClassificationDataModule
from src.models.linear_probe import LinearProbe


def test_fit_solves_the_regression_on_frozen_mean_pooled_embeddings(tiny_bert, imdb_dir, tmp_path):
    data = ClassificationDataModule(tokenizer=tiny_bert, source=str(imdb_dir), val_size=16, batch_size=8,
                                    max_length=64, label_budget=32, cache_dir=str(tmp_path / "c"))
    module = LinearProbe(model_name=tiny_bert, l2=1e-4)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False, num_sanity_val_steps=0).fit(module, datamodule=data)
    assert all(torch.equal(v, before[k]) for k, v in module.model.state_dict().items())  # the encoder is frozen
    train = data.splits["train"]
    batch = module.tokenizer.pad({"input_ids": train["input_ids"]}, return_tensors="pt")
    x, y = module.embed(batch), torch.tensor(train["label"])
    assert torch.allclose(x.norm(dim=-1), torch.ones(len(x)), atol=1e-5)  # normalised, as sentence-transformers
    # At the solution the penalised loss's gradient vanishes: the regression was solved, not merely stepped.
    w = module.head.weight.detach().clone().requires_grad_(True)
    b = module.head.bias.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 1e-4 * w.square().sum()
    loss.backward()
    assert w.grad.abs().max() < 1e-3 and b.grad.abs().max() < 1e-3
    assert (module(batch).argmax(1) == y).float().mean() > 0.5
