r"""Reading a JSONL plan: lines -> groups of identical requests (polars), and one line's JSON -> a request.

The prompt is the one field that differs on nearly every line, so it is pulled out of each line before
grouping (vectorized regex): ``"prompt_chars": 412`` becomes ``"prompt_chars": 0`` and ``"prompt": "a fox"``
becomes ``"prompt": ""``, with the length kept in a column. The prompt's length is that of the decoded JSON
string (escapes such as ``\n`` or ``\u4e2d`` count as one character, a surrogate pair ``\ud83d\ude00`` as one,
as Python's ``len`` counts them). Lines whose prompt cannot be pulled out this way (a number with a fraction,
an invalid escape, both keys, ...) stay as they are and are parsed and measured one by one.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import polars as pl

from ledger.errors import UserError
from ledger.estimator.core import MAX_PROMPT_CHARS
from ledger.estimator.records import EstimateRequest

# Keys that change the estimate, and their JSON type.
FIELDS: dict[str, type] = {
    "model": str,
    "size": str,
    "quality": str,
    "n": int,
    "partial_images": int,
    "input_images": list,
    "prompt": str,
    "prompt_chars": int,
    "route": str,
    "input_fidelity": str,
    "tier": str,
}
# Other images.generate / images.edit keyword arguments: accepted, they do not change the token count.
IGNORED = frozenset(
    {"background", "output_format", "output_compression", "moderation", "stream", "user", "safety_identifier",
     "mask", "image", "style", "response_format", "complexity"}
)  # fmt: skip
_TYPE_NAMES = {str: "a string", int: "a whole number", list: "a list"}

# `"prompt_chars": <a JSON integer>` followed by `,` or `}` (so `12.5` or `1e3` are left to the JSON parser).
_PROMPT_CHARS_RE = r'"prompt_chars"\s*:\s*-?(?:0|[1-9][0-9]{0,8})\s*[,}]'
_PROMPT_CHARS_VALUE_RE = r'"prompt_chars"\s*:\s*-?(?:0|[1-9][0-9]{0,8})'
# `"prompt": "<a JSON string>"`: plain characters (no quote, backslash or control character) and valid escapes.
# No capture group: group-free patterns run on the regex engine's fast path.
_PROMPT_RE = r'"prompt"\s*:\s*"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'


def read_lines(path: Path) -> tuple[list[str], list[int]]:
    """The file's lines, and the numbers of the lines that are not UTF-8 (kept as blanks)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read plan file {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8").split("\n"), []
    except UnicodeDecodeError:
        lines: list[str] = []
        bad: list[int] = []
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append("")
                bad.append(number)
        return lines, bad


