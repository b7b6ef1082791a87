"""Turn the layers of a report into one verdict (Labeling Measures Art. 6 categories) and a confidence.

The rules, the confidence rule and a row-by-row table of layer combinations are in ``docs/verdicts.md``;
``tests/test_verdict.py`` checks every row of that table against :func:`decide`.

Verdict (first rule that applies):

1. a metadata label with ``Label`` "1"/"2"/"3" -> ``confirmed`` / ``possible`` / ``suspected``;
2. else our watermark in the pixels -> ``confirmed`` (it is only ever embedded into AI output);
3. else a C2PA manifest declaring AI content -> the category of the ``Label`` in its AIGC assertion,
   ``confirmed`` without one; but a manifest whose signature or hashes do not verify (not Trusted or
   Valid) cannot confirm: ``possible`` instead;
4. else AIGC metadata without a usable ``Label`` value -> ``possible``;
5. else a non-standard AI declaration -> ``possible``;
6. else an explicit label (visible mark, audio cue or voice prompt) -> ``possible``;
7. else ``none``.

Confidence (``None`` for ``none``): ``low`` when layers contradict each other; otherwise ``high`` when two
independent machine-readable layers back the verdict or a Trusted C2PA manifest does, ``medium`` for
one, ``low`` for none (only weak evidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detectors.metadata import MetadataLayer
from labeler.record import LABEL_MEANINGS, PROPAGATOR_FIELDS

__all__ = ["VERDICTS", "CONFIDENCES", "Decision", "decide", "cross_check", "METADATA_UNREADABLE"]

VERDICTS = ("confirmed", "possible", "suspected", "none")
#: The confidence vocabulary, strongest first; a report's ``confidence`` is one of these or None.
CONFIDENCES = ("high", "medium", "low")
_BY_LABEL = {"1": "confirmed", "2": "possible", "3": "suspected"}
_INTACT = ("Trusted", "Valid")
#: How ``layers.metadata.problems`` starts when the carriers could not be read (a damaged or hostile
#: container: :func:`detectors.verify` goes on with the other layers).
METADATA_UNREADABLE = "the metadata could not be read: "


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` concludes from the layers of one file.

    Attributes
    ----------
    verdict : str
        One of :data:`VERDICTS`.
    confidence : str or None
        One of :data:`CONFIDENCES`; None when the verdict is ``none``.
    reasons : tuple of str
        Why: the deciding layer first, then what the other layers add.
    warnings : tuple of str
        Findings across layers, for the report's top-level ``warnings``: contradictions, and a C2PA AIGC
        assertion in a file without a metadata label.
    contradictions : tuple of str
        What lowered the confidence to ``low``: the contradicting ``warnings``, and conflicting label
        copies inside the metadata (those are listed in ``layers.metadata.problems``).
    """

    verdict: str
    confidence: str | None
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    contradictions: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Facts:
    """The layers reduced to what the rules look at (one place, so rules and confidence agree)."""

    label: str | None  # the metadata Label value when it is 1/2/3
    wm: dict[str, Any] | None  # the watermark layer when our mark was found
    c2pa: dict[str, Any] | None  # the C2PA layer when a manifest is present
    c2pa_ai: bool  # the manifest declares AI content
    c2pa_not_ai: bool  # the manifest declares only non-AI digital source types (e.g. digitalCapture)
    c2pa_intact: bool  # Trusted or Valid
    c2pa_label: str | None  # Label (1/2/3) of the manifest's AIGC assertion
    copies_conflict: bool
    #: Why an absent metadata label says nothing about the file ("metadata not examined", "the metadata
    #: could not be read"); None when the metadata was read and holds no label.
    md_gap: str | None = None
    #: "C2PA not examined" when the C2PA layer was not looked at, else None.
    c2pa_gap: str | None = None
    #: "watermark not examined" when the watermark was not looked for (no key, or left out), else None.
    wm_gap: str | None = None
    #: The watermark layer as examined (found or not), for the soft binding's key check.
    wm_read: dict[str, Any] | None = None


