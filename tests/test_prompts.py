import json

import pytest
import yaml

from src.models.calibrations import compared
from src.studies import prompts
from src.studies.run import fit_args
from src.studies.runner import read_rows
from tests.conftest import entry


@pytest.mark.slow
@pytest.mark.parametrize("tiny_causal_lm", ["llama"], indirect=True)
def test_the_prompt_grid_scores_every_prompt_under_every_calibration_and_chooses_by_its_rule(
        tiny_causal_lm, imdb_dir, tmp_path):
    from src.__main__ import main

    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({
        "name": "grid", "output_dir": str(tmp_path / "studies"), "doc": str(tmp_path / "results.md"),
        "recipe": "configs/gpt_zeroshot_imdb.yaml", "model_name": tiny_causal_lm, "source": str(imdb_dir),
        "val_size": 16, "eval_size": 12, "bootstrap": 50, "calibration_reviews": 8,
        "choose": {"calibration": "unlabelled", "write": str(tmp_path / "chosen.yaml")},
        "templates": ["Review: {text}\nOverall, the movie was", "{text}\nSentiment:"],
        "label_words": [[" bad", " good"]], "chat_template": [False, True],
        "args": ["--data.init_args.max_length", "64", "--data.init_args.cache_dir", str(tmp_path / "cache"),
                 "--trainer.precision", "32-true"]}))
    main(["prompts", "run", "--config", str(path), "--in_process"])
    assert not (tmp_path / "results.md").exists() and not (tmp_path / "chosen.yaml").exists()  # run: its folder only
    main(["prompts", "report", "--config", str(path)])
    grid, study = prompts.load_grid(path)
    rows = read_rows(study)
    assert [r["status"] for r in rows] == ["ok"] * 4 and len({r["eval_reviews"] for r in rows}) == 1
    assert {r["eval_split"] for r in rows} == {"validation"}
    for row in rows:  # every calibration classified the same 12 reviews; `none` is the run's own prediction
        assert set(row["compared"]) == set(compared()) and row["compared"]["none"] == row["correct"]
        assert all(len(c) == 12 for c in row["compared"].values())
    chat = yaml.safe_load((study.folder() / "runs" / "T2_bad-good_chat" / "n0_seed0" / "config.yaml").read_text())
    assert chat["model"]["init_args"]["prompt_template"].endswith("Sentiment:<|im_end|>\n<|im_start|>assistant\n")
    assert chat["model"]["init_args"]["label_words"] == ["bad", "good"]  # the assistant's answer opens its turn
    assert chat["data"]["init_args"]["prompt_template"] == chat["model"]["init_args"]["prompt_template"]
    table = (tmp_path / "results.md").read_text()
    assert table.count("| T1 |") == 2 and table.count("| T2 |") == 2 and table.count("** |") == 1  # the chosen
    assert json.dumps("{text}\nSentiment:")[1:-1] in table  # the prompts are written out under the table
    assert "against the runner-up" in table and "McNemar p = " in table
    # The rule: the best accuracy under `unlabelled`, written as an overlay the recipe takes.
    best = max(rows, key=lambda r: sum(r["compared"]["unlabelled"]))
    chosen = yaml.safe_load((tmp_path / "chosen.yaml").read_text())
    assert chosen["model"]["init_args"]["prompt_template"] == grid.cells[best["approach"]].prompt
    assert chosen["data"]["init_args"]["prompt_template"] == chosen["model"]["init_args"]["prompt_template"]


def test_the_shipped_grid_has_16_prompts_on_validation_reviews_that_the_cli_parses(capsys):

    grid, study = prompts.load_grid("configs/studies/prompts.yaml")
    assert len(study.approaches) == 16 and study.eval_split == "validation"
    assert grid.choose.write == "configs/studies/zero_shot_prompt.yaml"
    for approach in study.approaches[::5]:
        args = fit_args(study, approach, 0, 0, study.folder() / "runs" / approach.name / "n0_seed0")
        with pytest.raises(SystemExit) as exit_:
            entry(["fit", *args, "--print_config"])
        assert exit_.value.code == 0, (approach.name, capsys.readouterr().err)
        model = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
        assert model["calibration"] == "none" and "{text}" in model["prompt_template"]
        assert ("<|im_start|>" in model["prompt_template"]) == approach.name.endswith("_chat")
    # the overlay it writes is what the label-budget study's zero-shot approaches read
    from src.studies.schema import load_study

    budget = load_study("configs/studies/label_budget.yaml")
    prompting = [a for a in budget.approaches if a.config[0] == "configs/gpt_zeroshot_imdb.yaml"]  # not the ensemble
    assert len(prompting) >= 3 and all(grid.choose.write in a.config for a in prompting)  # its members are such runs


@pytest.mark.parametrize("change, message", [
    ({"templates": ["Review without a slot"]}, "prompt template 'Review without a slot' has 0 {text} slots"),
    ({"calibration_reviews": 0}, "calibration_reviews 1 or more"),
    ({"label_words": []}, "templates, label_words and chat_template need an entry each"),
])
def test_a_grid_that_cannot_run_is_one_line_before_any_prompt_runs(tmp_path, change, message):
    from src.errors import UserError

    grid = yaml.safe_load(open("configs/studies/prompts.yaml")) | change
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    with pytest.raises(UserError, match=message.replace("{", "\\{").replace("}", "\\}")):
        prompts.load_grid(path)
