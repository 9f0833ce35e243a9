import pytest
import torch

from src.cli import main
from src.errors import UserError
from src.models.setfit import pair_loss
from tests.conftest import tiny_args


def test_pair_loss_pulls_same_labels_to_one_and_different_to_zero_weighing_both_kinds_alike():
    e = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=-1)
    labels = torch.tensor([0, 0, 1])
    # pairs (0,1) same: cos 0.6; (0,2) different: cos 0; (1,2) different: cos 0.8
    expected = ((0.6 - 1) ** 2 + ((0.0 - 0) ** 2 + (0.8 - 0) ** 2) / 2) / 2  # not the mean of the three pairs
    assert pair_loss(e, labels).item() == pytest.approx(expected)
    perfect = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert pair_loss(perfect, labels).item() == pytest.approx(0.0)
    assert pair_loss(e[:1], labels[:1]).item() == 0.0  # one review, no pair


def test_a_fit_trains_the_encoder_on_pairs_then_solves_the_head_on_its_embeddings(tiny_bert, imdb_dir, tmp_path):
    from src.models.linear_probe import mean_pooled

    args = tiny_args(tiny_bert, imdb_dir, tmp_path, "configs/studies/setfit.yaml", data__max_length="64",
                     data__val_size="16", data__label_budget="16", trainer__max_steps="12",
                     model__init_args__learning_rate="1e-3")
    cli = main(args, run=False)
    model, data = cli.model, cli.datamodule
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    cli.trainer.fit(model, datamodule=data)
    assert any(not torch.equal(before[k], v) for k, v in model.model.state_dict().items())  # the encoder trained
    assert model.head.weight.abs().sum() > 0  # solved after fit (it starts from zeros in the solve)
    model.eval()
    with torch.no_grad():
        x, y, pairs = [], [], []
        for batch in data.train_dataloader():
            e = mean_pooled(model.model, batch)
            x.append(e), y.append(batch["labels"]), pairs.append(pair_loss(e, batch["labels"]))
        x, y = torch.cat(x), torch.cat(y)
    # The head was solved on the trained encoder's embeddings: there the penalised loss's gradient vanishes (an
    # accuracy threshold would depend on the random tiny encoder).
    w = model.head.weight.detach().clone().requires_grad_(True)
    b = model.head.bias.detach().clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + model.hparams.l2 * w.square().sum()
    loss.backward()
    assert w.grad.abs().max() < 1e-3 and b.grad.abs().max() < 1e-3
    with torch.no_grad():
        untrained = main(args, run=False).model.eval()
        assert torch.stack(pairs).mean() < torch.stack([pair_loss(mean_pooled(untrained.model, b), b["labels"])
                                                        for b in data.train_dataloader()]).mean()


def test_setfit_refuses_a_teachers_probabilities(tiny_bert):
    from src.models import SetFit

    model = SetFit(model_name=tiny_bert)
    batch = {"input_ids": torch.tensor([[101, 2023, 102], [101, 2045, 102]]), "attention_mask": torch.ones(2, 3).long(),
             "labels": torch.tensor([[0.2, 0.8], [1.0, 0.0]])}
    with pytest.raises(UserError, match="human labels"):
        model.training_step(batch, 0)
