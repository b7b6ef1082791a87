"""The seven-field implicit label of GB 45438-2025 Appendix E, and a tolerant parser for it.

Field names, order and value rules follow GB 45438-2025 Appendix E (as digested in
``shared/spec/labeling-spec.md`` section 3); the shapes the parser accepts are the ones
seen in real files (digest section 5).
"""

from __future__ import annotations

import html
import json
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from labeler.errors import InvalidArgument, InvalidLabel, LabelerError

#: Appendix E field names, in the standard's order.
FIELD_NAMES = (
    "Label",
    "ContentProducer",
    "ProduceID",
    "ReservedCode1",
    "ContentPropagator",
    "PropagateID",
    "ReservedCode2",
)

#: Label values: generation attribute (Appendix E; Labeling Measures Art. 6).
LABEL_MEANINGS = {"1": "AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated"}

_REQUIRED = ("Label", "ContentProducer", "ProduceID", "ContentPropagator", "PropagateID")
#: The fields a distribution platform writes over (Labeling Measures Art. 6 (4)); the rest are the producer's.
PROPAGATOR_FIELDS = ("ContentPropagator", "PropagateID", "ReservedCode2")
# Appendix E j): 0x21, 0x23-0x5B, 0x5D-0x7E; a double quote only as \" (JSON escaping does that).
_BAD_CHARS = re.compile(r'[^\x21-\x5b\x5d-\x7e]')
# TC260 provider code: 00 + 1 + 1 + 18-char unified social credit code + 5-char service extension.
_PROVIDER_CODE_RE = re.compile(r"^0011[0-9A-Z]{18}[0-9A-Z]{5}$")
_MAX_RAW = 1 << 20
_ATTR = {
    "Label": "label",
    "ContentProducer": "content_producer",
    "ProduceID": "produce_id",
    "ReservedCode1": "reserved_code1",
    "ContentPropagator": "content_propagator",
    "PropagateID": "propagate_id",
    "ReservedCode2": "reserved_code2",
}