def _facts(metadata: MetadataLayer, watermark: dict[str, Any] | None, c2pa: dict[str, Any] | None,
           examined: Sequence[str] | None = None) -> _Facts:
    label = metadata.label_value if metadata.present else None
    wm = watermark if watermark and watermark.get("present") else None
    cp = c2pa if c2pa and c2pa.get("present") else None
    fields = cp.get("aigc_fields") if cp else None
    c2pa_label = fields.get("Label") if isinstance(fields, dict) else None
    c2pa_label = c2pa_label if c2pa_label in _BY_LABEL else None
    ai = cp.get("ai_generated") if cp else None
    conflict = any(
        c.get("fields") is not None and c.get("fields") != metadata.fields for c in metadata.copies
    ) if metadata.fields else False
    md_gap = None
    if examined is not None and "metadata" not in examined:
        md_gap = "metadata not examined"
    elif not metadata.present and any(p.startswith(METADATA_UNREADABLE) for p in metadata.problems):
        md_gap = "the metadata could not be read"
    return _Facts(
        label=label if label in _BY_LABEL else None,
        wm=wm,
        c2pa=cp,
        # An AIGC assertion with a Label is a declaration too when the actions name no source type.
        c2pa_ai=bool(cp) and (ai is True or (ai is None and c2pa_label is not None)),
        c2pa_not_ai=bool(cp) and ai is False,
        c2pa_intact=bool(cp) and cp.get("state") in _INTACT,
        c2pa_label=c2pa_label,
        copies_conflict=conflict,
        md_gap=md_gap,
        c2pa_gap="C2PA not examined" if examined is not None and "c2pa" not in examined else None,
        wm_gap="watermark not examined" if examined is not None and "watermark" not in examined else None,
        wm_read=watermark,
    )


def decide(
    metadata: MetadataLayer,
    watermark: dict[str, Any] | None = None,
    c2pa: dict[str, Any] | None = None,
    visible: dict[str, Any] | None = None,
    examined: Sequence[str] | None = None,
) -> Decision:
    """Judge the layers read from one file.

    Parameters
    ----------
    metadata : MetadataLayer
        The implicit metadata label layer (an empty ``MetadataLayer()`` when there is none, e.g. for
        a bare pixel array).
    watermark : dict, optional
        ``layers.watermark`` as :func:`detectors.watermark_layer` builds it (only with a key).
    c2pa : dict, optional
        ``layers.c2pa`` (:meth:`detectors.c2pa.C2paLayer.to_dict`).
    visible : dict, optional
        ``layers.visible``: any ``kind`` (``image-text``, ``video-text``, ``audio-rhythm``,
        ``audio-voice``...).
    examined : sequence of str, optional
        ``report.examined``: the layers looked at (default: all). A layer left out is judged as absent
        (the rules do not change), but no reason or warning says it is absent: "metadata not
        examined" instead of "no metadata label". A metadata layer whose ``problems`` start with
        :data:`METADATA_UNREADABLE` (and that holds no label) is worded the same way: "could not be
        read", never "absent".

    Returns
    -------
    Decision
        Verdict, confidence, reasons and the cross-layer warnings; the rules are in
        ``docs/verdicts.md``. Never raises for odd layer contents.
    """
    f = _facts(metadata, watermark, c2pa, examined)
    seen = _explicit(visible)
    verdict, primary, reasons = _first_rule(metadata, f, seen)

    # What the other layers add, in a fixed order: metadata, watermark, C2PA, explicit label.
    if f.label is not None and not metadata.valid:
        reasons.append("the label does not fully comply with GB 45438 Appendix E (see problems)")
    if metadata.present and f.label is None and primary != "metadata":
        reasons.append(_bad_label_line(metadata))
    if f.wm is not None and primary != "watermark":
        where, agrees = _wm_where(f.wm), f.wm.get("matches_metadata")
        if agrees is True:
            reasons.append(f"{where} carries the payload of the label's ProduceID")
        elif agrees is False:
            reasons.append(f"{where} payload does not match the label's ProduceID (label changed or forged?)")
        else:
            reasons.append(f"{where} found (the label has no ProduceID to compare with)")
        if verdict != "confirmed" and agrees is not False:
            reasons.append(f"the watermark says AI-generated although the label says Label={f.label}")
    if f.c2pa is not None and primary != "c2pa" and (f.c2pa_ai or f.c2pa_not_ai):
        reasons.append(_c2pa_line(f.c2pa, ai=f.c2pa_ai))
    if seen is not None and primary != "visible":
        reasons.append(seen)
    binding_line = _soft_binding_line(f)
    if binding_line:
        reasons.append(binding_line)

    warnings, contradictions = _cross(metadata, f)
    if f.copies_conflict:
        contradictions.append("conflicting label copies in the metadata (see layers.metadata.problems)")
    return Decision(verdict, _confidence(verdict, f, contradictions), tuple(reasons), tuple(warnings),
                    tuple(contradictions))


