"""Generated tables in the docs: a study's or a benchmark's table goes between its markers in a Markdown file
(`<!-- KEY:start -->` ... `<!-- KEY:end -->`), and the text around them is kept.

To run: python -m src study report --config configs/studies/label_budget.yaml   (-> docs/studies/label_budget/README.md)
"""

from pathlib import Path


def write_between_markers(doc: str | Path, key: str, body: str, heading: str = "") -> None:
    """Replace what stands between `key`'s markers in `doc` by `body`; where the markers are missing, append them
    (after `heading`, if given) at the end of the file."""
    doc = Path(doc)
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    text = doc.read_text() if doc.exists() else ""
    if start not in text:
        heading = f"{heading}\n\n" if heading else ""
        text = text.rstrip("\n") + ("\n\n" if text else "") + f"{heading}{start}\n{end}\n"
    head, rest = text.split(start, 1)
    doc.write_text(f"{head}{start}\n{body.rstrip(chr(10))}\n{end}{rest.split(end, 1)[1]}")
