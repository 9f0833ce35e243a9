"""Serve a trained run over HTTP with LitServe: `POST /predict` with `{"text": "<review>"}` answers the row `predict`
writes for it (label, label name and probabilities for a classifier; the generation for a causal LM). Concurrent
requests are batched. A bad request gets a 4xx with a one-line reason, and the server keeps serving.

To run: python -m src serve outputs/bert_imdb/version_0 --port 8000
        curl -s localhost:8000/predict -H 'content-type: application/json' -d '{"text": "A moving, funny film."}'
"""

import multiprocessing
import os
import platform
import signal
import socket
from concurrent.futures import ProcessPoolExecutor

import litserve as ls
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from litserve.connector import check_cuda_with_nvidia_smi
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from src import quantize as quantization
from src.errors import ArgumentParser, UserError, check_ranges

# torch, transformers and the model are imported by the inference worker alone (RunAPI.setup): the server's other
# processes (this one, LitServe's API server and its queue manager) are forked from this one, so anything imported
# here is paid for in each (measured: 2.0 GB resident in all when this module imported src.api, 0.8 GB since).


class Review(BaseModel):
    """The request body: one text (a review for a classifier, a prompt for a causal LM)."""

    text: str


SEND = 'send {"text": "<review>"} as content-type: application/json'


async def one_line_error(request: Request, err: RequestValidationError) -> JSONResponse:
    """FastAPI's validation errors (not JSON, not an object, no `text`, not a string) as a 400 with one line."""
    first = err.errors()[0]
    if first["type"] == "json_invalid":
        at = first["loc"][-1] if isinstance(first["loc"][-1], int) else "?"
        reason = f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'decode error')} at character {at})"
    elif first["loc"][1:] in ((), (0,)):  # the body itself: a list, a string, or JSON sent as text/plain
        reason = "the body must be a JSON object"
    else:
        reason = f'{".".join(str(part) for part in first["loc"][1:])}: {first["msg"]}'
    return JSONResponse({"detail": f"{reason}; {SEND}"}, status_code=400)


def payload_limit(max_chars: int, max_payload_mb: float | None) -> int:
    """Bytes a request body may hold: by default room for `max_chars` characters of any kind, JSON-escaped (an emoji
    is 12 bytes as `\\ud83d\\ude00`), at least 1 MiB."""
    return int(max_payload_mb * 2**20) if max_payload_mb is not None else max(2**20, 12 * max_chars + 4096)


def too_large(limit: int, max_chars: int):
    """LitServe's 413 for a body over the limit ("Payload too large"), as one line naming the limit."""

    async def handler(request: Request, err: StarletteHTTPException) -> JSONResponse:
        detail = err.detail
        if err.status_code == 413 and detail == "Payload too large":
            detail = (f"the request body is over {limit} bytes (--max_payload_mb {limit / 2**20:.2f}); send at most "
                      f"{max_chars} characters of text")
        return JSONResponse({"detail": detail}, status_code=err.status_code, headers=err.headers)

    return handler


class RunAPI(ls.LitAPI):
    """One text per request; LitServe gathers concurrent requests into one `predict` call."""

    def __init__(self, run: str, max_chars: int, quantize: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.run, self.max_chars, self.quantize = run, max_chars, quantize

    def setup(self, device: str) -> None:
        from src.api import load

        self.predictor = load(self.run, device=device, quantize=self.quantize)

    def decode_request(self, request: Review) -> str:
        text = request.text  # FastAPI checked the body's shape (see one_line_error)
        if not text.strip():  # a client's bug: an empty review would be classified all the same
            raise HTTPException(422, '"text" is empty or blank; send the review to classify')
        if len(text) > self.max_chars:
            raise HTTPException(413, f'"text" has {len(text)} characters; at most {self.max_chars} are accepted')
        return text

    def predict(self, texts: list[str]) -> list[dict]:
        return self.predictor.predict(texts)

    def encode_response(self, row: dict) -> dict:
        return row


def _stop_workers_too(signum: int, frame) -> None:
    """On SIGTERM (`kill`, a container stop) end LitServe's worker processes as well (they outlive their parent),
    then end as the signal would have."""
    for child in multiprocessing.active_children():
        child.terminate()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def arguments() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m src serve", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run folder (its best checkpoint), a checkpoint file or an export folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--accelerator", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--max_batch_size", type=int, default=64,
                        help="most concurrent requests in one batch (sorted by length into batches of 32 inside)")
    parser.add_argument("--batch_timeout", type=float, default=0.05, help="seconds to wait for a batch to fill")
    parser.add_argument("--workers_per_device", type=int, default=1,
                        help="inference processes per device, each with its own copy of the model (about 0.7 GB "
                             "resident each for MiniLM on a CPU); more serve more requests at once on many cores")
    parser.add_argument("--quantize", choices=quantization.choices(), default=quantization.AUTO,
                        help="auto: the fastest quantizer this machine runs that keeps a classifier's labels (bf16 "
                             "with AMX, openvino-bf16 with AVX512-BF16 alone, none elsewhere); none: full precision; "
                             + "; ".join(f"{name}: {cls.help}" for name, cls in quantization.QUANTIZERS.items()))
    parser.add_argument("--max_chars", type=int, default=100_000, help="longest text accepted")
    parser.add_argument("--max_payload_mb", type=float, default=None,
                        help="largest request body accepted (default: room for --max_chars characters of any kind)")
    return parser


