"""What a batch does with each file: :class:`BatchTask` (``label`` or ``verify`` plus its options) and
:class:`SignerRef`, both picklable so they travel once to each worker process; the ProduceID /
PropagateID templates are checked here, before any file is touched."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from labeler.errors import LabelerError

#: Placeholders allowed in ProduceID / PropagateID templates.
ID_PLACEHOLDERS = ("path_hash", "content_hash")
# "s3://bucket/x", "gs://...", "file://...": fsspec-style URLs, refused for SRC and DST.
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class SignerRef:
    """A picklable reference to a local C2PA signer: workers call :meth:`build` once each.

    Attributes
    ----------
    cert_chain : str
        Certificate chain PEM path (signing certificate first).
    key : str
        Private key PEM path.
    tsa_url : str or None
        RFC 3161 time-stamp authority.
    """

    cert_chain: str
    key: str
    tsa_url: str | None = None

    def build(self) -> Any:
        """The :class:`~labeler.provenance.c2pa_sign.SignerSpec` (raises ``C2paSignError``)."""
        from labeler.provenance.c2pa_sign import local_signer

        return local_signer(self.cert_chain, self.key, tsa_url=self.tsa_url)


@dataclass(frozen=True)
class BatchTask:
    """What to do with each file; picklable, so it is sent once to each worker process.

    Attributes
    ----------
    kind : {"label", "verify"}
        The per-file function.
    src_root : str
        SRC: relative paths (the journal key and the mirror under ``dst_root``) are taken from here.
    dst_root : str or None
        DST, required for ``label``: outputs mirror SRC under it.
    producer, label, reserved_code1, reserved_code2 : str
        Label fields (``label`` only), as for ``aigc label``.
    produce_id : str
        ProduceID template, one per file: literal text plus ``{path_hash}`` (16 hex digits of SHA-256 of
        the relative path: stable across runs) and/or ``{content_hash}`` (16 hex digits of SHA-256 of
        the file's bytes). Default ``{path_hash}``.
    propagator, propagate_id : str or None
        ContentPropagator and its ID template (same placeholders); ``None`` applies the first-write rule.
    layers : tuple of str
        Layers for :func:`labeler.label_file`.
    key : bytes or None
        Watermark key (the ``watermark`` layer when labeling; detection when verifying).
    watermark_method, watermark_strength, quality, c2pa_thumbnail, manifest_store
        As for :func:`labeler.label_file`.
    signer : SignerRef or None
        C2PA signer for the ``c2pa`` layer.
    overwrite : bool
        Replace outputs that exist and were not written by this task.
    trust_anchors : tuple of str
        C2PA trust anchor PEM files (``verify``).
    text, position : str
        Visible label wording and placement (the ``visible`` layer).
    visible_seconds : float or None
        Video: seconds the visible label shows from the start; None for the whole duration.
    cue_positions : tuple of str
        Audio: where the rhythm cue goes (``start``, ``end``, ``middle``).
    video_at : tuple of str
        Video: where the visible label shows (``start`` required, ``middle``, ``end``).
    audio_label, voice_language : str
        Audio: ``rhythm``, ``voice`` or ``both``; the spoken prompt's language, ``zh`` or ``en``.
    visible : bool
        ``verify``: also search for our visible mark / audio cue (the slow layer).
    verify_layers : tuple of str or None
        ``verify``: the layers to examine (:data:`detectors.VERIFY_LAYERS` names; None: all, less
        ``visible`` when ``visible`` is false); each report's ``examined`` lists them.
    """

    kind: str
    src_root: str
    dst_root: str | None = None
    producer: str = ""
    produce_id: str = "{path_hash}"
    label: str = "1"
    reserved_code1: str = ""
    propagator: str | None = None
    propagate_id: str | None = None
    reserved_code2: str = ""
    layers: tuple[str, ...] = ("metadata",)
    key: bytes | None = field(default=None, repr=False)
    watermark_method: str = "dct"
    watermark_strength: float | None = None
    quality: int = 95
    signer: SignerRef | None = None
    c2pa_thumbnail: bool = False
    manifest_store: str | None = None
    overwrite: bool = False
    trust_anchors: tuple[str, ...] = ()
    text: str = "AI生成"
    position: str = "bottom-right"
    visible_seconds: float | None = 3.0
    cue_positions: tuple[str, ...] = ("start",)
    video_at: tuple[str, ...] = ("start",)
    audio_label: str = "rhythm"
    voice_language: str = "zh"
    visible: bool = True
    verify_layers: tuple[str, ...] | None = None

    def check(self) -> BatchTask:
        """Validate before any file is touched; raise :class:`LabelerError` (one line) otherwise."""
        if self.kind not in ("label", "verify"):
            raise LabelerError(f"unknown batch kind {self.kind!r} (label or verify)")
        for name, root in (("SRC", self.src_root), ("DST", self.dst_root)):
            if root and _URL_RE.match(root):
                # fsspec storage would need every reader and writer (Pillow, ffmpeg, c2pa) to stream
                # through it; until then workers share files through a mounted file system.
                raise LabelerError(f"{name} {root}: URLs are not supported yet; mount the storage on every "
                                   "worker and give its path")
        if not Path(self.src_root).is_dir():
            raise LabelerError(f"SRC is not a folder: {self.src_root}")
        if self.kind == "label":
            from labeler.pipeline import parse_layers

            if not self.dst_root:
                raise LabelerError("a label batch needs DST")
            parse_layers(self.layers)
            for template in (self.produce_id, self.propagate_id):
                if template is not None:
                    _check_template(template)
            # A label with sample IDs shows bad producer/propagator values before the first file.
            self.make_label("0" * 16, lambda: "0" * 16).check()
        return self

    def label_options(self, signer: Any = None) -> Any:
        """The :class:`~labeler.options.LabelOptions` of every file, with the worker's built ``signer``."""
        from labeler.options import LabelOptions
        from labeler.pipeline import parse_layers

        return LabelOptions.build(
            layers=parse_layers(self.layers), key=self.key, watermark_method=self.watermark_method,
            watermark_strength=self.watermark_strength, quality=self.quality, overwrite=self.overwrite,
            signer=signer, c2pa_thumbnail=self.c2pa_thumbnail, manifest_store=self.manifest_store,
            text=self.text, position=self.position,
            visible_seconds=self.visible_seconds, cue_positions=self.cue_positions, video_at=self.video_at,
            audio_label=self.audio_label, voice_language=self.voice_language,
        )

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


class _Missing(dict):
    def __missing__(self, name: str) -> str:
        raise LabelerError(f"unknown placeholder {{{name}}} in an ID template ({', '.join(ID_PLACEHOLDERS)})")


def _check_template(template: str) -> None:
    import string

    try:
        names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
    except ValueError as exc:
        raise LabelerError(f"bad ID template {template!r}: {exc}") from None
    for name in names:
        if name not in ID_PLACEHOLDERS:
            raise LabelerError(f"unknown placeholder {{{name}}} in ID template {template!r} "
                               f"(known: {', '.join(ID_PLACEHOLDERS)})")


def absolute_paths(task: BatchTask) -> BatchTask:
    """The task with every path absolute, as workers with another working folder need."""
    signer = task.signer
    if signer is not None:
        signer = replace(signer, cert_chain=os.path.abspath(signer.cert_chain),
                         key=os.path.abspath(signer.key))
    return replace(
        task, src_root=os.path.abspath(task.src_root),
        dst_root=os.path.abspath(task.dst_root) if task.dst_root else task.dst_root, signer=signer,
        trust_anchors=tuple(os.path.abspath(a) for a in task.trust_anchors),
    )
