"""The platform step (Labeling Measures Art. 6): what a distribution platform does to a file on upload.

The rules, and why, are in ``docs/verdicts.md`` ("Propagation"). In short:

* the file has a GB 45438 metadata label -> every producer field is kept (``Label``, ``ContentProducer``,
  ``ProduceID``, ``ReservedCode1``), ``ContentPropagator``/``PropagateID`` become the platform's, and
  ``ReservedCode2`` becomes the platform's own protection data (empty by default): the previous
  propagator's value protected fields that are now replaced, so keeping it would leave a stale signature;
* no metadata label, and the uploader declares AI content -> a new label with ``Label`` "2" (Art. 6 (2));
* no metadata label, no declaration, but the verifier found traces (watermark, C2PA, a non-standard
  declaration) -> a new label with ``Label`` "3" (Art. 6 (3));
* in both of those the platform is the first writer, so it fills ``ContentProducer``/``ProduceID`` too
  (first-write rule), since the generator is unknown and guessing it would be forging a label (Art. 10);
* nothing at all -> an unchanged byte copy (``action == "copied"``), so an upload pipeline can run every
  file through this step;
* a label whose producer fields are not compliant -> :class:`~labeler.errors.LabelerError`: rewriting
  them would be tampering (Art. 10), and keeping them would write a non-compliant label; problems in the
  propagator fields alone (production services leave them out) do not refuse it, since they are replaced.

Only the metadata carrier is rewritten (:func:`labeler.metadata.write_label`): pixels and samples stay
byte for byte as they were.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labeler.atomic import atomic_output, check_paths
from labeler.errors import LabelerError
from labeler.formats import check_extension
from labeler.metadata import write_label
from labeler.record import AIGCLabel, field_problems, propagator_field_problem

#: Values of :attr:`PropagateResult.action`.
ACTIONS = ("propagated", "labeled", "copied")


@dataclass
class PropagateResult:
    """What :func:`propagate_file` did.

    Attributes
    ----------
    src, dst : str
        Input and output paths.
    action : {"propagated", "labeled", "copied"}
        ``propagated``: the producer's label was kept and the propagator fields filled;
        ``labeled``: the file had no label and the platform added one (Label "2" or "3");
        ``copied``: nothing to label, the output is a byte copy of the input.
    verdict : str
        The verification verdict of the input (``confirmed``, ``possible``, ``suspected``, ``none``).
    reasons : list of str
        Why: the verifier's reasons, then the rule applied.
    before : dict or None
        The seven fields of the input's label, as read; ``None`` when it had none.
    label : dict or None
        The seven fields written; ``None`` for ``copied``.
    carrier : str or None
        Where the label was written (``xmp-tc260``, ``id3-txxx``...).
    format : str or None
        Container format.
    warnings : list of str
        Things the platform should know: what the verifier warned about the upload (a damaged file, layers
        that contradict each other, one it could not examine), a C2PA manifest whose hard binding the new
        metadata breaks, a non-standard declaration left in place.
    """

    src: str
    dst: str
    action: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    before: dict[str, str | None] | None = None
    label: dict[str, str] | None = None
    carrier: str | None = None
    format: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "src": self.src,
            "dst": self.dst,
            "action": self.action,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "before": self.before,
            "label": self.label,
            "carrier": self.carrier,
            "format": self.format,
            "warnings": self.warnings,
        }


def propagate_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    propagator: str,
    propagate_id: str,
    declared_ai: bool = False,
    reserved_code2: str = "",
    key: bytes | None = None,
    trust_anchors: list[str] | None = None,
    overwrite: bool = False,
) -> PropagateResult:
    """Apply the distribution platform's labeling duty to ``src`` and write the result to ``dst``.

    Parameters
    ----------
    src : path
        The uploaded file; never modified.
    dst : path
        Output path, written atomically; must not be ``src``.
    propagator : str
        ContentPropagator: the platform's name or (preferred) 27-character TC260 code.
    propagate_id : str
        PropagateID: the platform's ID for this content.
    declared_ai : bool
        The uploader declared the content AI-generated (Art. 6 (2)); used only when the file has no label.
    reserved_code2 : str
        ReservedCode2, the propagator's protection data; replaces any previous propagator's value.
    key : bytes, optional
        Watermark key, so a stripped-but-watermarked file counts as "traces detected".
    trust_anchors : list of str, optional
        PEM files of trusted C2PA roots (passed to :func:`detectors.verify`).
    overwrite : bool
        Replace an existing ``dst`` (never ``src``).

    Returns
    -------
    PropagateResult

    Raises
    ------
    LabelerError
        One line: unreadable or unsupported input, a non-compliant existing label, invalid propagator
        values, an existing ``dst`` without ``overwrite`` or one that is not a regular file, a ``dst``
        whose extension belongs to another format (:class:`~labeler.errors.InvalidArgument`: a JPEG is
        never written as ``x.mp4``).
    """
    # detectors imports labeler: import here to keep the package graph acyclic
    from detectors import unexamined_warnings, verify

    src_p, dst_p = check_paths(src, dst, overwrite=overwrite)
    # Check the platform's own values first: a typo in --propagator must not depend on the file.
    check_platform_values(propagator, propagate_id, reserved_code2)
    report = verify(src_p, key=key, trust_anchors=trust_anchors)
    if report.verdict is None:
        raise LabelerError(report.errors[0] if report.errors else "file could not be read")
    if report.format:  # as label refuses it: the output keeps the input's format, whatever its name says
        check_extension(report.format, dst_p)
    result = PropagateResult(os.fspath(src), os.fspath(dst), "copied", report.verdict,
                             list(report.reasons), format=report.format)
    # What the verifier warned about the upload (a damaged file, layers that contradict each other) is the
    # platform's to know; "none" beside a layer it could not examine may only mean "could not look".
    unexamined = unexamined_warnings(report)
    result.warnings.extend(f"{w}; the file may carry traces this check did not see" if w in unexamined else w
                           for w in report.warnings)
    record = _platform_record(report, result, declared_ai, AIGCLabel(
        content_producer=propagator, produce_id=propagate_id, content_propagator=propagator,
        propagate_id=propagate_id, reserved_code2=reserved_code2))
    if record is None:  # a byte copy: a manifest in it still matches
        _copy(src_p, dst_p)
        result.reasons.append("no label, no declaration, no traces: copied unchanged")
        return result
    record.check()
    if report.c2pa and report.c2pa.get("present"):
        # The manifest's hard binding hashes the bytes we are about to change.
        result.warnings.append("the file's C2PA manifest will no longer match its bytes after the metadata "
                               "change; re-sign it as the propagator if the platform keeps C2PA")
    written = write_label(src_p, dst_p, record.to_json())
    result.label = record.as_dict()
    result.carrier = written.carrier
    for other in written.other_copies:
        what = "another label copy" if other.standard else "a non-standard AI declaration"
        result.warnings.append(f"{what} remains in {other.carrier} ({other.location}), left as it was")
    return result


def check_platform_values(propagator: str, propagate_id: str, reserved_code2: str) -> None:
    """Refuse bad propagator fields whatever the file holds (``aigc propagate``, ``aigc batch propagate``
    and ``POST /v1/propagate`` check them before any file is read).

    Raises
    ------
    LabelerError
        One line naming every field that breaks the standard's value rules.
    """
    problems = field_problems(
        {"ContentPropagator": propagator, "PropagateID": propagate_id, "ReservedCode2": reserved_code2}
    )
    problems = [p for p in problems if propagator_field_problem(p)]
    if problems:
        raise LabelerError("invalid propagator values: " + "; ".join(problems))


def _platform_record(report: Any, result: PropagateResult, declared_ai: bool,
                     platform: AIGCLabel) -> AIGCLabel | None:
    """The record Art. 6 asks the platform to write (``result``'s action and reasons updated), or None
    when the file is copied unchanged. ``report`` is the upload's :class:`detectors.report.Report`;
    ``platform`` holds the propagator's fields (its Label is set here)."""
    md = report.metadata
    if md is not None and md.present:
        fields = dict(md.fields or {})
        result.before = fields
        # The propagator fields are replaced below: only problems in the producer's count.
        replaced = [p for p in md.problems if propagator_field_problem(p)]
        kept = [p for p in md.problems if p not in replaced]
        why = "; ".join(kept) or f"Label is {fields.get('Label')!r}"
        if not any(fields.values()):  # a damaged carrier, or no copy parsed: there is no label to keep
            raise LabelerError(f"the file's label could not be read ({why}); not propagated: a label "
                               "written over it would hide the producer's (Labeling Measures Art. 10)")
        if kept or fields.get("Label") not in ("1", "2", "3"):
            raise LabelerError(f"the file's label is not compliant ({why}); not propagated: rewriting the "
                               "producer's fields would be tampering (Labeling Measures Art. 10)")
        result.action = "propagated"
        result.reasons.append("label kept; propagator fields filled (Labeling Measures Art. 6 (4))")
        if replaced:
            result.reasons.append("the label's own propagator fields replaced: " + "; ".join(replaced))
        return AIGCLabel.from_fields({k: v or "" for k, v in fields.items()}).replace(
            content_propagator=platform.content_propagator, propagate_id=platform.propagate_id,
            reserved_code2=platform.reserved_code2,
        )
    if not (declared_ai or report.verdict != "none"):
        return None
    # Art. 6 order: a declaration decides before detected traces (item (3) applies only without one).
    result.action = "labeled"
    result.reasons.append(
        "no metadata label; the uploader declares AI content -> Label=2 (Labeling Measures Art. 6 (2))"
        if declared_ai
        else "no metadata label; traces of generation detected -> Label=3 (Labeling Measures Art. 6 (3))"
    )
    return platform.replace(label="2" if declared_ai else "3")


def _copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, atomic_output(dst) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
