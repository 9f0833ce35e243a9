import pytest
import torch

from src.models.in_context import InContextClassifier
from tests.test_zero_shot import TEMPLATE, encode, manual_log_prob

# No deprecated transformers calls (past_key_values became cache).
pytestmark = pytest.mark.filterwarnings("error::FutureWarning")


def module_with(model: str, **kwargs) -> InContextClassifier:
    return InContextClassifier(model_name=model, prompt_template=TEMPLATE, calibration="none",
                               demonstrations=["a great film", "word " * 200, "a poor film"],
                               demonstration_labels=[1, 0, 0], demonstration_tokens=16, **kwargs)


def test_the_kv_prefix_scores_as_the_whole_prompt_would(tiny_causal_lm):
    module = module_with(tiny_causal_lm).eval()
    prefix = module.prefix_ids()
    assert module.tokenizer.decode(prefix).count("Overall, the movie was") == 3
    enc = encode(module, ["a fine film", "a very long and rather boring film indeed"])
    scores = module.label_log_probs(enc["input_ids"], enc["attention_mask"])  # right-padded batch, cached prefix
    for row in range(2):
        ids = enc["input_ids"][row][enc["attention_mask"][row].bool()].tolist()
        expected = [manual_log_prob(module, prefix + ids, label) for label in module.label_ids]
        assert scores[row].tolist() == pytest.approx(expected, abs=1e-4)


def test_demonstrations_are_cut_to_their_token_budget(tiny_causal_lm):
    short, cut = module_with(tiny_causal_lm), module_with(tiny_causal_lm)
    cut.hparams.demonstration_tokens = 8
    assert len(short.prefix_ids()) - len(cut.prefix_ids()) == 8  # only the 200-word review is long enough to cut


def test_a_batch_leaves_the_prefix_unchanged(tiny_causal_lm):
    module = module_with(tiny_causal_lm).eval()
    enc = encode(module, ["one", "two two"])
    first = module.label_log_probs(enc["input_ids"], enc["attention_mask"])
    keys = module._prefix_cache()[0][0].clone()
    again = module.label_log_probs(enc["input_ids"], enc["attention_mask"])
    assert torch.equal(keys, module._prefix_cache()[0][0]) and torch.allclose(first, again)


@pytest.mark.parametrize("tiny_causal_lm", ["llama"], indirect=True)
def test_the_demonstrations_overlay_is_the_study_runs_draw_and_configures_the_fit(tiny_causal_lm, imdb_test_dir,
                                                                                  tmp_path):
    import json

    from src.cli import main
    from src.studies.kinds.demonstrations import Demonstrations
    from src.studies.main import study
    from src.studies.schema import parse_study
    from tests.conftest import tiny_args

    overlay = tmp_path / "demos" / "k4_seed1.yaml"
    study(["demonstrations", "--k", "4", "--seed", "1", "--output", str(overlay), "--source", str(imdb_test_dir),
           "--val_size", "16"])
    spec = parse_study({"name": "s", "eval_split": "test", "source": str(imdb_test_dir), "val_size": 16, "budgets": [4],
                        "seeds": [1],
                        "approaches": [{"name": "icl", "kind": "demonstrations", "config": []}]}, "s")
    drawn = Demonstrations(name="icl", config=[]).run_args(spec, 4, 1)  # what a study's in-context run gets
    cli = main([*tiny_args(tiny_causal_lm, imdb_test_dir, tmp_path, "configs/gpt_zeroshot_imdb.yaml"),
                "--config", "configs/studies/in_context.yaml", "--config", str(overlay)], run=False)
    assert isinstance(cli.model, InContextClassifier)
    assert cli.model.hparams.demonstrations == json.loads(drawn[1])
    labels = json.loads(drawn[3])
    assert cli.model.hparams.demonstration_labels == labels and sorted(labels) == [0, 0, 1, 1]
