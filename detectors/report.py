"""The verification report: one per file, JSON-ready, with a one-line human summary.

The schema is documented in ``docs/report.md`` and ``docs/report.schema.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from detectors.metadata import MetadataLayer
from labeler.errors import LabelerError

#: Identifies the report layout; bumped on incompatible changes.
SCHEMA = "aigc-verify/1"


@dataclass
class Report:
    """The result of verifying one file.

    Attributes
    ----------
    file : str
        The path as given; ``"<bytes>"`` or ``"<array>"`` for data verified from memory.
    format : str or None
        Container format from the content (``jpeg``, ``mp4``...); ``None`` if unrecognised.
    medium : str or None
        ``image``, ``audio`` or ``video``.
    size : int or None
        File size in bytes (of the encoded data for bytes; ``None`` for an array).
    verdict : str or None
        ``confirmed``, ``possible``, ``suspected`` or ``none``; ``None`` when the
        file could not be read (see ``errors``): unreadable is not the same as unlabeled.
    confidence : str or None
        How strongly the layers back the verdict: ``high``, ``medium`` or ``low``
        (rule in ``docs/verdicts.md``); ``None`` when the verdict is ``none`` or ``None``.
    reasons : list of str
        Why the verdict is what it is.
    metadata : MetadataLayer or None
        The implicit metadata label layer.
    watermark : dict or None
        The invisible watermark layer (only when a key was given); see ``docs/report.md``.
    c2pa : dict or None
        The C2PA manifest layer (see :class:`detectors.c2pa.C2paLayer`).
    visible : dict or None
        The explicit label layer: visible mark (images, video), audio cue or voice prompt.
    errors : list of str
        Why the file could not be read; non-empty means the verdict is ``None``.
    warnings : list of str
        File-level findings that do not stop reading (e.g. an extension that contradicts the content).
    examined : list of str
        The layers examined (of ``metadata``, ``c2pa``, ``watermark``, ``visible``, in that order): a
        layer missing from ``layers`` and from this list was not looked at, which says nothing about
        whether the file carries it. Empty when the file could not be read.
    """

    file: str
    format: str | None = None
    medium: str | None = None
    size: int | None = None
    verdict: str | None = None
    confidence: str | None = None
    reasons: list[str] = field(default_factory=list)
    metadata: MetadataLayer | None = None
    watermark: dict[str, Any] | None = None
    c2pa: dict[str, Any] | None = None
    visible: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    examined: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file was read (whatever the verdict)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, keys in a stable order."""
        layers: dict[str, Any] = {}
        if self.metadata is not None:
            layers["metadata"] = self.metadata.to_dict()
        if self.watermark is not None:
            layers["watermark"] = self.watermark
        if self.visible is not None:
            layers["visible"] = self.visible
        if self.c2pa is not None:
            layers["c2pa"] = self.c2pa
        return {
            "schema": SCHEMA,
            "file": self.file,
            "format": self.format,
            "medium": self.medium,
            "size": self.size,
            "verdict": self.verdict,
            "confidence": self.confidence,
            "reasons": self.reasons,
            "layers": layers,
            "examined": self.examined,
            "errors": self.errors,
            "warnings": self.warnings,
        }

    def to_json(self) -> str:
        """One line of JSON (for JSON Lines output), valid UTF-8 whatever the file name.

        Returns
        -------
        str
            :func:`json_line` of :meth:`to_dict`. Text is written as itself (``AI生成`` stays
            readable), except what could break the line or the encoding, which is escaped the JSON way
            (``\\uXXXX``): a file name that is not valid UTF-8 (an old ZIP or Windows archive) reaches
            Python as lone surrogates, one per undecodable byte (``caf\\xe9.jpg`` is ``"caf\\udce9.jpg"``);
            written raw they would make the line invalid UTF-8, replaced by U+FFFD the name would no
            longer name the file. The escape is plain ASCII, so the output is valid UTF-8 JSON (RFC 8259),
            and ``os.fsencode(json.loads(line)["file"])`` gives the file's bytes back (``jq`` shows the
            byte as U+FFFD). C1 controls and U+2028/U+2029 are escaped too: readers that split lines on
            them (Python's ``str.splitlines``, older JavaScript) still see one report per line.
        """
        return json_line(self.to_dict())

    def summary(self) -> str:
        """A short human summary: ``FILE: verdict (confidence) - details``.

        Control characters in it (the file name, the label's fields, a signer's name, a reason quoting
        them: all chosen by whoever made the file) are escaped by :func:`printable`, so each file gives
        exactly one line and no terminal escape sequence.
        """
        return printable(self._summary())

    def text_lines(self) -> list[str]:
        """What ``aigc verify`` prints for this file without ``--json``.

        Returns
        -------
        list of str
            The :meth:`summary` line, then one indented ``problem:`` line per metadata problem and one
            ``warning:`` line per warning, each passed through :func:`printable` (a warning may quote a
            field or a C2PA assertion): never more lines than these.
        """
        lines = [self.summary()]
        if self.metadata is not None:
            lines += [printable(f"  problem: {problem}") for problem in self.metadata.problems]
        lines += [printable(f"  warning: {warning}") for warning in self.warnings]
        return lines

    def _summary(self) -> str:
        if self.errors:
            return f"{self.file}: error - {self.errors[0]}"
        parts = [f"{self.file}: {self.verdict}" + (f" ({self.confidence})" if self.confidence else "")]
        md = self.metadata
        if md is not None and md.present and md.fields:
            f = md.fields
            parts.append(
                f"metadata {md.carrier} Label={f.get('Label')} producer={f.get('ContentProducer')} "
                f"id={f.get('ProduceID')}" + ("" if md.valid else f" [{len(md.problems)} problem(s)]")
            )
        elif self.reasons:
            parts.append(self.reasons[0])
        wm = self.watermark
        if wm is not None and wm.get("present"):
            agree = {True: ", matches metadata", False: ", DOES NOT match metadata", None: ""}
            parts.append(f"watermark {wm['method']} payload={wm['payload']} p={wm['p_value']:.1e}"
                         + agree[wm.get("matches_metadata")])
        elif wm is not None and wm.get("checked") and wm.get("frames_read") and _read_stopped(wm.get("note")):
            # A video read that stopped part-way (a decoding error, a cut): the frames read were judged
            # and hold no mark; the rest was not seen (the note says where it stopped).
            parts.append(f"watermark not found in the {wm['frames_read']} frames read ({wm['note']})")
        elif wm is not None and wm.get("note"):
            # A key was given and nothing was decided (too short, not searched): "no watermark" would
            # read as "looked and found none".
            parts.append(f"watermark not decided: {wm['note']}")
        vis = self.visible
        # Named beside the layer that gave the verdict; when the mark alone gave it, reasons[0] names it.
        cp = self.c2pa
        other = ((md is not None and md.present) or (wm is not None and wm.get("present"))
                 or (cp is not None and cp.get("present") and cp.get("ai_generated")))
        if vis is not None and vis.get("present") and other:
            parts.append(_visible_words(vis))
        if cp is not None and cp.get("present"):
            ai = {True: ", AI-generated", False: ", not AI-generated", None: ""}[cp.get("ai_generated")]
            ts = cp.get("time_stamp") or {}
            # The TSA's time is what makes the signing time credible; show it when there is one.
            stamped = (f", time-stamped {ts['time']}" + (f" by {ts['tsa']}" if ts.get("tsa") else "")
                       if ts.get("time") else "")
            # A manifest looked up by the watermark is not in the file (its hard binding cannot match
            # a re-encoded copy): say where it came from, as the reasons do.
            recovered = " recovered from the manifest store" if cp.get("source") == "store" else ""
            if recovered and (cp.get("candidates") or 1) > 1:
                recovered += f" (1 of {cp['candidates']} stored manifests for this mark)"
            # An Invalid manifest names its failures (a hash mismatch: the content was changed after
            # signing; a signature mismatch: the manifest itself was), as the JSON report's codes do.
            failed = [c for c in cp.get("codes") or [] if c != "signingCredential.untrusted"]
            why = f" ({', '.join(failed)})" if cp.get("state") == "Invalid" and failed else ""
            if cp.get("state"):
                parts.append(f"c2pa {cp['state']}{why}{recovered} signer={cp.get('signer')}{ai}{stamped}")
            else:  # a remote-only manifest not fetched, or one c2pa-rs could not read: say which
                parts.append(f"c2pa not validated ({cp.get('error') or 'unreadable'})")
        elif cp is not None and cp.get("error"):
            # the file could not be parsed for C2PA at all: "no label" alone would hide that
            parts.append(f"c2pa not read ({cp['error']})")
        # --layers / --quick / --no-visible: say what was skipped, so a verdict of none is not read as
        # "checked and absent" for those layers.
        # The watermark is named only on a "none": without a key it is never searched, and a stripped,
        # marked file would otherwise read as checked and clean (QA).
        named = ("metadata", "c2pa", "watermark", "visible") if self.verdict == "none" else (
            "metadata", "c2pa", "visible")
        # C2PA defines no manifest for Ogg, Matroska, WebM or FLV: nothing there to look at, so not
        # "not examined" either (a user could do nothing to have it examined).
        skipped = [n for n in named if n not in self.examined and (n != "c2pa" or _holds_c2pa(self.format))]
        if self.format is None:
            # A pixel array (a file read has a format): it has no container, so its metadata label and
            # manifest are absent by construction, as its reasons say; "not examined" contradicted them.
            skipped = [n for n in skipped if n not in ("metadata", "c2pa")]
        if skipped:
            parts.append(f"not examined: {', '.join(skipped)}")
        return " - ".join(parts)


