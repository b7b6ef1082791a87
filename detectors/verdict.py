"""Turn the layers of a report into one verdict (Labeling Measures Art. 6 categories).

``confirmed``  a label says AI-generated (Label "1");
``possible``   a label says "possibly" (Label "2"), or AIGC metadata is present but its Label value
               is not one of 1/2/3, or only a non-standard AI declaration was found;
``suspected``  a label says "suspected" (Label "3");
``none``       no layer found anything.
See ``docs/report.md`` for the table.
"""

from __future__ import annotations

from typing import Any

from detectors.metadata import MetadataLayer
from labeler.record import LABEL_MEANINGS

VERDICTS = ("confirmed", "possible", "suspected", "none")
_BY_LABEL = {"1": "confirmed", "2": "possible", "3": "suspected"}


def decide(metadata: MetadataLayer, watermark: dict[str, Any] | None = None) -> tuple[str, list[str]]:
    """Return ``(verdict, reasons)`` for the layers read so far.

    The metadata label decides when present; a watermark confirms or contradicts it, and a watermark
    alone (metadata stripped) is ``confirmed``: our watermark is only ever embedded into AI output.
    """
    verdict, reasons = _from_metadata(metadata)
    if watermark and watermark.get("present"):
        where = f"{watermark['method']} watermark (key {watermark['key_id']}, p={watermark['p_value']:.1e})"
        agrees = watermark.get("matches_metadata")
        if not metadata.present:
            return "confirmed", [f"watermark only: {where} found but no metadata label (stripped?)"]
        if agrees is True:
            reasons.append(f"{where} carries the payload of the label's ProduceID")
        elif agrees is False:
            reasons.append(f"{where} payload does not match the label's ProduceID (label changed or forged?)")
        if verdict != "confirmed" and agrees is not False:
            label = metadata.label_value
            reasons.append(f"the watermark says AI-generated although the label says Label={label}")
    return verdict, reasons


def _from_metadata(metadata: MetadataLayer) -> tuple[str, list[str]]:
    if metadata.present:
        label = metadata.label_value
        where = metadata.carrier or "metadata"
        if label in _BY_LABEL:
            reasons = [f"metadata label in {where} says Label={label} ({LABEL_MEANINGS[label]})"]
            if not metadata.valid:
                reasons.append("the label does not fully comply with GB 45438 Appendix E (see problems)")
            return _BY_LABEL[label], reasons
        shown = "missing" if label is None else repr(label)
        return "possible", [f"AIGC metadata in {where} but its Label value is {shown}, not 1/2/3"]
    if metadata.declarations:
        kinds = ", ".join(sorted({d["carrier"] for d in metadata.declarations}))
        return "possible", [f"non-standard AI declaration ({kinds}), not a GB 45438 label"]
    return "none", ["no AIGC label found"]
