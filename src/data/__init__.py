"""IMDB reviews as LightningDataModules, one per task; a recipe picks one by `class_path`.

- sources.py: hub id, folder of split files, or aclImdb/ tree -> `text` and `label` columns
- text.py: cleaning, truncation, prompt and chat templates, packing into blocks
- sampler.py: the length-grouped training order, resumable mid-epoch
- collate.py: dynamic padding and masked-LM masking
- base.py: split, tokenized cache, loaders (ReviewDataModule)
- classification.py, packed.py, causal_lm.py, masked_lm.py: the tasks

To run: python -m src fit --config configs/bert_imdb.yaml
"""

from src.data.base import ReviewDataModule
from src.data.causal_lm import CausalLMDataModule
from src.data.classification import ClassificationDataModule
from src.data.masked_lm import MaskedLMDataModule

__all__ = ["ReviewDataModule", "ClassificationDataModule", "CausalLMDataModule", "MaskedLMDataModule"]