def group_lines(lines: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(keyed lines, groups, lines with an out-of-range prompt length) for the non-blank lines.

    keyed: ``lineno`` (1-based), ``key`` (the line, prompt blanked when pulled out), ``chars`` (the pulled-out
    prompt length, else null). groups: one row per ``key`` with ``count``, ``chars`` (sum) and ``pulled``.
    """
    line = pl.col("line")
    frame = (
        pl.DataFrame({"line": lines}, schema={"line": pl.String})
        .with_row_index("lineno", offset=1)
        .filter(line.str.strip_chars().str.len_bytes() > 0)
        .with_columns(
            line.str.contains('"prompt_chars"', literal=True).alias("_has_chars"),
            line.str.contains('"prompt"', literal=True).alias("_has_prompt"),
        )
    )
    has_chars, has_prompt = pl.col("_has_chars"), pl.col("_has_prompt")
    # Each regex runs only on the lines that name its key; lines naming both are left for the parser to reject.
    # (Intermediate columns first: an eager select would evaluate a repeated expression once per use.)
    chars_value = pl.col("_match").str.extract(r"(-?[0-9]+)", 1).cast(pl.Int64)
    by_chars = (
        frame.filter(has_chars & ~has_prompt)
        .with_columns(line.str.extract_all(_PROMPT_CHARS_RE).list.first().alias("_match"))
        .with_columns(chars_value.alias("chars"))
        .select(
            "lineno",
            pl.when(pl.col("chars").is_not_null())
            .then(line.str.replace(_PROMPT_CHARS_VALUE_RE, '"prompt_chars": 0'))
            .otherwise(line)
            .alias("key"),
            "chars",
        )
    )
    # The prompt's length is read by polars' JSON reader (decoded, as Python's len counts it); a prompt that
    # reader refuses (e.g. a lone surrogate escape) is left in the line.
    length, blanked = pl.col("_length"), pl.col("_blanked")
    pulled = length.is_not_null() & ((blanked != line) | (length == 0))  # "" is already blank
    by_prompt = (
        frame.filter(has_prompt & ~has_chars)
        .with_columns(
            line.str.json_path_match("$.prompt").str.len_chars().cast(pl.Int64).alias("_length"),
            line.str.replace(_PROMPT_RE, '"prompt": ""').alias("_blanked"),
        )
        .select(
            "lineno",
            pl.when(pulled).then(blanked).otherwise(line).alias("key"),
            pl.when(pulled).then(length).alias("chars"),
        )
    )
    no_pull = pl.lit(None, pl.Int64).alias("chars")
    rest = frame.filter(has_chars == has_prompt).select("lineno", line.alias("key"), no_pull)
    keyed = pl.concat([by_chars, by_prompt, rest])
    in_range = pl.col("chars").is_null() | pl.col("chars").is_between(0, MAX_PROMPT_CHARS)
    out_of_range = keyed.filter(~in_range).select("lineno", "chars")
    keyed = keyed.filter(in_range)
    groups = keyed.group_by("key").agg(
        pl.len().alias("count"),
        pl.col("chars").sum().alias("chars"),
        pl.col("chars").is_not_null().any().alias("pulled"),
    )
    return keyed, groups, out_of_range


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj: dict[str, object] = {}
    for key, value in pairs:
        if key in obj:
            raise UserError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def decode(text: str) -> object:
    """json.loads, rejecting duplicate keys (which JSON readers resolve differently)."""
    return json.loads(text, object_pairs_hook=_no_duplicate_keys)


def parse_request(obj: object, *, route: str, tier: str) -> tuple[EstimateRequest, int | None]:
    """One decoded line -> (request with prompt_chars 0 / None, the prompt's length or None). UserError if bad."""
    if not isinstance(obj, dict):
        raise UserError(f"expected a JSON object of request keyword arguments, got {type(obj).__name__}")
    unknown = [key for key in obj if key not in FIELDS and key not in IGNORED]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(FIELDS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(FIELDS)}"
        raise UserError(f"unknown key {unknown[0]!r}; {hint}")
    for key, expected in FIELDS.items():
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, expected)):
            raise UserError(f"{key} must be {_TYPE_NAMES[expected]} (got {json.dumps(value)})")
    if obj.get("model") is None:  # absent or null
        raise UserError('missing "model"')
    if "prompt" in obj and "prompt_chars" in obj:
        raise UserError('give "prompt" or "prompt_chars", not both')
    images = obj.get("input_images") or []
    if not all(isinstance(image, str) for image in images):
        raise UserError('input_images must be a list of "WxH" strings')
    prompt = obj.get("prompt")
    chars = len(prompt) if isinstance(prompt, str) else obj.get("prompt_chars")
    if chars is not None and not 0 <= chars <= MAX_PROMPT_CHARS:
        raise UserError(f"prompt length must be from 0 to {MAX_PROMPT_CHARS} characters (got {chars})")
    req = EstimateRequest(
        model=obj["model"],
        size=obj.get("size") or "auto",
        quality=obj.get("quality") or "auto",
        n=obj.get("n", 1),
        partial_images=obj.get("partial_images", 0),
        input_images=tuple(images),
        prompt_chars=None if chars is None else 0,
        route=obj.get("route") or route,
        input_fidelity=obj.get("input_fidelity"),
        tier=obj.get("tier") or tier,
    )
    return req, chars
