"""`python -m src serve` as a user runs it: started on 127.0.0.1 against a tiny trained run, real HTTP requests,
concurrent ones and bad ones; the answers equal `predict`'s."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from src.cli import main
from tests.conftest import predict_rows, tiny_args

pytestmark = pytest.mark.slow  # starts a server

PROCESSES: dict[str, subprocess.Popen] = {}
TEXTS = ["I loved this movie! It was amazing.", "A dull, lifeless film.", "wonderful", "the plot " * 30,
         "great acting, boring story", "awful", "superb and moving", "a waste of two hours"]


@pytest.fixture(scope="module")
def run_and_expected(tiny_bert, imdb_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    args = tiny_args(tiny_bert, imdb_dir, tmp, trainer__max_epochs=1)
    main(["fit", *args])
    (run,) = (tmp / "runs" / "bert_imdb").iterdir()
    ckpt = next((run / "checkpoints").glob("best*.ckpt"))  # what serve loads from a run folder
    return run, {row["text"]: row for row in predict_rows(args, ckpt, TEXTS, tmp)}


@pytest.fixture(scope="module")
def server(run_and_expected):
    run, _ = run_and_expected
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "src", "serve", str(run), "--port", str(port), "--max_chars", "2000",
                             "--max_payload_mb", "0.01", "--quantize", "none"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        PROCESSES["server"] = proc
        yield url
    finally:  # the server and its worker processes: one process group
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):  # none left: the group is gone
                os.killpg(proc.pid, signal.SIGKILL)


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/predict", data=body, headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def assert_same(row: dict, expected: dict) -> None:
    assert row["label_name"] == expected["label_name"]
    assert row["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)


def test_one_request_answers_what_predict_writes(server, run_and_expected):
    _, expected = run_and_expected
    status, row = post(server, json.dumps({"text": TEXTS[0]}).encode())
    assert status == 200
    assert_same(row, expected[TEXTS[0]])


def test_concurrent_requests_are_answered_each_with_its_own_row(server, run_and_expected):
    _, expected = run_and_expected
    texts = TEXTS * 3
    with ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: post(server, json.dumps({"text": t}).encode()), texts))
    for text, (status, row) in zip(texts, answers):
        assert status == 200 and row["text"] == text
        assert_same(row, expected[text])


SEND = 'send {"text": "<review>"} as content-type: application/json'


@pytest.mark.parametrize("body, status, reason", [
    (b"not json", 400, f"the body is not valid JSON (Expecting value at character 0); {SEND}"),
    (json.dumps({"review": "x"}).encode(), 400, f"text: Field required; {SEND}"),
    (json.dumps({"text": 5}).encode(), 400, f"text: Input should be a valid string; {SEND}"),
    (json.dumps(["a list"]).encode(), 400, f"the body must be a JSON object; {SEND}"),
    ((json.dumps({"text": "x"}).encode(), "text/plain"), 400, f"the body must be a JSON object; {SEND}"),
    (json.dumps({"text": "long " * 1000}).encode(), 413, "at most 2000 are accepted"),
    (json.dumps({"text": ""}).encode(), 422, '"text" is empty or blank; send the review to classify'),
    (json.dumps({"text": " \n\t "}).encode(), 422, '"text" is empty or blank'),
    (json.dumps({"text": "x" * 20_000}).encode(), 413,  # over --max_payload_mb, which the reason names
     "the request body is over 10485 bytes (--max_payload_mb 0.01); send at most 2000 characters of text"),
])
def test_bad_requests_get_a_4xx_with_a_reason_and_the_server_keeps_serving(server, run_and_expected, body, status,
                                                                          reason):
    got, answer = post(server, *body) if isinstance(body, tuple) else post(server, body)
    assert got == status and reason in str(answer.get("detail")) and "\n" not in str(answer.get("detail")), answer
    assert post(server, json.dumps({"text": TEXTS[2]}).encode())[0] == 200  # still serving


def test_the_default_payload_limit_holds_max_chars_of_emoji():
    from src.serve import payload_limit

    body = json.dumps({"text": "\U0001F600" * 100_000}).encode()  # 1.2 MB escaped: over the old 1 MiB
    assert len(body) <= payload_limit(100_000, None) and payload_limit(10, None) == 2**20
    assert payload_limit(100_000, 0.5) == 2**19


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def running(pid: int) -> bool:
    try:
        return "(zombie)" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def server_processes() -> dict[int, str]:
    """pid -> its memory maps, for every process of the server's process group."""
    group = PROCESSES["server"].pid
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == group:  # field 5: the process group
                found[int(stat.parent.name)] = (stat.parent / "maps").read_text()
    return found


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc")
def test_only_the_inference_worker_loads_torch(server):
    processes = server_processes()  # the server, LitServe's API server, its queue manager, the worker
    with_torch = [pid for pid, maps in processes.items() if "libtorch" in maps]
    assert len(processes) >= 3 and len(with_torch) == 1, (len(processes), with_torch)