@dataclass(frozen=True)
class AIGCLabel:
    """A GB 45438-2025 Appendix E implicit label.

    Parameters
    ----------
    content_producer : str
        Name or code of the generation service provider (a 27-character TC260
        provider code such as ``001191110102MACQD9K64010000`` is preferred).
    produce_id : str
        The provider's unique ID for this content.
    label : {"1", "2", "3"}
        Generation attribute: 1 AI-generated, 2 possibly, 3 suspected.
    reserved_code1, reserved_code2 : str
        Producer's / propagator's protection data (signature, hash); may be empty.
    content_propagator, propagate_id : str or None
        Distribution platform and its content ID. ``None`` applies the
        first-write rule: they take the producer's values.

    Construction does not validate the values, so that labels read from files can be
    represented as they are; call :meth:`problems` or :meth:`check`. Their types it does: every
    field is a str (the JSON strings of Appendix E), None where a value is absent; ``label`` also
    takes the int 1, 2 or 3 (stored as its str). Anything else (``AIGCLabel(1, 2)``) is an
    :class:`~labeler.errors.InvalidArgument`: it was written as the text of the number.
    """

    content_producer: str
    produce_id: str
    label: str = "1"
    reserved_code1: str = ""
    content_propagator: str | None = None
    propagate_id: str | None = None
    reserved_code2: str = ""

    def __post_init__(self) -> None:
        if self.content_propagator is None:
            object.__setattr__(self, "content_propagator", self.content_producer)
        if self.propagate_id is None:
            object.__setattr__(self, "propagate_id", self.produce_id)
        if isinstance(self.label, numbers.Integral) and not isinstance(self.label, bool):
            object.__setattr__(self, "label", str(int(self.label)))  # the documented label=1 (NumPy's too)
        # Appendix E values are JSON strings: a number or bytes given as ContentProducer or ProduceID was
        # written as its str() (b'..' with the quotes), so refused here, where the caller made it.
        wrong = [(f.name, getattr(self, f.name)) for f in fields(self)
                 if not isinstance(getattr(self, f.name), (str, type(None)))]
        if wrong:
            name, value = wrong[0]
            extra = " (or the int 1, 2 or 3)" if name == "label" else ""
            raise InvalidArgument(f"AIGCLabel {name} must be a str{extra}, not {type(value).__name__} "
                                  f"({value!r})"[:200])

    # -- views -------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, str]:
        """The seven fields under their Appendix E names, in the standard's order."""
        # None (a field never given) is empty, never the text "None": check() then refuses it.
        return {name: "" if getattr(self, attr) is None else str(getattr(self, attr))
                for name, attr in _ATTR.items()}

    def to_json(self, *, wrapped: bool = False) -> str:
        """Serialize in the standard's shape.

        ``wrapped=False`` gives the bare object the TC260 practice guides put in
        ``AIGC``-named carriers (``{"Label":"1",...}``); ``wrapped=True`` the
        Appendix E b) form ``{"AIGC": {...}}`` (with the space the standard shows).
        """
        inner = json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=True)
        return '{"AIGC": ' + inner + "}" if wrapped else inner

    @classmethod
    def from_fields(cls, values: Mapping[str, str]) -> AIGCLabel:
        """Build from Appendix E names; missing fields become empty strings (no first-write rule)."""
        kwargs = {attr: str(values.get(name) or "") for name, attr in _ATTR.items()}
        return cls(**kwargs)

    def replace(self, **changes: str) -> AIGCLabel:
        """Return a copy with some fields changed (attribute names, e.g. ``propagate_id=``)."""
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        return AIGCLabel(**current)

    # -- rules -------------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Violations of Appendix E: Label not 1/2/3, empty required fields, characters outside j)."""
        return field_problems(self.as_dict())

    def warnings(self) -> list[str]:
        """Soft findings that do not make the label non-compliant (e.g. a producer name, not a code)."""
        return field_warnings(self.as_dict())

    def check(self) -> AIGCLabel:
        """Return ``self`` if it may be written; raise :class:`InvalidLabel` (one line) otherwise."""
        found = self.problems()
        if found:
            raise InvalidLabel("invalid label: " + "; ".join(found))
        return self


def check_watermark_label(record: AIGCLabel, layers: Sequence[str]) -> None:
    """Refuse the watermark layer for a record whose ``Label`` is not "1".

    The watermark's payload carries the ProduceID only, and a verifier reads a watermark found without
    metadata as AI-generated content (docs/verdicts.md, rule 2): it is embedded by the generator into
    what it generated. A "possibly" (2) or "suspected" (3) label is a platform's judgement of content
    it did not make (Labeling Measures Art. 6); marked with our watermark, a copy stripped of its
    metadata would verify as confirmed AI-generated, stronger than the label it came with.

    Raises
    ------
    InvalidArgument
        ``"watermark"`` in ``layers`` and ``record.label`` is "2" or "3".
    """
    if "watermark" in layers and record.label in ("2", "3"):
        from labeler.errors import InvalidArgument

        raise InvalidArgument(
            f"the watermark layer is for content the caller generated (Label 1): verify reads a watermark "
            f"alone as AI-generated, so a Label {record.label} "
            f"({'possibly' if record.label == '2' else 'suspected'} AI-generated) copy stripped of its "
            "metadata would read as confirmed; label it with the metadata (and c2pa) layers only")


def field_problems(values: Mapping[str, str | None]) -> list[str]:
    """Appendix E violations in a mapping of field name -> value (``None`` = field absent)."""
    out: list[str] = []
    label = values.get("Label")
    if label is not None and label not in LABEL_MEANINGS:
        out.append(f"Label is {label!r}, must be '1', '2' or '3'")
    for name in _REQUIRED:
        value = values.get(name)
        if value is None:
            out.append(f"{name} is missing")
        elif value == "":
            out.append(f"{name} is empty")
    for name in FIELD_NAMES:
        value = values.get(name)
        if value and _BAD_CHARS.search(value.replace('"', "!")):
            bad = sorted({c for c in value if _BAD_CHARS.match(c) and c != '"'})
            out.append(f"{name} has characters outside GB 45438 Appendix E j): {''.join(bad)!r}")
    return out


