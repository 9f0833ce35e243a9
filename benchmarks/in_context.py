"""In-context and distilled classification's cost per review against zero-shot's, side by side: the packaged
SmolLM2 scores the same held-out reviews with no demonstrations (zero-shot), with k = 4 and k = 8 demonstrations held
as a KV-cache prefix (`InContextClassifier`, as the label-budget study runs it), and, for reference, with the 4
demonstrations written into every prompt (re-encoded for each review); and the distilled student, a MiniLM classifier
(what the study's `distilled` rows train; its weights do not change its speed), classifies them. Same truncation,
bf16 autocast where the CPU has it; arms alternate round by round, medians.

To run: .venv/bin/python benchmarks/in_context.py   (writes outputs/bench/in_context.json)
"""

import argparse

import torch
from timing import alternate, write  # benchmarks/timing.py, beside this script

from src.api import Predictor
from src.data import ClassificationDataModule
from src.data.selection import demonstrations, evaluation_reviews
from src.hardware import cpu_has_fast_bf16
from src.models import InContextClassifier, SequenceClassifier, ZeroShotClassifier

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
STUDENT = "sentence-transformers/all-MiniLM-L6-v2"
TEMPLATE = "Review: {text}\nOverall, the movie was"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=48, help="held-out reviews scored per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--arms", nargs="+", help="only the arms whose names start with these (e.g. zero-shot student)")
    args = parser.parse_args()
    texts = evaluation_reviews(None, "validation", args.n).texts  # held-out reviews: speed, not accuracy
    common = {"model_name": MODEL, "prompt_template": TEMPLATE, "calibration": "none"}  # calibration costs nothing

    def predictor(module, template: str = TEMPLATE, max_length: int = 256) -> Predictor:
        data = ClassificationDataModule(tokenizer=MODEL, prompt_template=template, max_length=max_length)
        return Predictor(module, data, batch_size=args.batch_size)

    zero = ZeroShotClassifier(**common)
    arms, prefix_tokens = {"zero-shot": predictor(zero)}, {}
    for k in (4, 8):
        demos = demonstrations(None, k, seed=0)
        module = InContextClassifier(demonstrations=demos.texts, demonstration_labels=demos.labels, **common)
        module.model = zero.model  # the same weights: only the prompt differs
        arms[f"in-context k={k}, KV-cache prefix"] = predictor(module)
        prefix_tokens[k] = len(module.prefix_ids())
        if k == 4:  # the demonstrations inside every prompt instead: what the cache saves
            written = module.tokenizer.decode(module.prefix_ids())
            arms["in-context k=4, no cache (demonstrations in every prompt)"] = predictor(
                zero, written + TEMPLATE, 256 + prefix_tokens[4])
    student = SequenceClassifier(model_name=STUDENT)
    arms["distilled student (MiniLM classifier)"] = Predictor(
        student, ClassificationDataModule(tokenizer=STUDENT, max_length=256), batch_size=args.batch_size)
    if args.arms:
        arms = {name: p for name, p in arms.items() if any(name.startswith(a) for a in args.arms)}
    bf16 = cpu_has_fast_bf16()

    def scoring(p: Predictor):
        def run() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                p.predict(texts)
        return run

    times = alternate({arm: scoring(p) for arm, p in arms.items()}, args.rounds)
    write("outputs/bench/in_context.json", times, "zero-shot", reviews=args.n, batch_size=args.batch_size,
          bf16=bf16, prefix_tokens=prefix_tokens, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
