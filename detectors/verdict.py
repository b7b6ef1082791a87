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


def decide(
    metadata: MetadataLayer,
    watermark: dict[str, Any] | None = None,
    c2pa: dict[str, Any] | None = None,
    visible: dict[str, Any] | None = None,
) -> tuple[str, list[str]]:
    """Return ``(verdict, reasons)`` for the layers read so far.

    The metadata label decides when present; a watermark confirms or contradicts it, and a watermark
    alone (metadata stripped) is ``confirmed``: our watermark is only ever embedded into AI output.
    Without either, a C2PA manifest whose actions declare an AI digital source type decides:
    ``confirmed`` when its signature is intact (Trusted or Valid), ``possible`` when it is Invalid.
    A visible "AI生成"-style mark alone gives ``possible``: the text is seen, but anyone can draw it
    and no machine-readable layer backs it.
    """
    verdict, reasons = _from_metadata(metadata)
    if visible and visible.get("present"):
        if visible.get("kind") == "audio-rhythm":
            seen = f"audio rhythm cue (Morse AI) at {visible.get('position')} ({visible.get('seconds')} s)"
        else:
            seen = f"visible label {visible.get('text')!r} at {visible.get('position')}"
        if verdict == "none" and not (watermark and watermark.get("present")) and not (
            c2pa and c2pa.get("present") and c2pa.get("ai_generated")
        ):
            return "possible", [f"{seen}, but no machine-readable label"]
        reasons.append(seen)
    claims_ai = bool(c2pa and c2pa.get("present") and c2pa.get("ai_generated"))
    if claims_ai and c2pa is not None:
        state = c2pa.get("state")
        signed_by = f"C2PA manifest ({state}, signer {c2pa.get('signer')}) declares AI-generated content"
        if verdict == "none" and not (watermark and watermark.get("present")):
            return ("confirmed" if state in ("Trusted", "Valid") else "possible"), [signed_by]
        reasons.append(signed_by)
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


def cross_check(
    metadata: MetadataLayer, watermark: dict[str, Any] | None, c2pa: dict[str, Any] | None
) -> list[str]:
    """Contradictions between layers, as report warnings (never exceptions).

    The C2PA AIGC assertion must carry the same seven fields as the metadata label, and the C2PA soft
    binding the same payload as the watermark found in the pixels.
    """
    out: list[str] = []
    if not c2pa or not c2pa.get("present"):
        return out
    fields = c2pa.get("aigc_fields")
    if fields and metadata.present and metadata.fields and fields != metadata.fields:
        differing = [k for k in metadata.fields if fields.get(k) != metadata.fields.get(k)]
        out.append(f"the C2PA AIGC assertion differs from the metadata label in {', '.join(differing)}")
    if fields and metadata.present is False:
        out.append("the C2PA manifest carries an AIGC assertion but the file has no metadata label")
    binding = c2pa.get("soft_binding")
    if (
        binding
        and watermark
        and watermark.get("present")
        and binding.get("payload")
        and str(binding["payload"]).lower() != str(watermark.get("payload")).lower()
    ):
        out.append("the C2PA soft binding names another watermark payload than the one in the pixels")
    if c2pa.get("ai_generated") is False and metadata.present and metadata.label_value == "1":
        out.append("the C2PA manifest does not declare AI generation but the metadata label says Label=1")
    return out
