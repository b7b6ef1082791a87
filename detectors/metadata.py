"""Read and judge the implicit metadata label of a file (GB 45438-2025 section 6, Appendix E)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labeler.metadata import FoundLabel
from labeler.record import FIELD_NAMES, LabelParseError, ParsedLabel, parse_label

#: Most non-standard declarations listed in a report: a hostile file can hold tens of thousands (one per
#: XMP property or comment field), which would make a report of megabytes and say nothing more.
MAX_DECLARATIONS = 32


@dataclass
class MetadataLayer:
    """The ``layers.metadata`` part of a verification report.

    Attributes
    ----------
    present : bool
        A standard AIGC label was found (even a non-compliant one).
    fields : dict or None
        The seven Appendix E fields of the label used for the verdict, as read
        (``None`` for an absent field); ``None`` when no label was found.
    carrier : str or None
        Where that label was found (``xmp-tc260``, ``png-text``, ``id3-txxx``...).
    valid : bool
        The label complies with Appendix E and no copy in the file contradicts it.
    problems : list of str
        Non-compliance and contradictions.
    warnings : list of str
        Soft findings (provider names instead of codes, duplicate identical copies...).
    shape : str or None
        How the value was stored (see :class:`labeler.record.ParsedLabel`).
    copies : list of dict
        Every label value found: ``carrier``, ``location``, ``fields`` (or ``error``).
    declarations : list of dict
        Non-standard AI declarations (vendor keys, EXIF ImageDescription JSON, a label in a comment
        field): ``carrier``, ``location``, ``raw`` (first 500 characters); at most
        :data:`MAX_DECLARATIONS`, a warning counts the others.
    """

    present: bool = False
    fields: dict[str, str | None] | None = None
    carrier: str | None = None
    location: str | None = None
    valid: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shape: str | None = None
    copies: list[dict[str, Any]] = field(default_factory=list)
    declarations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label_value(self) -> str | None:
        """The Label field ("1", "2", "3" or whatever the file holds), if a label is present."""
        return self.fields.get("Label") if self.fields else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the report schema in ``docs/report.schema.json``)."""
        return {
            "present": self.present,
            "fields": self.fields,
            "carrier": self.carrier,
            "location": self.location,
            "valid": self.valid,
            "problems": self.problems,
            "warnings": self.warnings,
            "shape": self.shape,
            "copies": self.copies,
            "declarations": self.declarations,
        }


def judge_metadata(found: list[FoundLabel]) -> MetadataLayer:
    """Parse every value the carriers found and judge them together.

    The first parsable standard value is the label; further copies that
    agree are a warning (GB 45438 6.1 c) allows one label per file), copies
    that differ are a problem. Unparsable AIGC values are problems too.
    """
    layer = MetadataLayer()
    chosen: ParsedLabel | None = None
    unlisted = 0
    for item in found:
        if not item.standard:
            if len(layer.declarations) < MAX_DECLARATIONS:
                layer.declarations.append(
                    {"carrier": item.carrier, "location": item.location, "raw": item.raw[:500]}
                )
            else:
                unlisted += 1
            continue
        copy: dict[str, Any] = {"carrier": item.carrier, "location": item.location}
        layer.copies.append(copy)
        try:
            parsed = parse_label(item.raw)
        except LabelParseError as exc:
            copy["error"] = str(exc)
            layer.problems.append(f"{item.carrier} at {item.location}: {exc}")
            continue
        copy["fields"] = parsed.fields
        if chosen is None:
            chosen = parsed
            layer.present = True
            layer.fields = parsed.fields
            layer.carrier = item.carrier
            layer.location = item.location
            layer.shape = parsed.shape
            layer.problems.extend(parsed.problems)
            layer.warnings.extend(parsed.warnings)
        elif parsed.fields == chosen.fields:
            layer.warnings.append(
                f"a second, identical label copy in {item.carrier} ({item.location}); "
                "GB 45438 6.1 c) allows one label per file"
            )
        else:
            differing = [n for n in FIELD_NAMES if parsed.fields[n] != chosen.fields[n]]
            layer.problems.append(
                f"conflicting label copy in {item.carrier} ({item.location}): "
                f"differs in {', '.join(differing)}"
            )
    if unlisted:
        layer.warnings.append(f"{unlisted} further non-standard AI declarations are not listed")
    if layer.copies and chosen is None:
        # AIGC-named metadata exists but holds nothing readable: still evidence, never "no label".
        layer.present = True
        layer.carrier = layer.copies[0]["carrier"]
        layer.location = layer.copies[0]["location"]
    layer.valid = layer.present and chosen is not None and not layer.problems
    return layer