def port_free(host: str, port: int) -> None:
    """A `UserError` when `host:port` cannot be listened on (another server holds it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closed server's port is free
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UserError(f"--port {port}: {host}:{port} cannot be listened on ({err.strerror}); fix: --port N, or "
                            f"stop the process on it") from None


def accelerator(name: str) -> str:
    """`auto` resolved here: LitServe's own `auto` imports torch into this process (to look for Apple's MPS) and picks
    CUDA only where torch is already imported."""
    if name != "auto":
        return name
    if check_cuda_with_nvidia_smi() > 0:
        return "cuda"
    return "mps" if platform.system() == "Darwin" and platform.machine() == "arm64" else "cpu"


def check_problem(run: str, quantize: str = "auto", device: str = "cpu") -> str | None:
    """What is wrong with `run` or with `quantize` on `device` (a one-line `UserError`), or None: run in a child
    process, which imports torch."""
    from src.api import check, load

    try:
        quantization.check(quantize, device)
        check(run)
        chosen = quantization.quantizer(quantize) if quantize != quantization.AUTO else None
        # Which model a run holds shows once it is built (a few seconds, once): only for a quantizer that cares.
        if chosen is not None and type(chosen).check_model is not quantization.Quantizer.check_model:
            chosen.check_model(load(run, quantize="none").module.model)
    except UserError as err:
        return str(err)
    return None


def main(args: list[str] | None = None) -> None:
    a = arguments().parse_args(args)
    # LitServe checks these too, but with a traceback, after the model is loaded.
    check_ranges("", *[(name, getattr(a, name), getattr(a, name) >= low, f"{low} or more")
                       for name, low in (("max_batch_size", 1), ("workers_per_device", 1), ("max_chars", 1),
                                         ("batch_timeout", 0))])
    if a.max_payload_mb is not None and not a.max_payload_mb > 0:
        raise UserError(f"--max_payload_mb is {a.max_payload_mb}; fix: a size above 0, or leave it out")
    if not 1024 <= a.port <= 65535:
        raise UserError(f"--port is {a.port}; fix: a port from 1024 to 65535 (LitServe's range), e.g. --port 8000")
    port_free(a.host, a.port)  # before the model loads: uvicorn would find out after it, with a traceback
    device = accelerator(a.accelerator)
    if device != "cpu":  # on a CPU the check needs torch: the child below makes it
        quantization.check(a.quantize, device)
    # Fail here, with the one-line error (python -m src prints it), not in a worker process; checked in a child so
    # that this process stays free of torch (see the note at the imports).
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        problem = child.submit(check_problem, a.run, a.quantize, device).result()
    if problem:
        raise UserError(problem)
    api = RunAPI(a.run, a.max_chars, a.quantize, max_batch_size=a.max_batch_size, batch_timeout=a.batch_timeout)
    limit = payload_limit(a.max_chars, a.max_payload_mb)
    server = ls.LitServer(api, accelerator=device, max_payload_size=limit,
                          workers_per_device=a.workers_per_device)
    server.app.add_exception_handler(RequestValidationError, one_line_error)
    server.app.add_exception_handler(StarletteHTTPException, too_large(limit, a.max_chars))
    signal.signal(signal.SIGTERM, _stop_workers_too)
    server.run(host=a.host, port=a.port, generate_client_file=False, num_api_servers=1)

