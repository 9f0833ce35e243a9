"""Text handling: clean a review, truncate it (head, or head and tail), put it in a prompt template,
wrap a prompt in the tokenizer's chat template, and pack tokenized reviews into fixed-size blocks.

To run: python -c "from src.data.text import clean; print(clean('Great.<br /><br />Really.'))"
"""

import datasets

from src.errors import UserError


def clean(text: str | None) -> str:
    """IMDB reviews carry HTML line breaks; a missing review is an empty one."""
    return (text or "").replace("<br />", " ").replace("<br/>", " ")


def tokenize(
    texts: list[str], tokenizer, max_length: int, truncation: str, template: str | None = None
) -> list[list[int]]:
    """Token ids with special tokens, at most `max_length` long.

    `head` keeps the start of a long review; `head_tail` keeps its first quarter and last three
    quarters of the budget (Sun et al. 2019: the end of a review carries much of its verdict).
    With a `template` ("Review: {text}\\nOverall, the movie was", for causal LMs) only the review is
    truncated, so the prompt's end, where the answer follows, is always kept.
    """
    texts = [clean(t) for t in texts]
    if template is not None:
        head_ids, tail_ids = template_ids(template, tokenizer)
        budget = max_length - len(head_ids) - len(tail_ids)
        if budget < 1:
            raise UserError(f"data.max_length is {max_length}: the prompt template alone takes {max_length - budget} "
                            f"tokens; fix: --data.max_length above {max_length - budget}")
        body = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [head_ids + cut(ids, budget, truncation) + tail_ids for ids in body]
    if truncation == "head":
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    # Special tokens sit at both ends, so a head+tail cut keeps them.
    return [cut(ids, max_length, truncation) for ids in tokenizer(texts, verbose=False)["input_ids"]]


def check_template(template: str) -> None:
    """A `UserError` unless a prompt template has exactly one `{text}`, where the review goes."""
    if template.count("{text}") != 1:
        raise UserError(f"prompt template {template!r} has {template.count('{text}')} {{text}} slots; fix: one, where "
                        "the review goes, e.g. 'Review: {text}\\nOverall, the movie was'")


def template_ids(template: str, tokenizer) -> tuple[list[int], list[int]]:
    """The ids a prompt template puts before and after the review (special tokens with the part before)."""
    check_template(template)
    prefix, suffix = template.split("{text}")
    return (tokenizer(prefix)["input_ids"] if prefix else [],
            tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else [])


def cut(ids: list[int], budget: int, truncation: str) -> list[int]:
    """At most `budget` ids: the first ones (`head`), or the first quarter and the last three quarters."""
    if len(ids) <= budget:
        return ids
    if truncation == "head":
        return ids[:budget]
    head = budget // 4
    return ids[:head] + ids[len(ids) - (budget - head) :]


def chat_prompt(prompt: str, tokenizer) -> str:
    """A prompt as a user turn of the tokenizer's chat template, ending where the assistant's answer starts (a prompt
    template's `{text}` is kept as it is)."""
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)


def prompt_ids(prompt: str, tokenizer, chat_template: bool) -> list[int]:
    """A prompt's ids, inside the tokenizer's chat template (as a user turn) when asked and it has one."""
    if chat_template and tokenizer.chat_template:
        return tokenizer(chat_prompt(prompt, tokenizer), add_special_tokens=False)["input_ids"]
    return tokenizer(prompt)["input_ids"]


def pack(ds: datasets.Dataset, block_size: int) -> datasets.Dataset:
    """Concatenate tokenized reviews and cut them into `block_size` blocks: no padding (HF `group_texts`).

    Per-token columns (`input_ids`, and `offset_mapping` for whole-word masking) are packed alike.
    """
    columns = [c for c in ("input_ids", "offset_mapping") if c in ds.column_names]

    def group(batch: dict) -> dict:
        out = {}
        for column in columns:
            flat = [t for ids in batch[column] for t in ids]
            n = len(flat) // block_size * block_size
            out[column] = [flat[i : i + block_size] for i in range(0, n, block_size)]
        out["length"] = [block_size] * len(out["input_ids"])
        return out

    return ds.map(group, batched=True, batch_size=2000, remove_columns=ds.column_names, desc="packing blocks")