def propagator_field_problem(problem: str) -> bool:
    """True when ``problem``, as :func:`field_problems` and :func:`parse_label` word it, concerns only one of
    :data:`PROPAGATOR_FIELDS`.

    A platform replaces those fields (docs/verdicts.md, "Propagation"), so a producer's label that leaves
    them out, empty or misspelled (Doubao omits them, Kling leaves them empty) is no reason to refuse it:
    the platform's values make the label compliant, and none of the producer's fields is touched.
    """
    return any(problem.startswith(f"{name} ") or f"is not the Appendix E field name {name!r} " in problem
               for name in PROPAGATOR_FIELDS)


def field_warnings(values: Mapping[str, str | None]) -> list[str]:
    """Soft findings: producer/propagator names rather than 27-character TC260 provider codes."""
    out = []
    for name in ("ContentProducer", "ContentPropagator"):
        value = values.get(name)
        if value and not _PROVIDER_CODE_RE.match(value):
            out.append(f"{name} {value!r} is not a 27-character TC260 provider code")
    return out


@dataclass
class ParsedLabel:
    """The result of :func:`parse_label` on one stored value.

    Attributes
    ----------
    fields : dict
        The seven Appendix E fields as read (``None`` for a field that is absent).
    shape : str
        How it was stored: ``"bare"``, ``"wrapped"``, plus ``"+xml-escaped"``,
        ``"+double-encoded"``, ``"+prefixed"``, ``"+embedded"`` when those quirks applied.
    problems : list of str
        Appendix E violations (the label is then not compliant).
    warnings : list of str
        Soft findings (unknown keys, non-code producer names, numbers instead of strings).
    """

    fields: dict[str, str | None]
    shape: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the label complies with Appendix E."""
        return not self.problems

    def to_label(self) -> AIGCLabel:
        """The record, with absent fields as empty strings."""
        return AIGCLabel.from_fields({k: v or "" for k, v in self.fields.items()})


class LabelParseError(LabelerError, ValueError):
    """The stored value holds no JSON object at all."""


def parse_label(raw: str | bytes | Mapping[str, Any]) -> ParsedLabel:
    """Read a stored label value in any shape seen in real files.

    Accepts the bare seven-key object, the wrapped ``{"AIGC": {...}}`` form,
    XML-entity-escaped JSON (``&quot;``), a JSON string holding JSON, an
    ``AIGC`` prefix before the object (``AIGC{...}``, ``AIGC=``, ``AIGC:``),
    an object embedded in other text, a mapping (e.g. YAML front matter
    already loaded), case-insensitive keys and numbers for strings.

    Raises
    ------
    LabelParseError
        If no JSON object can be found.
    """
    shape_notes: list[str] = []
    if not isinstance(raw, (str, bytes, bytearray, Mapping)):
        raise LabelParseError(f"a label is text, bytes or a mapping, not {type(raw).__name__}")
    if isinstance(raw, Mapping):
        obj: Any = dict(raw)
    else:
        obj = _load_json_object(raw, shape_notes)
    shape = "bare"
    warnings: list[str] = []
    inner_key = next((k for k in obj if isinstance(k, str) and k.strip().upper() == "AIGC"), None)
    if inner_key is not None:
        inner = obj[inner_key]
        if isinstance(inner, str):
            shape_notes.append("+double-encoded")
            inner = _load_json_object(inner, shape_notes)
        if isinstance(inner, Mapping):
            # Keys beside the wrapper are not the label's, but say so: a stray "Label" there is ambiguous.
            warnings += [f"key {str(k)[:40]!r} beside the AIGC object is ignored"
                         for k in obj if k != inner_key]
            obj, shape = inner, "wrapped"
    values, problems = _read_fields(obj, warnings)
    if all(v is None for v in values.values()):
        problems = ["no Appendix E fields in the AIGC value"]
    else:
        problems += field_problems(values)
    warnings.extend(field_warnings(values))
    return ParsedLabel(values, shape + "".join(shape_notes), problems, warnings)


def _read_fields(obj: Mapping[str, Any], warnings: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """The seven fields of a label object and the problems of its keys; soft findings go to ``warnings``.

    A field given twice (the same key repeated in the JSON text, or two spellings of one name) keeps
    the last value, as JSON parsers do, but differing values are a problem: other readers may take the
    first. Appendix E names its fields with fixed letter case, so a key in another case is read (real
    readers should not lose the label) but makes the label non-compliant.
    """
    problems: list[str] = []
    values: dict[str, str | None] = dict.fromkeys(FIELD_NAMES)
    seen: dict[str, str | None] = {}
    canonical = {name.lower(): name for name in FIELD_NAMES}
    pairs = obj.pairs if isinstance(obj, _PairsDict) else list(obj.items())
    for key, value in pairs:
        name = canonical.get(str(key).strip().lower())
        if name is None:
            warnings.append(f"unknown key {str(key)[:40]!r}")
            continue
        if name != key:
            warnings.append(f"key {str(key)[:40]!r} should be spelled {name!r}")
            problems.append(f"key {str(key)[:40]!r} is not the Appendix E field name {name!r} "
                            "(field names are case-sensitive)")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                warnings.append(f"{name} is a {type(value).__name__}, not a string")
                value = json.dumps(value, ensure_ascii=True)
            elif not isinstance(value, str):
                warnings.append(f"{name} is a number, not a string")
                value = str(value)
        if name in seen:
            if seen[name] != value:
                problems.append(f"{name} is given twice, as {_short(seen[name])} and {_short(value)}")
            else:
                warnings.append(f"{name} is given twice (same value)")
        seen[name] = value
        if value is not None:
            values[name] = value
    return values, problems


def _short(value: str | None) -> str:
    return repr(value if value is None or len(value) <= 40 else value[:40] + "...")


class _PairsDict(dict):
    """A JSON object that also keeps its key/value pairs in order, repeated keys included."""

    pairs: list[tuple[str, Any]]


def _pairs_hook(pairs: list[tuple[str, Any]]) -> _PairsDict:
    obj = _PairsDict(pairs)
    obj.pairs = pairs
    return obj


def _load_json_object(raw: str | bytes, notes: list[str]) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if len(raw) > _MAX_RAW:
        raise LabelParseError(f"label value is {len(raw)} characters, over the {_MAX_RAW} limit")
    text = raw.strip().lstrip("\ufeff").strip("\x00").strip()
    prefixed = re.match(r"^AIGC\s*[:=]?\s*(?=[{\"&])", text, re.IGNORECASE)
    if prefixed:
        text = text[prefixed.end():]
        notes.append("+prefixed")
    for attempt in range(3):
        try:
            obj = json.loads(text, object_pairs_hook=_pairs_hook)
        except RecursionError:
            raise LabelParseError("label value nests JSON too deeply") from None
        except ValueError:
            obj = _embedded_object(text)
            if obj is not None:
                notes.append("+embedded")
        if isinstance(obj, str) and attempt < 2:
            text = obj.strip()
            notes.append("+double-encoded")
            continue
        if isinstance(obj, dict):
            return obj
        if "&" in text and attempt < 2:
            unescaped = html.unescape(text)
            if unescaped != text:
                text = unescaped
                notes.append("+xml-escaped")
                continue
        break
    raise LabelParseError("label value is not a JSON object")


def _embedded_object(text: str) -> Any:
    start = text.find("{")
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder(object_pairs_hook=_pairs_hook).raw_decode(text[start:])
    except (ValueError, RecursionError):
        return None
    return obj


def is_label_json(text: str) -> bool:
    """True if ``text`` parses as an AIGC label (used by carriers that scan generic text fields)."""
    try:
        parsed = parse_label(text)
    except LabelParseError:
        return False
    return any(v is not None for v in parsed.fields.values())
