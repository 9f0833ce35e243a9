import json

import pytest
import yaml

import src.prompts as prompts
import src.study as st


@pytest.mark.slow
@pytest.mark.parametrize("tiny_causal_lm", ["llama"], indirect=True)
def test_the_prompt_grid_scores_every_prompt_under_every_calibration(tiny_causal_lm, imdb_dir, tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({
        "name": "grid", "output_dir": str(tmp_path / "studies"), "doc": str(tmp_path / "results.md"),
        "recipe": "configs/gpt_zeroshot_imdb.yaml", "model_name": tiny_causal_lm, "source": str(imdb_dir),
        "val_size": 16, "eval_size": 12, "bootstrap": 50, "calibration_reviews": 8,
        "templates": ["Review: {text}\nOverall, the movie was", "{text}\nSentiment:"],
        "label_words": [[" bad", " good"]], "chat_template": [False, True],
        "args": ["--data.init_args.max_length", "64", "--data.init_args.cache_dir", str(tmp_path / "cache"),
                 "--trainer.precision", "32-true"]}))
    prompts.main(["run", "--config", str(path)])
    grid = prompts.load_grid(path)
    rows = st.read_rows(grid)
    assert [r["status"] for r in rows] == ["ok"] * 4 and len({r["eval_reviews"] for r in rows}) == 1
    for row in rows:  # every calibration classified the same 12 reviews; `none` is the run's own prediction
        assert set(row["compared"]) == set(prompts.CALIBRATIONS) and row["compared"]["none"] == row["correct"]
        assert all(len(c) == 12 for c in row["compared"].values())
    chat = yaml.safe_load((st.folder(grid) / "runs" / "T2_bad-good_chat" / "n0_seed0" / "config.yaml").read_text())
    assert chat["model"]["init_args"]["prompt_template"].endswith("Sentiment:<|im_end|>\n<|im_start|>assistant\n")
    assert chat["model"]["init_args"]["label_words"] == ["bad", "good"]  # the assistant's answer opens its turn
    assert chat["data"]["init_args"]["prompt_template"] == chat["model"]["init_args"]["prompt_template"]
    table = (tmp_path / "results.md").read_text()
    assert table.count("| T1 |") == 2 and table.count("| T2 |") == 2 and table.count("**") == 2
    assert json.dumps("{text}\nSentiment:")[1:-1] in table  # the prompts are written out under the table


def test_the_shipped_grid_has_16_prompts_that_the_cli_parses(capsys):
    from src.cli import main

    grid = prompts.load_grid("configs/studies/prompts.yaml")
    assert len(grid["approaches"]) == 16 and grid["eval_size"] == 300
    assert st.load_study("configs/studies/label_budget.yaml")["val_size"] == grid["val_size"]  # its reviews
    for approach in grid["approaches"][::5]:
        args = st.command(grid, approach, {"approach": approach["name"], "labels": 0, "seed": 0},
                          st.folder(grid) / "runs" / approach["name"] / "n0_seed0")
        with pytest.raises(SystemExit) as exit_:
            main(["fit", *args, "--print_config"])
        assert exit_.value.code == 0, (approach["name"], capsys.readouterr().err)
        model = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
        assert model["calibration"] == "none" and "{text}" in model["prompt_template"]
        assert ("<|im_start|>" in model["prompt_template"]) == approach["chat"]