def _first_rule(metadata: MetadataLayer, f: _Facts, seen: str | None) -> tuple[str, str | None, list[str]]:
    """The verdict of the first rule that applies, the layer that gave it (None for ``none``; its reason
    is not repeated among the others) and the first reason."""
    primary: str | None
    if f.label is not None:
        verdict, primary = _BY_LABEL[f.label], "metadata"
        reasons = [f"metadata label in {metadata.carrier or 'metadata'} says Label={f.label} "
                   f"({LABEL_MEANINGS[f.label]})"]
    elif f.wm is not None:
        verdict, primary = "confirmed", "watermark"
        where = _wm_where(f.wm)
        if metadata.present:
            reasons = [f"{where} found; the AIGC metadata has no usable Label value"]
        elif f.md_gap is not None:
            # not looked at (or unreadable) is not absent: no "no metadata label", no "stripped?"
            reasons = ["; ".join([f"{where} found", f.md_gap, *([f.c2pa_gap] if f.c2pa_gap else [])])]
        elif f.c2pa_ai:
            reasons = [f"{where} found but no metadata label"]
        elif f.c2pa_gap is not None:
            reasons = [f"{where} found but no metadata label (stripped?); {f.c2pa_gap}"]
        else:
            reasons = [f"watermark only: {where} found but no metadata label (stripped?)"]
    elif f.c2pa_ai:
        assert f.c2pa is not None
        primary = "c2pa"
        verdict = _BY_LABEL.get(f.c2pa_label or "", "confirmed")
        if verdict == "confirmed" and not f.c2pa_intact:
            verdict = "possible"  # a manifest that does not verify cannot confirm anything
        said = f" (its AIGC assertion says Label={f.c2pa_label})" if f.c2pa_label in ("2", "3") else ""
        reasons = [_c2pa_line(f.c2pa, ai=True) + said]
    elif metadata.present:
        verdict, primary = "possible", "metadata"
        reasons = [_bad_label_line(metadata)]
    elif metadata.declarations:
        kinds = ", ".join(sorted({d["carrier"] for d in metadata.declarations}))
        verdict, primary = "possible", "declaration"
        reasons = [f"non-standard AI declaration ({kinds}), not a GB 45438 label"]
    elif seen is not None:
        verdict, primary = "possible", "visible"
        # the watermark is a machine-readable label too: never called absent when not looked for
        gaps = [g for g in (f.md_gap, f.wm_gap, f.c2pa_gap) if g]
        reasons = [f"{seen}, but no machine-readable label" + (f" found ({'; '.join(gaps)})" if gaps else "")]
    else:
        verdict, primary = "none", None
        reasons = ["no AIGC label found"]
    return verdict, primary, reasons


