"""To run: python -m src fit --config configs/bert_imdb.yaml"""

from src.cli import main

if __name__ == "__main__":
    main()
