"""Fine-tune, pretrain and prompt transformers on IMDB with PyTorch Lightning.

To run: python -m src fit --config configs/bert_imdb.yaml
"""