def _confidence(verdict: str, f: _Facts, contradictions: list[str]) -> str | None:
    if verdict == "none":
        return None
    if contradictions:
        return "low"
    # Independent, intact, machine-readable layers pointing at AI content. A visible mark (anyone can
    # draw it), a non-standard declaration, a Label value outside 1/2/3 and a manifest that does not
    # verify are evidence for the verdict but do not count here.
    strong = (f.label is not None) + (f.wm is not None) + (f.c2pa_ai and f.c2pa_intact)
    trusted = f.c2pa_ai and f.c2pa is not None and f.c2pa.get("state") == "Trusted"
    if strong >= 2 or trusted:
        return "high"
    return "medium" if strong == 1 else "low"


def cross_check(
    metadata: MetadataLayer, watermark: dict[str, Any] | None, c2pa: dict[str, Any] | None,
    examined: Sequence[str] | None = None,
) -> list[str]:
    """Findings across layers, as report warnings (never exceptions).

    The same list as ``decide(..., examined=examined).warnings``: the watermark payload must match the
    label's ProduceID, the C2PA AIGC assertion must carry the same seven fields as the metadata label,
    the C2PA soft binding the same payload as the watermark in the pixels (when it names the key the
    pixels were read with), and a manifest that declares a non-AI source must not sit beside an AIGC
    label or our watermark.
    """
    return _cross(metadata, _facts(metadata, watermark, c2pa, examined))[0]


def _cross(metadata: MetadataLayer, f: _Facts) -> tuple[list[str], list[str]]:
    """``(warnings, contradictions)``; every contradiction is also a warning."""
    warnings: list[str] = []
    contradictions: list[str] = []

    def add(text: str, contradiction: bool = True) -> None:
        warnings.append(text)
        if contradiction:
            contradictions.append(text)

    if f.wm is not None and f.wm.get("matches_metadata") is False:
        add("the watermark payload does not match the metadata label's ProduceID")
    cp = f.c2pa
    if cp is None:
        return warnings, contradictions
    fields = cp.get("aigc_fields")
    if fields and metadata.present and metadata.fields and fields != metadata.fields:
        differing = [k for k in metadata.fields if fields.get(k) != metadata.fields.get(k)]
        if any(k not in PROPAGATOR_FIELDS for k in differing):
            add(f"the C2PA AIGC assertion differs from the metadata label in {', '.join(differing)}")
        else:
            # A platform's propagate step fills these in after the producer signed (Labeling Measures
            # Art. 6): expected on every propagated copy of a signed file, not a sign of tampering.
            add(f"the metadata label's propagator fields ({', '.join(differing)}) differ from the C2PA AIGC "
                "assertion: the label was propagated after signing", False)
    if fields and not metadata.present and f.md_gap is None:
        # Signed without the metadata layer, or the metadata was stripped: worth a look, but the
        # manifest says nothing the file contradicts. (Metadata not examined or unreadable: unknown.)
        add("the C2PA manifest carries an AIGC assertion but the file has no metadata label", False)
    binding = cp.get("soft_binding")
    if (
        binding
        and f.wm is not None
        and binding.get("payload")
        and _same_key(binding, f.wm)
        and str(binding["payload"]).lower() != str(f.wm.get("payload")).lower()
    ):
        add(f"the C2PA soft binding names another watermark payload than the one in the {_carrier(f.wm)}")
    if f.c2pa_not_ai and f.label is not None:
        add(f"the C2PA manifest does not declare AI generation but the metadata label says Label={f.label}")
    if f.c2pa_not_ai and f.wm is not None:
        add(f"the C2PA manifest does not declare AI generation but the {_carrier(f.wm)} carry the watermark")
    return warnings, contradictions