def _holds_c2pa(fmt: str | None) -> bool:
    """Whether C2PA defines a manifest for files of format ``fmt`` (true when it is not known)."""
    from labeler.formats import format_info

    try:
        return fmt is None or format_info(fmt).c2pa
    except LabelerError:
        return True


def _read_stopped(note: object) -> bool:
    """Whether a watermark layer's ``note`` says the video's frames stopped part-way (a decoding error or
    a cut: :data:`detectors.watermark_video.READ_STOPPED`)."""
    if not note:
        return False
    from detectors.watermark_video import READ_STOPPED  # here: only a video's note needs it (cv2)

    return str(note).startswith(READ_STOPPED)


def _visible_words(vis: dict[str, Any]) -> str:
    """``visible 'AI生成' at bottom-right``, or for audio every kind and place found, in time order
    (``voice prompt at start + rhythm cue at end``: a file given both labels names both)."""
    def words(kind: str, position: Any) -> str:
        what = ("rhythm cue" if kind == "audio-rhythm" else "voice prompt" if kind.startswith("audio")
                else f"visible {vis.get('text')!r}")
        return f"{what} at {position}"

    seen: list[str] = []
    for found in vis.get("found") or [{"kind": str(vis.get("kind") or ""), "position": vis.get("position")}]:
        text = words(str(found.get("kind") or ""), found.get("position"))
        if text not in seen:
            seen.append(text)
    return " + ".join(seen)


