"""The Python API (src/api.py): `load(run).predict` on a run folder, a checkpoint or an export, and its one-line
errors."""


import pytest
import torch

from src.errors import UserError
from tests.conftest import predict_rows


def test_the_python_api_predicts_what_predict_writes(fitted, tmp_path):
    from src.api import load

    run, args = fitted
    texts = ["I loved this movie! It was amazing.", "A dull, lifeless film.", "wonderful", "the plot " * 30]
    ckpt = next((run / "checkpoints").glob("best*.ckpt"))
    expected = predict_rows(args, ckpt, texts, tmp_path)
    for source in (run, ckpt, run / "export" / "best"):  # a run folder means its best checkpoint
        rows = load(source, batch_size=3, quantize="none").predict(texts)
        assert [r["label_name"] for r in rows] == [r["label_name"] for r in expected]
        for got, want in zip(rows, expected):
            assert got["text"] == want["text"]
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)


def test_the_python_api_names_a_path_without_checkpoints(tmp_path):
    from src.api import load
    from src.errors import UserError

    with pytest.raises(UserError, match="neither a checkpoint, a run folder"):
        load(tmp_path)
    (tmp_path / "broken.ckpt").write_bytes(b"\x00" * 1024)
    for path in ("README.md", tmp_path / "broken.ckpt"):  # a text file, a truncated checkpoint: one line with the fix
        with pytest.raises(UserError, match="cannot be read as a checkpoint .*; fix: pass a run folder"):
            load(path)


def test_the_python_api_takes_a_string_as_one_text_and_nothing_as_nothing(fitted):
    from src.api import load

    model = load(fitted[0])
    (row,) = model.predict("A moving, funny film.")
    assert row["text"] == "A moving, funny film." and model.predict([]) == [] and model.predict(None) == []


def test_the_python_api_names_a_bad_argument_in_one_line(fitted):
    from src.api import load

    with pytest.raises(UserError, match=r"texts\[1\] is int 7, not a string"):
        load(fitted[0]).predict(["A fine film.", 7])
    for blank in ("", "  \n "):  # refused as predict refuses a blank file and serve answers 422
        with pytest.raises(UserError, match=r"texts\[1\] is empty or blank; fix: pass the text to classify"):
            load(fitted[0]).predict(["A fine film.", blank])
    with pytest.raises(UserError, match="batch_size is 0; fix: batch_size=1 or more"):
        load(fitted[0], batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="torch sees no CUDA GPU here; fix: device='cpu'"):
            load(fitted[0], device="cuda")
