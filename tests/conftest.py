"""Shared fixtures: a tiny random-init BERT (2 layers, hidden 32) and a tiny synthetic IMDB folder.

Tests never download: the hub is switched off before transformers or datasets are imported.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import random  # noqa: E402
from pathlib import Path  # noqa: E402

import datasets  # noqa: E402
import pytest  # noqa: E402
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification  # noqa: E402

from src.data.sources import LOCAL_MIRROR  # noqa: E402
from src.pretrained import packaged_path  # noqa: E402

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def fit_ready(dm):
    """A data module after `prepare_data` and `setup("fit")`, as Lightning leaves it before training."""
    dm.prepare_data()
    dm.setup("fit")
    return dm


def packed_data(cls, tokenizer: str, source, tmp_path, **kwargs):
    """A causal- or masked-LM data module over `source` in blocks of 32 tokens, ready to train."""
    kwargs = {"block_size": 32, "val_size": 16, "batch_size": 4, "cache_dir": str(tmp_path / "c"), **kwargs}
    return fit_ready(cls(tokenizer=tokenizer, source=str(source), **kwargs))


def predict_rows(args: list[str], ckpt, texts: list[str], out: Path) -> list[dict]:
    """`python -m src predict` of `texts` from `ckpt` (after the tiny-run `args`), written to `out`, read back; in full
    precision unless `args` ask for a quantizer (`--quantize.how`)."""
    import json

    from src.cli import main

    main(["predict", "--quantize.how", "none", *args, "--ckpt_path", str(ckpt), "--data.predict_texts",
          json.dumps(texts), "--trainer.callbacks+=src.callbacks.PredictionWriter",
          f"--trainer.callbacks.init_args.output_dir={out}"])
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def tiny_args(model: str, source, root, config: str = "configs/bert_imdb.yaml", **overrides) -> list[str]:
    """The command line of a tiny run of `config` (after the subcommand): a tiny model, tiny data, everything
    written under `root`, no progress bar; `overrides` replace or add options (`trainer__max_epochs=2` is
    `--trainer.max_epochs 2`; None drops an option)."""
    options = {
        "model.init_args.model_name": model, "data.source": str(source), "data.val_size": "16",
        "data.cache_dir": str(Path(root) / "cache"), "trainer.logger.init_args.save_dir": str(Path(root) / "runs"),
        "trainer.enable_progress_bar": "false", "trainer.log_every_n_steps": "1",
        # fp32 everywhere: a CPU with AVX512-BF16 would otherwise run the recipes' bf16-mixed, and the tests compare
        # numbers (DDP against one process, predict against pipeline) that bf16 rounds apart.
        "trainer.precision": "32-true",
    }
    if "bert_imdb" in config:  # the classifier recipes: all 80 training reviews, short, one validation per epoch
        options |= {"data.limit_train": "null", "data.max_length": "64", "trainer.val_check_interval": "1.0"}
    options |= {key.replace("__", "."): value for key, value in overrides.items()}
    args = ["--config", config]
    for key, value in options.items():
        if value is not None:
            args += [f"--{key}", str(value)]
    return args
POSITIVE = "great wonderful loved superb moving brilliant fun".split()
NEGATIVE = "awful boring dull terrible waste bad lifeless".split()
FILLER = "the movie film plot actor scene story director and it was a of".split()


def make_review(rng: random.Random, label: int) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(4, 60))]
    for _ in range(3):
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
    return " ".join(words) + " <br /><br />" + rng.choice(FILLER)


def make_split(n: int, seed: int, labelled: bool = True) -> dict:
    rng = random.Random(seed)
    labels = sorted(i % 2 for i in range(n)) if labelled else [-1] * n  # ordered by label, like the release
    return {"text": [make_review(rng, max(lab, 0)) for lab in labels], "label": labels}


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A random-init 2-layer BERT classifier with the packaged MiniLM's (uncased WordPiece) tokenizer."""
    path = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_path(MINILM)))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=2,
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def imdb_dir(tmp_path_factory) -> Path:
    """A folder in the shared mirror's layout: train.parquet (96 labelled) and unsupervised.parquet, no test."""
    path = tmp_path_factory.mktemp("imdb")
    datasets.Dataset.from_dict(make_split(96, seed=0)).to_parquet(str(path / "train.parquet"))
    datasets.Dataset.from_dict(make_split(16, seed=1, labelled=False)).to_parquet(str(path / "unsupervised.parquet"))
    return path


@pytest.fixture(scope="session")
def shared_imdb() -> Path:
    if not LOCAL_MIRROR.is_dir():
        pytest.skip(f"shared IMDB mirror not found at {LOCAL_MIRROR}")
    return LOCAL_MIRROR


SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="session")
def bpe_tokenizer_dir(tmp_path_factory) -> str:
    """The packaged SmolLM2's byte-level BPE tokenizer (with its chat template), saved as a folder."""
    from src.pretrained import load_tokenizer

    path = tmp_path_factory.mktemp("bpe_tokenizer")
    load_tokenizer(SMOLLM).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny_causal_lm(request, bpe_tokenizer_dir, tmp_path_factory) -> str:
    """A random-init 2-layer GPT-2 or Llama (hidden 32) with a real BPE tokenizer, as a local folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(bpe_tokenizer_dir)
    common = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
              "eos_token_id": tokenizer.eos_token_id}
    if request.param == "gpt2":
        config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=512, **common)
    else:
        config = LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                             num_key_value_heads=2, max_position_embeddings=512, **common)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp(f"tiny_{request.param}")
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def imdb_test_dir(tmp_path_factory) -> Path:
    """The tiny folder with a test split too (32 reviews), into which reviews of the training splits were copied,
    and one test review twice: the evaluation reviews must leave all of those out."""
    path = tmp_path_factory.mktemp("imdb_test")
    train, unsup, test = make_split(96, seed=0), make_split(16, seed=1, labelled=False), make_split(32, seed=2)
    test["text"][0], test["text"][1] = train["text"][5], unsup["text"][3]  # in a training split as well
    test["text"][20] = test["text"][21]  # one review twice
    for name, split in (("train", train), ("unsupervised", unsup), ("test", test)):
        datasets.Dataset.from_dict(split).to_parquet(str(path / f"{name}.parquet"))
    return path


def entry(argv: list[str]) -> None:
    """The command line as a user runs it, `python -m src <argv>`: a `UserError` exits with its one line."""
    from src.__main__ import main

    main(argv)


@pytest.fixture(scope="module")
def fitted(tiny_bert, imdb_dir, tmp_path_factory) -> tuple[Path, list[str]]:
    """A tiny classifier fitted through the CLI, once per test module: its run folder and its arguments."""
    tmp = tmp_path_factory.mktemp("cli")
    args = tiny_args(tiny_bert, imdb_dir, tmp)
    from src.cli import main

    main(["fit", *args, "--trainer.max_epochs", "2"])
    (run,) = (tmp / "runs" / "bert_imdb").iterdir()
    return run, args