# What the human line escapes: C0 and C1 controls and DEL (line breaks, terminal escape sequences), the
# Unicode line and paragraph separators, lone surrogates (undecodable bytes of a file name), and the bidi
# embedding, override and isolate controls, which reorder the rest of the line on screen (a name could
# make a verdict read backwards). Other Unicode, Chinese text included, is printed as it is.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What JSON output escapes beyond json.dumps: lone surrogates (invalid UTF-8 otherwise) and the
# characters some line splitters break on that json.dumps(ensure_ascii=False) leaves raw.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte: show that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` safe to print as part of one line: control characters escaped as in Python's ``repr``.

    Parameters
    ----------
    text : str
        A line that may hold strings from a file under examination (its name, its label's fields).

    Returns
    -------
    str
        ``text`` with line breaks, C0/C1 controls and DEL as ``\\n``, ``\\r``, ``\\t``, ``\\x1b``...,
        U+2028/U+2029 and the bidi embedding/override/isolate controls as ``\\u2028``..., and a file
        name's undecodable byte (a lone surrogate from ``os.fsdecode``) as ``\\xe9``; everything else,
        backslashes and Chinese text included, unchanged. For people: the JSON report is the exact form.
    """
    return _UNPRINTABLE.sub(_escape, text)


def json_line(obj: Any) -> str:
    """``obj`` as one line of JSON that encodes to valid UTF-8 (see :meth:`Report.to_json`).

    Parameters
    ----------
    obj : Any
        JSON-ready data (``Report.to_dict()``, a batch journal record, a label result).

    Returns
    -------
    str
        Compact JSON with text as itself, except lone surrogates (a file name's undecodable bytes),
        C1 controls, DEL and U+2028/U+2029, which are ``\\uXXXX`` escapes; ``json.loads`` returns the
        same ``str``, so ``os.fsencode`` of a name gives its bytes back.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # These characters occur only inside JSON strings, where an escape stands for the same character.
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
