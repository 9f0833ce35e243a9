"""To run: python -m src fit --config configs/bert_imdb.yaml
        python -m src serve outputs/bert_imdb/version_0   (HTTP, see src/serve.py)
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        from src.serve import main as serve

        serve(sys.argv[2:])
    else:
        from src.cli import main

        main()