def test_openvino_on_a_run_that_is_not_a_classifier_is_refused_before_the_server_starts(run_and_expected, tiny_bert,
                                                                                       imdb_dir, tmp_path, monkeypatch):
    import src.quantize
    from src.serve import check_problem

    monkeypatch.setattr(src.quantize, "cpu_has_fast_bf16", lambda: True)  # the check, on any CPU
    args = tiny_args(tiny_bert, imdb_dir, tmp_path, "configs/mlm_imdb.yaml", data__block_size=32, trainer__max_steps=2)
    main(["fit", *args, "--trainer.callbacks.init_args.output_dir", str(tmp_path / "export")])  # HFExport's, not ./
    (mlm_run,) = (tmp_path / "runs" / "mlm_imdb").iterdir()
    problem = check_problem(str(mlm_run), "openvino-bf16", "cpu")
    assert problem.startswith("quantize 'openvino-bf16' runs sequence classifiers") and "not BertForMaskedLM" in problem
    assert check_problem(str(run_and_expected[0]), "openvino-bf16", "cpu") is None


def test_sigterm_ends_the_server_and_its_worker_processes(server):  # last: it stops the module's server
    proc = PROCESSES["server"]
    workers = children(proc.pid)
    assert workers  # LitServe's inference and API-server processes
    os.kill(proc.pid, signal.SIGTERM)  # as `kill` or a container stop does
    assert proc.wait(timeout=30) == -signal.SIGTERM  # it ends as the signal ends a process
    for _ in range(40):
        if not any(running(w) for w in workers):
            break
        time.sleep(0.25)
    assert [w for w in workers if running(w)] == []


def test_cpu_only_quantization_on_a_gpu_is_refused_in_one_line_before_anything_starts(tmp_path):
    from src.errors import UserError
    from src.quantize import choices
    from src.serve import arguments, main

    for how in ("int8", "openvino-bf16"):
        with pytest.raises(UserError, match=f"quantize '{how}' runs on the CPU, not on cuda; fix: leave quantize out"):
            main([str(tmp_path), "--accelerator", "cuda", "--quantize", how])
    # serve's choices are the registry's (read without importing torch)
    assert f"{{{','.join(choices())}}}" in arguments().format_usage()


def test_bf16_where_the_cpu_emulates_it_is_refused_before_the_server_starts(run_and_expected, monkeypatch):
    import src.quantize
    from src.serve import check_problem

    run = str(run_and_expected[0])
    monkeypatch.setattr(src.quantize, "cpu_has_fast_bf16", lambda: False)
    assert "quantize 'bf16' on a CPU without AVX512-BF16/AMX" in check_problem(run, "bf16", "cpu")
    assert check_problem(run, "bf16", "cuda") is None  # a GPU runs bf16 natively
    monkeypatch.setattr(src.quantize, "cpu_has_fast_bf16", lambda: True)
    assert check_problem(run, "bf16", "cpu") is None


@pytest.mark.parametrize("option, message", [
    (["--max_batch_size", "0"], "max_batch_size is 0; fix: --max_batch_size 1 or more"),
    (["--port", "70000"], "--port is 70000; fix: a port from 1024 to 65535"),
    (["--max_chars", "0"], "max_chars is 0; fix: --max_chars 1 or more"),
    (["--max_payload_mb", "0"], "--max_payload_mb is 0.0; fix: a size above 0, or leave it out"),
])
def test_serve_options_out_of_range_are_refused_in_one_line_before_anything_loads(tmp_path, option, message):
    from src.errors import UserError
    from src.serve import main

    with pytest.raises(UserError, match=message):
        main([str(tmp_path), *option])  # the folder is not a run: the options are checked first


def test_serve_options_are_not_abbreviated(tmp_path):
    from src.errors import UserError
    from src.serve import main

    with pytest.raises(UserError, match=r"unrecognized arguments: --workers 2; fix: did you mean --workers_per_device"):
        main([str(tmp_path), "--workers", "2"])


def test_a_busy_port_is_one_line_before_the_model_loads(run_and_expected):
    run, _ = run_and_expected
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "src", "serve", str(run), "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
        seconds = time.perf_counter() - start
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: --port {port}: 127.0.0.1:{port} cannot be listened on (Address already in "
                                  "use); fix: --port N, or stop the process on it")
    assert seconds < 10  # the model would take longer: about 2 s here, the imports of the server


@pytest.mark.parametrize("argv, message", [
    (["serve", "run", "--prot", "8002"],
     "unrecognized arguments: --prot 8002; fix: did you mean --port? see python -m src serve --help"),
    (["serve", "run", "--port", "abc"],
     "argument --port: invalid int value: 'abc'; fix: see python -m src serve --help"),
    (["study", "run"], "the following arguments are required: --config; fix: see python -m src study run --help"),
])
def test_argparse_mistakes_are_one_line(argv, message, capsys):
    from tests.conftest import entry

    with pytest.raises(SystemExit) as exit_:
        entry(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err == f"error: {message}\n"
