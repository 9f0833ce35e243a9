"""Zero-shot accuracy by input length: the same reviews whole and cut to their first 15 and 40 words, under the
`unlabelled` calibration with one offset (fitted on whole training reviews) and by length (`calibration_lengths`:
fitted on training reviews cut to 16, 32, 64 and 128 tokens as well). One scoring pass per length; both calibrations
apply to the same scores, so the comparison is paired. Choose on `--split validation`; report `--split test` once.

To run: python -m src fit --config configs/gpt_zeroshot_imdb.yaml --model.init_args.calibration_lengths '[16,32,64,128]'
        python benchmarks/zero_shot_lengths.py --ckpt outputs/gpt_zeroshot_imdb/version_0/checkpoints/last.ckpt
        -> outputs/bench/zero_shot_lengths_<split>.json and the table in docs/language_models.md
"""

import argparse
import datetime
import hashlib
import json
from pathlib import Path

import torch

from src.api import load
from src.data.selection import evaluation_reviews
from src.doc_tables import write_between_markers
from src.hardware import cpu_has_fast_bf16
from src.stats import paired_difference

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "language_models.md"


@torch.inference_mode()
def scores(predictor, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw class log-scores and review lengths in tokens, in input order."""
    module, ids = predictor.module, predictor.data.predict_ids(texts)
    raw, tokens = torch.zeros(len(texts), len(module.label_ids)), torch.zeros(len(texts), dtype=torch.long)
    order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
    for start in range(0, len(order), predictor.batch_size):
        chosen = order[start : start + predictor.batch_size]
        batch = predictor.collate([{"input_ids": ids[i]} for i in chosen])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_fast_bf16()):
            raw[chosen] = module(batch).float()
        tokens[chosen] = module.review_tokens(batch["attention_mask"])
    return raw, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a zero-shot checkpoint fitted with calibration_lengths")
    parser.add_argument("--split", default="validation", choices=["validation", "test"])
    parser.add_argument("--n", type=int, default=200, help="class-balanced reviews of the split")
    parser.add_argument("--words", type=int, nargs="+", default=[15, 40, 0], help="cut lengths in words (0: whole)")
    args = parser.parse_args()

    predictor = load(args.ckpt, batch_size=8)
    module = predictor.module
    if not module.hparams.calibration_lengths:
        raise SystemExit(f"{args.ckpt} was fitted without calibration_lengths: fit again as 'To run' says")
    reviews = evaluation_reviews(None, args.split, args.n)
    labels = torch.tensor(reviews.labels)
    rows = []
    for words in args.words:
        texts = [" ".join(t.split()[:words]) if words else t for t in reviews.texts]
        raw, tokens = scores(predictor, texts)
        correct = {}
        for name, calibrated in (("one offset", module.calibrate(raw)),
                                 ("by length", module.calibrate(raw, review_tokens=tokens))):
            predicted = calibrated.argmax(-1)
            correct[name] = (predicted == labels).float().tolist()
            rows.append({"words": words or "whole", "calibration": name, "accuracy": sum(correct[name]) / len(texts),
                         "positive_share": predicted.float().mean().item(), "median_tokens": tokens.median().item()})
        mean, low, high = paired_difference({0: correct["by length"]}, {0: correct["one offset"]}, draws=2000)
        rows[-1]["difference"] = {"mean": mean, "low": low, "high": high}
    digest = hashlib.sha256(json.dumps([reviews.texts, reviews.labels]).encode()).hexdigest()
    meta = {"ckpt": args.ckpt, "split": args.split, "n": args.n, "lengths": module.hparams.calibration_lengths,
            "reviews_hash": digest, "date": datetime.date.today().isoformat()}
    out = ROOT / "outputs" / "bench" / f"zero_shot_lengths_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(write_table(meta, rows), "\n->", out, DOC)


def write_table(meta: dict, rows: list[dict]) -> str:
    lines = [f"{meta['n']} class-balanced {meta['split']} reviews (hash {meta['reviews_hash'][:12]}), calibration "
             f"lengths {meta['lengths']} tokens, {meta['date']}; `python benchmarks/zero_shot_lengths.py --split "
             f"{meta['split']} --ckpt {meta['ckpt']}`.", "",
             "| input | median review tokens | one offset: accuracy | positive | by length: accuracy | positive | "
             "by length − one offset (paired 95% interval) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for one, by in zip(rows[::2], rows[1::2]):
        d = by["difference"]
        what = f"{by['words']} words" if by["words"] != "whole" else "whole review"
        lines.append(f"| {what} | {by['median_tokens']:.0f} | {100 * one['accuracy']:.1f}% | "
                     f"{100 * one['positive_share']:.0f}% | {100 * by['accuracy']:.1f}% | "
                     f"{100 * by['positive_share']:.0f}% | {100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, "
                     f"{100 * d['high']:+.1f}] |")
    table = "\n".join(lines)
    write_between_markers(DOC, f"zero_shot_lengths_{meta['split']}", table,
                          heading=f"### Zero-shot by input length ({meta['split']} reviews)")
    return table


if __name__ == "__main__":
    main()
