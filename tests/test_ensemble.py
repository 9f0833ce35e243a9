"""The ensemble of trained classifiers (src/models/ensemble.py): its probabilities are the mean of its members', each
member classifying with its own prompt and calibration, through the Python API and through the CLI's recipe."""

import json

import pytest
import torch

from src.api import Predictor, load
from src.cli import main
from src.errors import UserError
from src.models import Ensemble
from tests.conftest import tiny_args

TEXTS = ["great wonderful film", "awful boring plot", "the movie was a film", "moving but dull"]


@pytest.fixture
def members(tiny_causal_lm, imdb_dir, tmp_path) -> list[str]:
    """Two fitted tiny zero-shot runs that differ in prompt and label words (each calibrated on its own)."""
    runs = []
    for version, extra in enumerate(([], ["--model.init_args.label_words", '[" bad", " good"]',
                                          "--model.init_args.prompt_template", "{text}\nIn short, it was",
                                          "--data.init_args.prompt_template", "{text}\nIn short, it was"])):
        args = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_zeroshot_imdb.yaml", data__max_length=64,
                         trainer__limit_val_batches=0, trainer__logger__init_args__version=f"m{version}")
        main(["fit", *args, *extra])
        runs.append(str(tmp_path / "runs" / "gpt_zeroshot_imdb" / f"m{version}"))
    return runs


def test_ensemble_probabilities_are_the_mean_of_its_members(members):
    alone = torch.tensor([[row["probabilities"] for row in load(run).predict(TEXTS)] for run in members])
    assert (alone[0] - alone[1]).abs().max() > 1e-3  # the members disagree: the mean is neither one
    data = load(members[0]).data
    rows = Predictor(Ensemble(members=members, model_name=data.hparams.tokenizer), data).predict(TEXTS)
    mean = alone.mean(0)
    assert torch.tensor([row["probabilities"] for row in rows]) == pytest.approx(mean, abs=1e-6)
    assert [row["label"] for row in rows] == mean.argmax(-1).tolist()
    assert [row["text"] for row in rows] == TEXTS


def test_the_ensemble_recipe_predicts_the_same_through_the_cli(members, tiny_causal_lm, imdb_dir, tmp_path):
    args = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_zeroshot_ensemble_imdb.yaml",
                     model__init_args__members=json.dumps(members), data__predict_texts=json.dumps(TEXTS),
                     trainer__callbacks__init_args__output_dir=str(tmp_path / "out"))
    main(["predict", *args])
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    want = Ensemble(members=members, model_name=tiny_causal_lm).predict_step(
        {"text": TEXTS, "idx": torch.arange(len(TEXTS))}, 0)
    assert torch.tensor([row["probabilities"] for row in rows]) == pytest.approx(torch.tensor(want["probabilities"]),
                                                                                 abs=1e-6)


def test_an_ensemble_says_what_is_wrong_with_its_members(members, tiny_causal_lm, imdb_dir, tmp_path):
    with pytest.raises(UserError, match="model.members is empty"):
        Ensemble(members=[], model_name=tiny_causal_lm)
    args = tiny_args(tiny_causal_lm, imdb_dir, tmp_path, "configs/gpt_zeroshot_imdb.yaml", data__max_length=64,
                     trainer__limit_val_batches=0, trainer__logger__init_args__version="other")
    main(["fit", *args, "--model.init_args.label_names", '["bad", "good"]'])
    other = str(tmp_path / "runs" / "gpt_zeroshot_imdb" / "other")
    with pytest.raises(UserError, match="members classify into different classes"):
        Ensemble(members=[members[0], other], model_name=tiny_causal_lm).members()
