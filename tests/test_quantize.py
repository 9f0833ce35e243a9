"""Quantizers (src/quantize.py): each predicts nearly what full precision predicts, from Python and the CLI; the
registry takes a new one without an edit of `load`, `predict` or `serve`; `auto` picks by this machine."""

import pytest

from src.errors import UserError
from tests.conftest import predict_rows


def test_int8_predicts_nearly_what_full_precision_predicts_from_python_and_the_cli(fitted, tmp_path):
    import torch

    from src.api import load

    run, args = fitted
    texts = ["I loved this movie! It was amazing.", "A dull, lifeless film.", "wonderful", "the plot " * 30]
    full, int8 = load(run, quantize="none"), load(run, quantize="int8")
    layers = [type(m) for m in int8.module.model.modules()]
    assert torch.nn.Linear not in layers and torch.ao.nn.quantized.dynamic.Linear in layers
    assert torch.nn.Linear in [type(m) for m in full.module.model.modules()]  # the full-precision model is untouched
    want, got = full.predict(texts), int8.predict(texts)
    for a, b in zip(want, got):
        assert a["text"] == b["text"] and b["probabilities"] == pytest.approx(a["probabilities"], abs=0.02)
        assert b["probabilities"] != a["probabilities"]  # int8 did run
    ckpt = next((run / "checkpoints").glob("best*.ckpt"))
    rows = predict_rows([*args, "--quantize.how", "int8"], ckpt, texts, tmp_path)
    for a, b in zip(got, rows):
        assert b["probabilities"] == pytest.approx(a["probabilities"], abs=0.01)
    # full precision predicts what the Python API does to 1e-5 (test above): these rows are int8's
    assert max(abs(a["probabilities"][0] - b["probabilities"][0]) for a, b in zip(want, rows)) > 1e-5
    for how, device, problem in (("int4", "cpu", "quantize 'int4' is not known"), ("int8", "cuda", "runs on the CPU")):
        with pytest.raises(UserError, match=problem):
            load(run, device=device, quantize=how)


def test_bf16_weights_predict_nearly_what_full_precision_predicts_and_are_refused_where_bf16_is_emulated(
        fitted, tmp_path, monkeypatch):
    import torch

    import src.quantize
    from src.api import load

    run, args = fitted
    texts = ["I loved this movie! It was amazing.", "A dull, lifeless film.", "wonderful", "the plot " * 30]
    monkeypatch.setattr(src.quantize, "cpu_has_fast_bf16", lambda: False)  # an AVX2 CPU: emulated bf16 is refused
    with pytest.raises(UserError, match="without AVX512-BF16/AMX is many times slower.*fix: quantize='int8'"):
        load(run, quantize="bf16")
    monkeypatch.setattr(src.quantize, "cpu_has_fast_bf16", lambda: True)  # tiny model: fast enough emulated too
    full, bf16 = load(run, quantize="none"), load(run, quantize="bf16")
    assert {p.dtype for p in bf16.module.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in full.module.model.parameters()} == {torch.float32}  # the full-precision model untouched
    want, got = full.predict(texts), bf16.predict(texts)
    for a, b in zip(want, got):
        assert a["text"] == b["text"] and b["probabilities"] == pytest.approx(a["probabilities"], abs=0.02)
    assert any(b["probabilities"] != a["probabilities"] for a, b in zip(want, got))  # bf16 did run
    ckpt = next((run / "checkpoints").glob("best*.ckpt"))
    rows = predict_rows([*args, "--quantize.how", "bf16"], ckpt, texts, tmp_path)
    for a, b in zip(got, rows):
        assert b["probabilities"] == pytest.approx(a["probabilities"], abs=1e-6)  # the same bf16 model as Python's


def test_openvino_predicts_what_full_precision_predicts_and_names_what_it_cannot_run(fitted, tmp_path, monkeypatch):
    import openvino as ov
    import torch

    import src.openvino_model
    import src.quantize
    from src.api import load
    from src.hardware import cpu_has_fast_bf16
    from src.openvino_model import OpenVINOClassifier, check_classifier

    run, args = fitted
    texts = ["I loved this movie! It was amazing.", "A dull, lifeless film.", "wonderful", "the plot " * 30]
    want = load(run, batch_size=3, quantize="none").predict(texts)  # batches of 3: two shapes, one dynamic model
    f32 = load(run, batch_size=3, quantize="none")
    f32.module.model = OpenVINOClassifier(f32.module.model, "f32")  # OpenVINO's own kernels, on any x86 CPU
    assert list(f32.module.model.parameters()) == []  # OpenVINO holds the weights
    for a, b in zip(want, f32.predict(texts)):
        assert a["label"] == b["label"] and b["probabilities"] == pytest.approx(a["probabilities"], abs=1e-5)
    with pytest.raises(UserError, match="runs sequence classifiers .*, not Linear; fix: quantize='bf16'"):
        check_classifier(torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match="'openvino-bf16' runs on the CPU, not on cuda"):
        load(run, device="cuda", quantize="openvino-bf16")
    monkeypatch.setattr(src.quantize, "cpu_has_fast_bf16", lambda: True)  # on an AVX2 CPU too: the install is named
    monkeypatch.setattr(src.openvino_model.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"needs OpenVINO, which is not installed; fix: pip install -e '\.\[openvino"):
        load(run, quantize="openvino-bf16")
    monkeypatch.undo()
    if not cpu_has_fast_bf16():  # OpenVINO's bf16 is emulated (or unsupported) here: refused, as torch's bf16 is
        with pytest.raises(UserError, match="quantize 'openvino-bf16' on a CPU without AVX512-BF16/AMX"):
            load(run, quantize="openvino-bf16")
        return
    bf16 = load(run, quantize="openvino-bf16")
    assert bf16.module.model.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
    got = bf16.predict(texts)
    for a, b in zip(want, got):
        assert a["text"] == b["text"] and b["probabilities"] == pytest.approx(a["probabilities"], abs=0.02)
    assert any(b["probabilities"] != a["probabilities"] for a, b in zip(want, got))  # bf16 did run
    ckpt = next((run / "checkpoints").glob("best*.ckpt"))
    rows = predict_rows([*args, "--trainer.callbacks+=src.callbacks.Quantize",
                         "--trainer.callbacks.how=openvino-bf16"], ckpt, texts, tmp_path)
    for a, b in zip(got, rows):
        assert b["probabilities"] == pytest.approx(a["probabilities"], abs=1e-3)  # the same compiled model as Python's


