"""The command line: LightningCLI with the LightningModule chosen by `class_path` in the YAML.

To run: python -m src fit --config configs/bert_imdb.yaml
        python -m src predict --config configs/bert_imdb.yaml --ckpt_path <checkpoint>
"""

import sys

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities import rank_zero_warn

from src.data import IMDBDataModule
from src.errors import UserError


def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls run natively only with AVX512-BF16 or AMX; elsewhere autocast emulates them slowly."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


class CLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # The data module tokenizes with the model's own tokenizer.
        parser.link_arguments("model.init_args.model_name", "data.tokenizer")

    def before_instantiate_classes(self) -> None:
        trainer = (self.config[self.subcommand] if self.subcommand else self.config).trainer
        on_cpu = trainer.accelerator == "cpu" or (trainer.accelerator == "auto" and not torch.cuda.is_available())
        if on_cpu and str(trainer.precision).startswith("bf16") and not cpu_has_fast_bf16():
            # Measured on an AVX2-only CPU: bf16 autocast made a MiniLM training step ~20x slower than fp32.
            rank_zero_warn(
                f"precision {trainer.precision} on a CPU without AVX512-BF16/AMX is many times slower than "
                "fp32, so this run uses 32-true (GPUs and bf16 CPUs keep the configured precision)"
            )
            trainer.precision = "32-true"


def main(args: list[str] | None = None) -> CLI:
    try:
        return CLI(
            L.LightningModule,
            IMDBDataModule,
            subclass_mode_model=True,
            save_config_kwargs={"overwrite": True},
            args=args,
        )
    except Exception as err:
        user_error = _find_user_error(err)
        if user_error is None:
            raise
        print(f"error: {user_error}", file=sys.stderr)
        sys.exit(2)


def _find_user_error(err: BaseException | None) -> UserError | None:
    """jsonargparse wraps errors raised while instantiating classes: look down the cause chain."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        err = err.__cause__ or err.__context__
    return None
