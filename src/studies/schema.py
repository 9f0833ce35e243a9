"""The study file, typed: every key is a field of `Study`, of `Approach` or of the approach's kind; an unknown key,
a missing one or a value of the wrong type is a one-line error naming it and the fix.

To run: python -c "from src.studies.schema import load_study; print(load_study('configs/studies/label_budget.yaml'))"
"""

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from src.data.selection import EvalSplit
from src.errors import UserError
from src.studies.approach import Approach, Requires
from src.studies.kinds import KINDS

PREREQUISITES = "configs/studies/prerequisites.yaml"


@dataclass
class Study:
    """A study: its approaches, budgets and seeds, and the reviews every run is scored on."""

    name: str
    eval_split: EvalSplit  # `test` for the figures reported, `validation` for every choice made while developing
    budgets: list[int]
    seeds: list[int]
    approaches: list[Approach]
    output_dir: str = "outputs/studies"
    doc: str | None = None  # the report's table goes there too, between this study's markers
    source: str | None = None  # None: the shared mirror when present, else stanfordnlp/imdb
    val_size: int = 2500  # the validation split held out of train (the data modules' `val_size`)
    split_seed: int = 42  # its seed (the data modules' `seed`)
    eval_size: int | None = 2000  # class-balanced evaluation reviews; None: the whole split
    eval_seed: int = 0  # seed of their sample
    eval_batch_size: int = 32
    bootstrap: int = 1000  # resamples of the intervals
    reference: str | None = None  # every other approach is compared with this one
    compare: list[list[str]] = field(default_factory=list)  # pairs of approaches compared as well
    prerequisites: str = PREREQUISITES  # the file of named prerequisites its approaches name

    def approach(self, name: str) -> Approach:
        return next(a for a in self.approaches if a.name == name)

    def prerequisite(self, name: str) -> Requires:
        """The named prerequisite (from `prerequisites`)."""
        return named_prerequisites(self.prerequisites)[name]

    def folder(self) -> Path:
        return Path(self.output_dir) / self.name


def load_study(path: str | Path, quick: bool = False) -> Study:
    """The study file, checked (`quick`: 2 seeds, the 2 smallest budgets, 16 evaluation reviews, its own folder)."""
    if not Path(path).is_file():
        raise UserError(f"study file {path} does not exist; fix: pass one of configs/studies/*.yaml")
    return parse_study(yaml.safe_load(Path(path).read_text()) or {}, str(path), quick)


@functools.cache
def named_prerequisites(path: str) -> dict[str, Requires]:
    """The named prerequisites of a file (each checked as a `Requires`), read once; none where it does not exist."""
    if not Path(path).is_file():
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of names to prerequisites; fix: see {PREREQUISITES}")
    named = {name: parse(Requires, entry, f"{path}: {name}") for name, entry in data.items()}
    for name, need in named.items():
        unknown = [n for n in need.needs if n not in named]
        if unknown:
            raise UserError(f"{path}: {name} needs {unknown[0]!r}, which is not named there; fix: one of "
                            f"{sorted(named)}")
    return named


def resolve_names(data: dict, where: str) -> dict:
    """The study file with each approach's `requires: <name>` replaced by that named prerequisite, and every name
    in `needs` checked: a misspelled one is a one-line error, not a run that fails later."""
    named = named_prerequisites(data.get("prerequisites", PREREQUISITES))
    approaches = data.get("approaches")
    if not isinstance(approaches, list):
        return data
    resolved = []
    for a in approaches:
        if isinstance(a, dict):
            names = ([a["requires"]] if isinstance(a.get("requires"), str) else []) + (
                a["needs"] if isinstance(a.get("needs"), list) else [])
            unknown = [n for n in names if n not in named]
            if unknown:
                raise UserError(f"{where}: {a.get('name')} names the prerequisite {unknown[0]!r}, which "
                                f"{data.get('prerequisites', PREREQUISITES)} does not define; fix: one of "
                                f"{sorted(named)}")
            if isinstance(a.get("requires"), str):
                a = {**a, "requires": dataclasses.asdict(named[a["requires"]])}
        resolved.append(a)
    return {**data, "approaches": resolved}


def parse_study(data: dict, where: str, quick: bool = False) -> Study:
    study = parse(Study, resolve_names(data, where), where)
    names = [a.name for a in study.approaches]
    if len(set(names)) != len(names):
        raise UserError(f"{where}: two approaches have the same name; fix: name each approach once")
    for name in [study.reference, *[n for pair in study.compare for n in pair]]:
        if name is not None and name not in names:
            raise UserError(f"{where}: {name!r} (in reference or compare) is no approach of the study; fix: use one of "
                            f"{names}")
    if any(len(pair) != 2 for pair in study.compare):
        raise UserError(f"{where}: each entry of compare is a pair of approach names; fix: e.g. [distilled, zero_shot]")
    # Out of range, these failed every run one by one (a division by zero, a sample larger than the population).
    for key, low in (("eval_size", 2), ("eval_batch_size", 1), ("bootstrap", 1), ("val_size", 1)):
        value = getattr(study, key)
        if value is not None and value < low:
            raise UserError(f"{where}: {key} is {value}; fix: {low} or more")
    for owner, budgets, seeds in [(study.name, study.budgets, study.seeds),
                                  *[(a.name, a.budgets or [], a.seeds) for a in study.approaches]]:
        if any(b < 0 for b in budgets):
            raise UserError(f"{where}: {owner}'s budgets {budgets} hold a negative one; fix: label budgets of 0 or "
                            "more (0: no labels)")
        if seeds is not None and not seeds:
            raise UserError(f"{where}: {owner}'s seeds are empty; fix: at least one, e.g. [0, 1, 2]")
    if quick:  # its own folder, and no doc: its rows never mix with the full study's
        for a in study.approaches:
            a.budgets = a.budgets and a.budgets[:2]
            a.seeds = a.seeds and a.seeds[:2]
        study = dataclasses.replace(study, name=f"{study.name}_quick", doc=None, budgets=sorted(study.budgets)[:2],
                                    seeds=study.seeds[:2], bootstrap=200,
                                    eval_size=16 if study.eval_size is None else min(study.eval_size, 16))
    return study


def parse(cls, data, where: str):
    """`data` (a mapping from the study file) as a `cls`, every key checked against its fields and their types."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of keys, got {data!r}; fix: see configs/studies/")
    if cls is Approach:  # the kind picks the class, and with it the keys an approach may have
        kind = data.get("kind", "label_budget")
        if kind not in KINDS:
            raise UserError(f"{where}: unknown approach kind {kind!r}; fix: one of {sorted(KINDS)}")
        cls = KINDS[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} for {cls.__name__}; fix: use one of {sorted(fields)}")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UserError(f"{where}: {cls.__name__} lacks {missing[0]!r}; fix: add it (see configs/studies/)")
    hints = typing.get_type_hints(cls)
    name = data.get("name") if isinstance(data.get("name"), str) else cls.__name__
    return cls(**{key: convert(value, hints[key], f"{where}: {name}.{key}") for key, value in data.items()})


def convert(value, hint, where: str):
    """`value` checked against the type `hint` (nested dataclasses parsed)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return convert(value, hint, where)
    if origin is Literal:
        if value not in args:
            raise UserError(f"{where} is {value!r}; fix: one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{where} should be a list, got {value!r}; fix: write it as [a, b, ...]")
        return [convert(v, args[0], where) for v in value]
    if dataclasses.is_dataclass(hint):
        return parse(hint, value, where)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # an argument written as a bare number in YAML
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise UserError(f"{where} should be {hint.__name__}, got {value!r}; fix: correct it in the study file")
    return value