def _same_key(binding: dict[str, Any], wm: dict[str, Any]) -> bool:
    """The soft binding names the key the watermark was read with. A mark of another key (or a binding
    of another vendor's algorithm, which names no key of ours) cannot be compared: the pixels may carry
    both marks, and this key reads only its own."""
    bound = binding.get("key_id")
    return bound is not None and str(bound).lower() == str(wm.get("key_id")).lower()


def _soft_binding_line(f: _Facts) -> str | None:
    """The reason line for a soft binding of our watermark that could not be compared with the content.

    A binding made with another key than the one given is not checked (this key reads only its own
    mark). A binding of the key given whose mark was looked for in full and not found is said too: the
    manifest promises a mark the content does not carry, as when a manifest is copied from another file
    onto unmarked content, or the mark was destroyed (an investigator must not have to compare
    ``layers.c2pa.soft_binding`` with ``layers.watermark`` by hand). Not a contradiction: a mark can also
    be lost to a heavy re-encode, so the confidence is left as it is. Said nothing when the watermark
    layer decided nothing (``checked`` false) or searched less than it could (a ``note``, e.g. quick).
    """
    binding = f.c2pa.get("soft_binding") if f.c2pa is not None else None
    if not isinstance(binding, dict) or binding.get("key_id") is None or f.wm_read is None:
        return None
    if not _same_key(binding, f.wm_read):
        return (f"the C2PA soft binding names a watermark of key {binding['key_id']}, not of the key given "
                f"({f.wm_read.get('key_id')}): not checked")
    read = f.wm_read
    if f.wm is None and read.get("checked") and not read.get("note") and binding.get("payload"):
        return (f"the C2PA soft binding names a watermark of key {binding['key_id']} (payload "
                f"{binding['payload']}) that was not found with that key: the manifest may come from other "
                "content, or the mark was removed")
    return None


def _carrier(wm: dict[str, Any]) -> str:
    """What carried the watermark, as the contradictions name it: "sound samples" for audio (a WAV has no
    pixels), "pixels" for pictures and video frames."""
    return "sound samples" if wm.get("method") == "audio" else "pixels"


def _wm_where(wm: dict[str, Any]) -> str:
    p = wm.get("p_value")
    shown = f"{p:.1e}" if isinstance(p, (int, float)) else "?"
    return f"{wm.get('method')} watermark (key {wm.get('key_id')}, p={shown})"


def _c2pa_line(cp: dict[str, Any], *, ai: bool) -> str:
    stored = cp.get("source") == "store"
    what = "C2PA manifest recovered from the manifest store" if stored else "C2PA manifest"
    head = f"{what} ({cp.get('state') or 'not validated'}, signer {cp.get('signer')})"
    return f"{head} declares AI-generated content" if ai else f"{head} declares a non-AI digital source type"


def _bad_label_line(metadata: MetadataLayer) -> str:
    if metadata.fields is None:
        # no copy could be parsed, or the carrier itself is damaged (METADATA_UNREADABLE)
        where = f"in {metadata.carrier}" if metadata.carrier else "in the file"
        return f"AIGC metadata {where} but its value is not readable (see problems)"
    label = metadata.label_value
    shown = "missing" if label is None else repr(label)
    return f"AIGC metadata in {metadata.carrier or 'metadata'} but its Label value is {shown}, not 1/2/3"


def _explicit(visible: dict[str, Any] | None) -> str | None:
    """One line for an explicit label that was found, whatever its kind; None when there is none."""
    if not visible or not visible.get("present"):
        return None
    kind = str(visible.get("kind") or "")
    at, text = visible.get("position"), visible.get("text")
    if kind == "audio-rhythm":
        return f"audio rhythm cue (Morse AI) at {at} ({visible.get('seconds')} s)"
    if kind.startswith("audio"):
        said = f" {text!r}" if text else ""
        return f"audio voice prompt{said} at {at} ({visible.get('seconds')} s)"
    return f"visible label {text!r} at {at}"
