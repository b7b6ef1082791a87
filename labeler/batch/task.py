"""What a batch does with each file: :class:`BatchTask` (``label``, ``verify`` or ``propagate``) and its
groups - the :class:`RecordTemplate`, the :class:`~labeler.options.LabelOptions`, the :class:`SignerRef`,
the :class:`VerifySettings` and the :class:`PropagateSettings` - all frozen and picklable, so they travel
once to each worker process; the ProduceID / PropagateID templates are checked here, before any file is
touched."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labeler.errors import LabelerError
from labeler.options import LabelOptions, SignerRef

__all__ = ["ID_PLACEHOLDERS", "PROPAGATE_ID_FIELDS", "BatchTask", "PropagateSettings", "RecordTemplate",
           "SignerRef", "VerifySettings", "absolute_paths"]

#: Placeholders allowed in ProduceID / PropagateID templates.
ID_PLACEHOLDERS = ("path_hash", "content_hash")
#: Placeholders of a ``propagate`` batch's PropagateID template: those of :data:`ID_PLACEHOLDERS` plus
#: the file's name (``name``), its name without the last extension (``stem``) and its path relative to
#: SRC (``relpath``, ``/``-separated).
PROPAGATE_ID_FIELDS = (*ID_PLACEHOLDERS, "stem", "name", "relpath")
# "s3://bucket/x", "gs://...", "file://...": fsspec-style URLs, refused for SRC and DST.
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class RecordTemplate:
    """The AIGC label record of a ``label`` batch, with per-file ID templates.

    Attributes
    ----------
    producer : str
        ContentProducer, as for ``aigc label --producer``.
    produce_id : str
        ProduceID template, one per file: literal text plus ``{path_hash}`` (16 hex digits of SHA-256 of
        the relative path: stable across runs) and/or ``{content_hash}`` (16 hex digits of SHA-256 of
        the file's bytes). Default ``{path_hash}``.
    label : {"1", "2", "3"}
        AI-generated, possibly, suspected.
    reserved_code1, reserved_code2 : str
        The producer's and the propagator's protection data.
    propagator, propagate_id : str or None
        ContentPropagator and its ID template (same placeholders); ``None`` applies the first-write rule.
    """

    producer: str = ""
    produce_id: str = "{path_hash}"
    label: str = "1"
    reserved_code1: str = ""
    propagator: str | None = None
    propagate_id: str | None = None
    reserved_code2: str = ""

    def check(self) -> None:
        """Refuse an unknown placeholder or a bad label value before any file is touched (one line)."""
        for template in (self.produce_id, self.propagate_id):
            if template is not None:
                _check_template(template)
        # A label with sample IDs shows bad producer/propagator values before the first file.
        self.make_label("0" * 16, lambda: "0" * 16).check()

    def make_label(self, path_hash: str, content_hash: Callable[[], str]) -> Any:
        """The :class:`~labeler.record.AIGCLabel` for one file (``content_hash`` is called only if used)."""
        from labeler.record import AIGCLabel

        def fill(template: str | None) -> str | None:
            if template is None:
                return None
            values = {"path_hash": path_hash}
            if "{content_hash" in template:
                values["content_hash"] = content_hash()
            return template.format_map(_Missing(values))

        return AIGCLabel(
            content_producer=self.producer,
            produce_id=fill(self.produce_id) or "",
            label=self.label,
            reserved_code1=self.reserved_code1,
            content_propagator=self.propagator,
            propagate_id=fill(self.propagate_id),
            reserved_code2=self.reserved_code2,
        )


@dataclass(frozen=True)
class VerifySettings:
    """What a ``verify`` batch examines and with what: the keyword arguments of :func:`detectors.verify`.

    Kept here rather than as :class:`detectors.VerifyOptions` because ``labeler`` never imports
    ``detectors`` at import time (a label batch must start without it).

    Attributes
    ----------
    key : bytes or None
        Watermark key: also look for our invisible watermark.
    trust_anchors : tuple of str
        C2PA trust anchor PEM files.
    visible : bool
        Also search for our visible mark / audio cue (the slow layer).
    layers : tuple of str or None
        The layers to examine (:data:`detectors.VERIFY_LAYERS` names; None: all, less ``visible`` when
        ``visible`` is false); each report's ``examined`` lists them.
    manifest_store : str or None
        Manifest store (SQLite file) a stripped file's manifest is recovered from.
    """

    key: bytes | None = field(default=None, repr=False)  # a secret: never in logs or tracebacks
    trust_anchors: tuple[str, ...] = ()
    visible: bool = True
    layers: tuple[str, ...] | None = None
    manifest_store: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`detectors.verify`."""
        return {"key": self.key, "trust_anchors": list(self.trust_anchors) or None, "visible": self.visible,
                "manifest_store": self.manifest_store, "layers": self.layers}


@dataclass(frozen=True)
class PropagateSettings:
    """What a ``propagate`` batch does with each file: the arguments of
    :func:`labeler.propagate.propagate_file`, with the PropagateID from a template or a list.

    Attributes
    ----------
    propagator : str
        ContentPropagator: the platform's code or name.
    propagate_id : str or None
        PropagateID template, one per file (:data:`PROPAGATE_ID_FIELDS`); exactly one of it and
        ``ids_file``.
    ids_file : str or None
        CSV of ``relative path,PropagateID`` (docs/batch.md); a file not in it fails, journaled.
    reserved_code2 : str
        ReservedCode2, the platform's protection data.
    declared_ai : bool
        Every uploader declared AI content (Art. 6 (2)): an unlabeled file gets Label 2.
    key : bytes or None
        Watermark key: a found watermark counts as a trace of generation.
    trust_anchors : tuple of str
        C2PA trust anchor PEM files.
    overwrite : bool
        Replace outputs that exist (not part of :meth:`BatchTask.fingerprint`).
    """

    propagator: str = ""
    propagate_id: str | None = None
    ids_file: str | None = None
    reserved_code2: str = ""
    declared_ai: bool = False
    key: bytes | None = field(default=None, repr=False)  # a secret: never in logs or tracebacks
    trust_anchors: tuple[str, ...] = ()
    overwrite: bool = False

    def check(self) -> None:
        """Refuse bad platform values, a bad template or an unreadable ID list (one line), before any file."""
        # propagate_file's own check of the platform's values, applied to a sample ID
        from labeler.propagate import check_platform_values

        if (self.propagate_id is None) == (self.ids_file is None):
            raise LabelerError("a propagate batch needs one of a PropagateID template (--propagate-id) and "
                               "an ID list (--ids)")
        if self.propagate_id is not None:
            _check_template(self.propagate_id, PROPAGATE_ID_FIELDS)
            sample = self.make_id("d/s.x", lambda: "0" * 16)
        else:
            from labeler.batch.propagate_job import read_ids

            read_ids(self.ids_file or "")  # a malformed list stops the batch here, not file by file
            sample = "0"
        check_platform_values(self.propagator, sample, self.reserved_code2)

    def make_id(self, rel: str, content_hash: Callable[[], str]) -> str:
        """The template's PropagateID for the file at ``rel`` (``content_hash`` called only if used)."""
        import posixpath

        name = posixpath.basename(rel)
        values = {"path_hash": _path_hash(rel), "relpath": rel, "name": name,
                  "stem": posixpath.splitext(name)[0] or name}
        template = self.propagate_id or ""
        if "{content_hash" in template:
            values["content_hash"] = content_hash()
        return template.format_map(_Missing(values))

    def fingerprint_part(self) -> tuple[Any, ...]:
        """What :meth:`BatchTask.fingerprint` takes from these settings: not the key (its ID instead), not
        ``overwrite``, and of the ID list only that there is one (editing it adds IDs for the files that
        failed without one: ``--retry-errors`` redoes those, and the others stay done)."""
        from labeler.watermark.keyfile import key_id

        return (self.propagator, self.propagate_id, self.ids_file is not None, self.reserved_code2,
                self.declared_ai, None if self.key is None else key_id(self.key), self.trust_anchors)


@dataclass(frozen=True)
class BatchTask:
    """What to do with each file; picklable, so it is sent once to each worker process.

    Attributes
    ----------
    kind : {"label", "verify", "propagate"}
        The per-file function.
    src_root : str
        SRC: relative paths (the journal key and the mirror under ``dst_root``) are taken from here.
    dst_root : str or None
        DST, required for ``label`` and ``propagate``: outputs mirror SRC under it.
    record : RecordTemplate
        ``label``: the label record, its IDs filled in per file.
    options : LabelOptions
        ``label``: the layers and their option groups, as for :func:`labeler.pipeline.run_stages`
        (``options.output.overwrite`` replaces outputs that exist and were not written by this task).
        Its C2PA signer stays None: the signer travels as ``signer``.
    signer : SignerRef or None
        ``label``: the C2PA signer, rebuilt once in each worker.
    verify : VerifySettings
        ``verify``: what each file is examined for.
    propagate : PropagateSettings
        ``propagate``: the platform's values and where each file's PropagateID comes from.
    """

    kind: str
    src_root: str
    dst_root: str | None = None
    record: RecordTemplate = field(default_factory=RecordTemplate)
    options: LabelOptions = field(default_factory=LabelOptions)
    signer: SignerRef | None = None
    verify: VerifySettings = field(default_factory=VerifySettings)
    propagate: PropagateSettings = field(default_factory=PropagateSettings)

    def check(self) -> BatchTask:
        """Validate before any file is touched; raise :class:`LabelerError` (one line) otherwise."""
        if self.kind not in ("label", "verify", "propagate"):
            raise LabelerError(f"unknown batch kind {self.kind!r} (label, verify or propagate)")
        for name, root in (("SRC", self.src_root), ("DST", self.dst_root)):
            if root and _URL_RE.match(root):
                # fsspec storage would need every reader and writer (Pillow, ffmpeg, c2pa) to stream
                # through it; until then workers share files through a mounted file system.
                raise LabelerError(f"{name} {root}: URLs are not supported yet; mount the storage on every "
                                   "worker and give its path")
        if not Path(self.src_root).is_dir():
            raise LabelerError(f"SRC is not a folder: {self.src_root}")
        if self.kind in ("label", "propagate"):
            if not self.dst_root:
                raise LabelerError(f"a {self.kind} batch needs DST")
            if Path(self.dst_root).resolve() == Path(self.src_root).resolve():
                # outputs mirror SRC under DST: every output would be its own input (refused file by
                # file, after the journal was already written into SRC)
                raise LabelerError(f"DST is SRC: {self.kind} into another folder (SRC is never modified)")
        if self.kind == "propagate":
            self.propagate.check()
        if self.kind == "label":
            from labeler.pipeline import parse_layers

            if self.options.c2pa.signer is not None:
                raise LabelerError("a batch takes its C2PA signer as BatchTask.signer (a SignerRef that each "
                                   "worker rebuilds), not in options")
            parse_layers(self.options.layers)
            self.record.check()
        return self

    def fingerprint(self) -> str:
        """16 hex digits that name what this task does to a file: the kind, the record template, the
        layers and their options, the signer and the verify settings; not where the files are, not
        ``overwrite``, and keys only as their IDs. A journal line carries it, so a re-run with other
        options does not take files done with the old ones as done
        (:func:`labeler.batch.journal.read_journal`).
        """
        import hashlib
        from dataclasses import asdict

        from labeler.watermark.keyfile import key_id

        def kid(key: bytes | None) -> str | None:
            return None if key is None else key_id(key)

        options = replace(self.options, watermark=replace(self.options.watermark, key=None),
                          output=replace(self.options.output, overwrite=False))
        settings = replace(self.verify, key=None)
        what: tuple[Any, ...] = (
            self.kind, asdict(self.record), asdict(options), kid(self.options.watermark.key),
            None if self.signer is None else asdict(self.signer), asdict(settings), kid(self.verify.key))
        if self.kind == "propagate":  # appended only here: label and verify journals keep their fingerprints
            what += self.propagate.fingerprint_part()
        return hashlib.blake2b(repr(what).encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()

    def label_options(self, signer: Any = None) -> LabelOptions:
        """The :class:`~labeler.options.LabelOptions` of every file, with the worker's built ``signer``."""
        from labeler.pipeline import parse_layers

        return replace(self.options, layers=parse_layers(self.options.layers)).with_signer(signer)


class _Missing(dict):
    def __missing__(self, name: str) -> str:
        raise LabelerError(f"unknown placeholder {{{name}}} in an ID template ({', '.join(ID_PLACEHOLDERS)})")


def _check_template(template: str, known: tuple[str, ...] = ID_PLACEHOLDERS) -> None:
    import string

    try:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
    except ValueError as exc:
        raise LabelerError(f"bad ID template {template!r}: {exc}") from None
    for name in names:
        if name not in known:
            raise LabelerError(f"unknown placeholder {{{name}}} in ID template {template!r} "
                               f"(known: {', '.join(known)})")


def _path_hash(rel: str) -> str:
    """16 hex digits of SHA-256 of the relative path (``{path_hash}``), as the label job makes it."""
    from labeler.batch.jobs import _path_hash as path_hash

    return path_hash(rel)


def absolute_paths(task: BatchTask) -> BatchTask:
    """The task with every path absolute, as workers with another working folder need."""
    signer = task.signer
    if signer is not None:
        signer = replace(signer, cert_chain=os.path.abspath(signer.cert_chain),
                         key=os.path.abspath(signer.key))
    ids = task.propagate.ids_file
    return replace(
        task, src_root=os.path.abspath(task.src_root),
        dst_root=os.path.abspath(task.dst_root) if task.dst_root else task.dst_root, signer=signer,
        verify=replace(task.verify, trust_anchors=tuple(map(os.path.abspath, task.verify.trust_anchors))),
        propagate=replace(task.propagate, ids_file=os.path.abspath(ids) if ids else ids,
                          trust_anchors=tuple(map(os.path.abspath, task.propagate.trust_anchors))),
    )
