"""The LightningModules, one per approach, on one base (base.py: model and tokenizer, optimizer, export and
prediction hooks); a recipe picks one by `class_path`.

To run: python -m src fit --config configs/bert_imdb.yaml
"""

from src.models.base import HFModule
from src.models.causal_lm import CausalLM
from src.models.classifier import SequenceClassifier
from src.models.consistency import ConsistencyClassifier
from src.models.ensemble import Ensemble
from src.models.in_context import InContextClassifier
from src.models.linear_probe import LinearProbe
from src.models.masked_lm import MaskedLM
from src.models.setfit import SetFit
from src.models.zero_shot import ZeroShotClassifier

__all__ = ["HFModule", "SequenceClassifier", "CausalLM", "MaskedLM", "ZeroShotClassifier", "InContextClassifier",
           "LinearProbe", "SetFit", "ConsistencyClassifier", "Ensemble"]
