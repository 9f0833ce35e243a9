"""Callbacks, one file per job; a recipe lists them by `class_path` (e.g. `src.callbacks.ResumeCheckpoint`).

- checkpointing.py: the resume checkpoint (steps, epoch ends, SIGTERM; RNG state), the non-finite-loss stop
- throughput.py: samples/s, tokens/s, TFLOP/s and MFU
- progress.py: progress as plain lines in a log file; a time-budgeted fit's bar that shows the budget
- reports.py: confusion matrix, precision-recall curve, worst mistakes, generation samples in TensorBoard
- predictions.py: predictions written to the run folder
- export.py: Hugging Face folders after fit
- overview.py: TensorBoard's first screen, the `Overview` group (loss, accuracy, learning rate)
- summary.py: the model's table at a fit's start; hparams with final metrics, and the closing message of a fit
- time_budget.py: a fit that spends a wall-clock budget (schedule by time spent, stop in time for the last validation)
- quantize.py: predict in dynamic int8 on a CPU, or with bf16 weights

To run: python -m src fit --config configs/bert_imdb.yaml
"""

from src.callbacks.checkpointing import ResumeCheckpoint, StopOnNonFiniteLoss
from src.callbacks.export import HFExport
from src.callbacks.overview import Overview
from src.callbacks.predictions import PredictionWriter
from src.callbacks.progress import BudgetProgressBar, ProgressLines
from src.callbacks.quantize import DynamicInt8, Quantize
from src.callbacks.reports import ClassificationReport, GenerationSample
from src.callbacks.summary import ModelTable, RunSummary
from src.callbacks.throughput import Throughput
from src.callbacks.time_budget import TimeBudget

__all__ = ["ResumeCheckpoint", "StopOnNonFiniteLoss", "HFExport", "PredictionWriter", "ClassificationReport",
           "GenerationSample", "ModelTable", "ProgressLines", "BudgetProgressBar", "RunSummary", "Throughput",
           "TimeBudget", "DynamicInt8", "Quantize", "Overview"]
