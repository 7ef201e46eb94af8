"""Model facts for the estimator, read from ``ledger/books/models.toml`` (data, not code).

``model_facts("gpt-image-2")`` gives one model's size rule, qualities, output-token model and
input-image-token model; an unknown name raises a one-line ``UserError`` naming the closest known ones.
"""

from __future__ import annotations

import difflib
import tomllib
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger.errors import UserError

MODELS_FILE = Path(__file__).resolve().parent.parent / "books" / "models.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoundedSizeRule(_Strict):
    """Any WIDTHxHEIGHT within bounds (gpt-image-2 family, reference §7.1)."""

    kind: Literal["bounded"]
    max_edge: int
    multiple_of: int
    max_ratio: float
    min_pixels: int
    max_pixels: int


class FixedSizeRule(_Strict):
    """A closed list of sizes (models before gpt-image-2, reference §7.1)."""

    kind: Literal["fixed"]
    sizes: tuple[str, ...]


class CalculatorTokens(_Strict):
    """The reverse-engineered gpt-image-2 output-token calculator (reference §5.7)."""

    kind: Literal["gpt_image_2_calculator"]
    quality_base: dict[str, int]
    source: str


class TableTokens(_Strict):
    """The official per-size token table (reference §5.5): quality -> size -> tokens."""

    kind: Literal["token_table"]
    table: dict[str, dict[str, int]]
    source: str


class TileInputTokens(_Strict):
    """Input image tokens from 512 px tiles (gpt-image-1 family, reference §6), or a default anchored on it.

    ``kind = "tiles"``: the official formula. ``kind = "empirical_default"``: no formula is published, so
    expected = the high-fidelity tile count, low = the low-fidelity count, high = ``high_factor`` x expected.
    """

    kind: Literal["tiles", "empirical_default"]
    short_side: int
    tile: int
    base: int
    per_tile: int
    high_fidelity_square: int
    high_fidelity_other: int
    high_factor: float | None = None
    source: str


SizeRule = Annotated[BoundedSizeRule | FixedSizeRule, Field(discriminator="kind")]
OutputTokenModel = Annotated[CalculatorTokens | TableTokens, Field(discriminator="kind")]


class Family(_Strict):
    qualities: tuple[str, ...]
    input_fidelity: tuple[str, ...]
    size_rule: SizeRule
    output_tokens: OutputTokenModel
    input_image_tokens: TileInputTokens


class ModelEntry(_Strict):
    name: str
    family: str
    snapshot_of: str | None = None
    shutdown: date | None = None
    input_fidelity: tuple[str, ...] | None = None  # overrides the family's
    extra_qualities: tuple[str, ...] = ()  # accepted by the API, no published token count
    output_tokens_published: bool = True
    notes: tuple[str, ...] = ()


class ToolDefault(_Strict):
    model: str
    source: str


class Catalog(_Strict):
    tool_default: ToolDefault
    family: dict[str, Family]
    model: tuple[ModelEntry, ...]


class ModelFacts(BaseModel):
    """Everything the estimator knows about one model (its entry merged with its family)."""

    model_config = ConfigDict(frozen=True)

    name: str
    family_name: str
    snapshot_of: str | None
    shutdown: date | None
    qualities: tuple[str, ...]
    extra_qualities: tuple[str, ...]
    input_fidelity: tuple[str, ...]
    size_rule: BoundedSizeRule | FixedSizeRule
    output_tokens: CalculatorTokens | TableTokens
    output_tokens_published: bool
    input_image_tokens: TileInputTokens
    notes: tuple[str, ...]


@cache
def load_catalog(path: Path = MODELS_FILE) -> Catalog:
    """Parse and validate models.toml (cached; the file ships with the package)."""
    with path.open("rb") as fh:
        catalog = Catalog.model_validate(tomllib.load(fh))
    for entry in catalog.model:
        if entry.family not in catalog.family:
            raise ValueError(f"{path}: model {entry.name} names unknown family {entry.family}")
    return catalog


@cache
def _facts_by_name() -> dict[str, ModelFacts]:
    catalog = load_catalog()
    facts: dict[str, ModelFacts] = {}
    for entry in catalog.model:
        fam = catalog.family[entry.family]
        facts[entry.name] = ModelFacts(
            name=entry.name,
            family_name=entry.family,
            snapshot_of=entry.snapshot_of,
            shutdown=entry.shutdown,
            qualities=fam.qualities,
            extra_qualities=entry.extra_qualities,
            input_fidelity=entry.input_fidelity if entry.input_fidelity is not None else fam.input_fidelity,
            size_rule=fam.size_rule,
            output_tokens=fam.output_tokens,
            output_tokens_published=entry.output_tokens_published,
            input_image_tokens=fam.input_image_tokens,
            notes=entry.notes,
        )
    return facts


def known_models() -> list[str]:
    """Every model name in models.toml, in file order."""
    return list(_facts_by_name())


def model_facts(model: str) -> ModelFacts:
    """The facts for ``model``; an unknown name raises a one-line UserError suggesting the closest names."""
    facts = _facts_by_name().get(model)
    if facts is not None:
        return facts
    names = known_models()
    close = difflib.get_close_matches(model, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"known models: {', '.join(names)}"
    raise UserError(f"unknown model {model!r}; {hint} (model facts live in ledger/books/models.toml)")


def default_tool_model() -> str:
    """The image model the Responses image_generation tool uses when ``tools[].model`` is unset."""
    return load_catalog().tool_default.model