@pytest.fixture
def registered_half():
    """A quantizer added as one class (fp16 weights), in the registry for one test only."""
    import copy

    import torch

    from src.quantize import QUANTIZERS, Quantizer

    class Half(Quantizer):
        name = "test-fp16"
        help = "weights in float16 (a test's quantizer)"

        def apply(self, model, device):
            return copy.deepcopy(model).to(torch.float16)

    yield Half
    QUANTIZERS.pop(Half.name)


def test_a_quantizer_added_as_one_class_is_used_by_load_predict_and_serve(fitted, tmp_path, registered_half):
    import torch

    from src.api import load
    from src.serve import RunAPI, arguments

    run, args = fitted
    texts = ["I loved this movie! It was amazing.", "A dull, lifeless film."]
    half = load(run, quantize="test-fp16")
    assert {p.dtype for p in half.module.model.parameters()} == {torch.float16}
    want = load(run, quantize="none").predict(texts)
    for a, b in zip(want, half.predict(texts)):
        assert b["probabilities"] == pytest.approx(a["probabilities"], abs=0.02)
    ckpt = next((run / "checkpoints").glob("best*.ckpt"))
    rows = predict_rows([*args, "--quantize.how", "test-fp16"], ckpt, texts, tmp_path)  # the CLI's predict
    assert [r["label"] for r in rows] == [r["label"] for r in want]
    options = arguments().parse_args([str(run), "--quantize", "test-fp16"])  # serve's choices come from the registry
    api = RunAPI(options.run, 100, options.quantize)
    api.setup("cpu")  # what LitServe's worker does
    assert {p.dtype for p in api.predictor.module.model.parameters()} == {torch.float16}
    assert "test-fp16" in arguments().format_help()
    with pytest.raises(UserError, match="quantize 'int4' is not known; fix: one of 'auto', 'none', 'int8'"):
        load(run, quantize="int4")


def test_auto_picks_the_fastest_quantizer_that_runs_here_and_none_keeps_full_precision(fitted, monkeypatch, capsys):
    import torch

    import src.quantize
    from src.api import load
    from src.quantize import pick

    run, _ = fitted
    model = load(run, quantize="none").module.model
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    monkeypatch.setattr(src.quantize, "_told", set())
    for fast_bf16, amx, openvino, want in ((False, False, True, "none"), (True, True, True, "bf16"),
                                           (True, False, True, "openvino-bf16"), (True, False, False, "bf16")):
        monkeypatch.setattr(src.quantize, "cpu_has_fast_bf16", lambda fast=fast_bf16: fast)
        monkeypatch.setattr(src.quantize, "cpu_has_amx", lambda amx=amx: amx)
        monkeypatch.setattr(src.quantize.importlib.util, "find_spec", lambda _, ov=openvino: object() if ov else None)
        assert pick(model, "cpu") == want, (fast_bf16, amx, openvino)
    assert pick(model, "cuda") == "bf16"  # a GPU: bf16 weights
    said = capsys.readouterr().err.splitlines()
    assert said.count("quantize auto: bf16 on cpu; full precision: quantize='none' (predict --quantize.how none, "
                      "serve --quantize none)") == 1  # once per choice
    monkeypatch.undo()
    from src.hardware import cpu_has_fast_bf16

    auto = load(run)  # the default
    dtypes = {p.dtype for p in auto.module.model.parameters()}
    assert dtypes == ({torch.bfloat16} if cpu_has_fast_bf16() else {torch.float32}) or not dtypes  # OpenVINO: none


def test_auto_leaves_language_models_in_full_precision(tiny_causal_lm):
    from transformers import AutoModelForCausalLM

    from src.quantize import pick

    assert pick(AutoModelForCausalLM.from_pretrained(tiny_causal_lm), "cuda") == "none"  # measured on classifiers only
