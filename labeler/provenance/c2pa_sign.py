"""Sign media with a C2PA manifest that declares it AI-generated: the last labeling layer.

::

    >>> from labeler.provenance.c2pa_sign import local_signer, sign_file
    >>> signer = local_signer("pki/signer-chain.pem", "pki/signer.key.pem")
    >>> sign_file("out.labeled.jpg", "out.signed.jpg", signer=signer, label=label).assertions
    ['c2pa.actions.v2', 'cn.tc260.aigc']

This module is the native side: it streams the media through c2pa-python's ``Builder`` and reads the
result back with a ``Reader``, from files (:func:`sign_file`) or from memory (:func:`sign_bytes`, no
temporary file). What the manifest says is :mod:`labeler.provenance.c2pa_manifest`; who signs is
:mod:`labeler.provenance.c2pa_signers` (both re-exported here, the names importers have always used).

Every call builds its own native objects (Signer, Context, Builder): c2pa-python objects must not be
shared between threads, and a Signer is consumed by the Builder that uses it. The ``SignerSpec`` a
caller holds is plain Python and may be shared freely.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from labeler.atomic import atomic_output, check_paths
from labeler.errors import LabelerError
from labeler.formats import EXTENSIONS, medium, sniff_bytes, sniff_file
from labeler.provenance.c2pa_manifest import (
    AIGC_ASSERTION,
    MIME_TYPES,
    PARENT_ID,
    SOFT_BINDING_ASSERTION,
    TRAINED_ALGORITHMIC_MEDIA,
    manifest_definition,
    our_assertions,
    soft_binding_alg,
)
from labeler.provenance.c2pa_signers import C2paSignError, SignerSpec, callback_signer, local_signer, one_line
from labeler.record import AIGCLabel

__all__ = [
    "AIGC_ASSERTION",
    "SOFT_BINDING_ASSERTION",
    "TRAINED_ALGORITHMIC_MEDIA",
    "MIME_TYPES",
    "C2paSignError",
    "SignerSpec",
    "SignResult",
    "local_signer",
    "callback_signer",
    "sign_file",
    "sign_bytes",
    "soft_binding_alg",
    "closing_native",
]

# c2pa-rs reports a failed time-stamp request as a Signature error carrying the HTTP client's words
# ("error sending request for url ...", "service responded with an HTTP error (status = 500 ...)").
_TSA_FAILURE = re.compile(r"http|time.?stamp|resolver", re.IGNORECASE)
_READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": False}}


@dataclass
class SignResult:
    """What :func:`sign_file` or :func:`sign_bytes` wrote.

    Attributes
    ----------
    src, dst : str
        Input and output paths (``"<bytes>"`` for :func:`sign_bytes`).
    format, mime : str
        Container format (from the content) and the MIME type c2pa-rs was given.
    manifest : str
        Label (URN) of the new active manifest.
    manifest_bytes : int
        Size of the signed manifest store.
    bytes_added : int
        Output size minus input size.
    assertions : list of str
        Labels of the assertions we put in the manifest (c2pa-rs adds its hash and ingredient ones).
    parent : bool
        True when the input's own manifest became a ``parentOf`` ingredient.
    thumbnail : bool
        Whether c2pa-rs was allowed to add a claim thumbnail.
    signer : str
        The signing certificate's subject.
    seconds : float
        Wall time.
    store : bytes
        The signed manifest store itself (``application/c2pa``), for a manifest repository
        (:mod:`labeler.provenance.store`); not in :meth:`to_dict`.
    """

    src: str
    dst: str
    format: str
    mime: str
    manifest: str
    manifest_bytes: int
    bytes_added: int
    assertions: list[str]
    parent: bool
    thumbnail: bool
    signer: str
    seconds: float = 0.0
    store: bytes = field(default=b"", repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``LabelResult.layers["c2pa"]`` can hold)."""
        return {
            "manifest": self.manifest,
            "format": self.format,
            "manifest_bytes": self.manifest_bytes,
            "bytes_added": self.bytes_added,
            "assertions": list(self.assertions),
            "parent": self.parent,
            "thumbnail": self.thumbnail,
            "signer": self.signer,
            "seconds": round(self.seconds, 6),
        }


@dataclass(frozen=True)
class _Claim:
    """What one signing claims, apart from the media: the manifest's title and our assertions."""

    title: str  # the output's name (the manifest's title)
    source_name: str  # the input's name (the parent ingredient's title)
    assertions: list[dict[str, Any]]
    digital_source_type: str
    software_agent: str | None
    thumbnail: bool


def sign_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    signer: SignerSpec,
    label: AIGCLabel | None = None,
    soft_binding: Mapping[str, Any] | None = None,
    software_agent: str | None = None,
    thumbnail: bool = False,
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA,
    overwrite: bool = True,
    fmt: str | None = None,
    source_name: str | None = None,
) -> SignResult:
    """Copy ``src`` to ``dst`` with a signed C2PA manifest declaring the content AI-generated.

    Parameters
    ----------
    src : path
        Input media (JPEG, PNG, WebP, TIFF, GIF, WAV, MP3, FLAC, M4A, MP4, MOV); never modified.
        If it already has a C2PA manifest, that manifest store becomes a ``parentOf`` ingredient.
    dst : path
        Output; written to a temporary file beside it, read back, then renamed into place.
    signer : SignerSpec
        From :func:`local_signer` or :func:`callback_signer`.
    label : AIGCLabel, optional
        Adds the ``cn.tc260.aigc`` assertion with its seven fields (validated first).
    soft_binding : mapping, optional
        The watermark layer's result: ``method`` (``dct``/``dwt``), ``payload`` (hex) and ``key_id``
        (what ``LabelResult.layers["watermark"]`` holds); adds a ``c2pa.soft-binding`` assertion.
    software_agent : str, optional
        The action's softwareAgent; default ``aigc-labeler <version>``.
    thumbnail : bool
        Let c2pa-rs embed a claim thumbnail (images; adds 35-440 KB). Off by default.
    digital_source_type : str
        IPTC digital source type of the ``c2pa.created`` action (default trainedAlgorithmicMedia).
    overwrite : bool
        Replace an existing ``dst`` (never ``src``).
    fmt : str, optional
        ``src``'s format when the caller has probed it already (:class:`labeler.probe.Probe`);
        sniffed from the content otherwise.
    source_name : str, optional
        Title of the ``parentOf`` ingredient when ``src`` already holds a manifest; default ``src``'s
        file name. The label pipeline passes its input's name, since ``src`` is then often a staged
        copy (``0.jpg``).

    Returns
    -------
    SignResult

    Raises
    ------
    LabelerError
        One-line reason (:class:`C2paSignError` for signing failures); ``dst`` is then left as it was.
    """
    started = time.perf_counter()
    src_p, dst_p = check_paths(src, dst, overwrite=overwrite)
    fmt = fmt or sniff_file(src_p)
    mime = _mime(fmt, signer)
    timespan = _timespan_ms(src_p, fmt) if soft_binding else None
    claim = _Claim(dst_p.name, source_name or src_p.name, our_assertions(label, soft_binding, timespan),
                   digital_source_type, software_agent, bool(thumbnail))
    failures: list[BaseException] = []
    with _one_line_errors(signer, failures, src_p), open(src_p, "rb") as source, atomic_output(dst_p) as out:
        store, active, parent = _sign_stream(source, out, mime, claim, signer, failures)
    return _result(os.fspath(src), os.fspath(dst), fmt, store, active, parent, claim, signer,
                   dst_p.stat().st_size - src_p.stat().st_size, started)


def sign_bytes(
    data: bytes | bytearray | memoryview,
    *,
    signer: SignerSpec,
    label: AIGCLabel | None = None,
    soft_binding: Mapping[str, Any] | None = None,
    software_agent: str | None = None,
    thumbnail: bool = False,
    digital_source_type: str = TRAINED_ALGORITHMIC_MEDIA,
    fmt: str | None = None,
    duration: float | None = None,
    title: str | None = None,
) -> tuple[bytes, SignResult]:
    """Sign an encoded file held in memory, as :func:`sign_file` does a path; no temporary file.

    c2pa-python reads and writes file-like streams, so the input and the signed output stay in
    ``io.BytesIO`` buffers (the output is read back from memory to check that it validates).

    Parameters
    ----------
    data : bytes-like
        The whole encoded file, any format of :data:`MIME_TYPES` that C2PA can carry; not modified.
    signer, label, soft_binding, software_agent, thumbnail, digital_source_type
        As for :func:`sign_file`.
    fmt : str, optional
        ``data``'s format when the caller knows it already; sniffed from the content otherwise.
    duration : float, optional
        Audio and video with a ``soft_binding``: the media's duration in seconds, for the soft
        binding's timespan (without it the binding covers the whole asset, as for an image).
    title : str, optional
        The manifest's title; default ``untitled`` with the format's extension.

    Returns
    -------
    bytes, SignResult
        The signed file, and what was written (``src`` and ``dst`` are ``"<bytes>"``).

    Raises
    ------
    LabelerError
        One-line reason (:class:`C2paSignError` for signing failures).
    """
    started = time.perf_counter()
    data = bytes(data)
    fmt = fmt or sniff_bytes(data)
    mime = _mime(fmt, signer)
    timespan = (0, round(duration * 1000)) if soft_binding and duration and medium(fmt) != "image" else None
    name = title or f"untitled{EXTENSIONS[fmt][0]}"
    claim = _Claim(name, name, our_assertions(label, soft_binding, timespan), digital_source_type,
                   software_agent, bool(thumbnail))
    failures: list[BaseException] = []
    out = io.BytesIO()
    with _one_line_errors(signer, failures, "<bytes>"):
        store, active, parent = _sign_stream(io.BytesIO(data), out, mime, claim, signer, failures)
    signed = out.getvalue()
    return signed, _result("<bytes>", "<bytes>", fmt, store, active, parent, claim, signer,
                           len(signed) - len(data), started)


# -- helpers --------------------------------------------------------------------------------------------
def _mime(fmt: str, signer: Any) -> str:
    if not isinstance(signer, SignerSpec):
        raise C2paSignError("signer must come from local_signer() or callback_signer()")
    mime = MIME_TYPES.get(fmt)
    if mime is None:
        raise C2paSignError(f"C2PA signing does not support {fmt} files")
    return mime


def _result(src: str, dst: str, fmt: str, store: bytes, active: str, parent: bool, claim: _Claim,
            signer: SignerSpec, bytes_added: int, started: float) -> SignResult:
    return SignResult(
        src=src, dst=dst, format=fmt, mime=MIME_TYPES[fmt], manifest=active, manifest_bytes=len(store),
        store=store, bytes_added=bytes_added,
        assertions=["c2pa.actions.v2", *(a["label"] for a in claim.assertions)],
        parent=parent, thumbnail=claim.thumbnail, signer=signer.subject,
        seconds=time.perf_counter() - started,
    )


@contextlib.contextmanager
def _one_line_errors(signer: SignerSpec, failures: list[BaseException], where: str | Path) -> Iterator[None]:
    """Turn native and I/O failures of a signing into one-line :class:`LabelerError` s."""
    import c2pa

    try:
        yield
    except LabelerError:
        raise
    except c2pa.C2paError as exc:
        raise _signing_error(exc, signer, failures) from None
    except OSError as exc:
        raise LabelerError(f"{exc.filename or where}: {exc.strerror or exc}") from None


def _sign_stream(source: BinaryIO, out: BinaryIO, mime: str, claim: _Claim, signer: SignerSpec,
                 failures: list[BaseException]) -> tuple[bytes, str, bool]:
    """Sign ``source`` into ``out`` (both seekable streams) and read the result back from ``out``.

    Returns the manifest store, the active manifest's label and whether the input's own manifest
    became the parent ingredient.
    """
    import c2pa

    if mime == "image/tiff" and _tiff_pages(source) > 1:
        # c2pa-rs (c2pa-python 0.38) links its manifest as an extra IFD without an image after the last
        # page: the signed file validates, but Pillow (and verify's pixel layers) can no longer open it.
        raise C2paSignError("C2PA signing does not support multi-page TIFF files (c2pa-rs would add a page "
                            "without an image, which TIFF readers refuse)")
    parent = _has_manifest(source, mime)
    manifest = manifest_definition(claim.title, mime, parent, claim.digital_source_type, claim.software_agent,
                                   claim.assertions)
    settings = {
        # Our own read-back of the written output (_read_back) replaces c2pa-rs's verify-after-sign,
        # which would hash the whole output a second time.
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": False},
        "builder": {"thumbnail": {"enabled": claim.thumbnail}},
    }
    ctx = c2pa.Context.from_dict(settings)
    with closing_native(ctx), closing_native(c2pa.Builder(manifest, ctx)) as builder:
        if parent:
            source.seek(0)
            # The old store travels whole inside the new one, with its validation results;
            # c2pa-rs links it to the c2pa.opened action as that action's ingredient.
            ingredient = {"title": claim.source_name, "relationship": "parentOf", "label": PARENT_ID}
            builder.add_ingredient(ingredient, mime, source)
        source.seek(0)
        with closing_native(signer._native(failures)) as native:
            store = builder.sign(native, mime, source, out)
    out.flush()
    out.seek(0)
    return bytes(store), _read_back(out, mime), parent


def _tiff_pages(source: BinaryIO) -> int:
    """How many IFDs (pages) the main chain of a TIFF in ``source`` links, counted to 2 (TIFF 6.0 section 2:
    an 8-byte header with the first IFD's offset, each IFD's 2-byte count, 12-byte entries, next offset).
    A header or chain that cannot be read counts as one page (c2pa-rs then gives its own answer)."""
    source.seek(0)
    head = source.read(8)
    endian = {b"II": "<", b"MM": ">"}.get(head[:2])
    if endian is None or len(head) < 8 or struct.unpack(endian + "H", head[2:4])[0] != 42:
        return 1
    offset, pages = struct.unpack(endian + "I", head[4:8])[0], 0
    while offset and pages < 2:
        source.seek(offset)
        count = source.read(2)
        if len(count) < 2:
            break
        source.seek(offset + 2 + 12 * struct.unpack(endian + "H", count)[0])
        link = source.read(4)
        pages += 1
        offset = struct.unpack(endian + "I", link)[0] if len(link) == 4 else 0
    return max(pages, 1)


def holds_manifest(path: str | os.PathLike[str] | bytes, fmt: str) -> bool:
    """True when the file at ``path`` (or the file's bytes; format ``fmt``) seems to hold a C2PA manifest
    store: one c2pa reader run (~1-3 ms without one); a JPEG with no APP11 segment and no XMP provenance
    is not even opened by it. A manifest that cannot be parsed counts as present (it is there, and would
    be broken).
    """
    import contextlib
    import io

    from labeler.formats import format_info

    opened = io.BytesIO(path) if isinstance(path, bytes) else open(path, "rb")  # noqa: SIM115
    with contextlib.closing(opened) as source:
        if fmt == "jpeg":
            from labeler.metadata.jpeg import may_hold_c2pa

            if not may_hold_c2pa(source):
                return False
        if fmt == "wav" and source.read(4) in (b"RF64", b"BW64"):
            # c2pa-rs reads RIFF only ("expected RIFF, got RF64"): that is not a manifest. A C2PA chunk
            # in such a file (c2pa-rs' WAV chunk id) still counts.
            from labeler.metadata import riff

            try:
                return any(chunk.cid == b"C2PA" for chunk in riff._layout(source).chunks)
            except LabelerError:
                return True
        from labeler.provenance.c2pa_walk import too_many_chunks

        source.seek(0)
        if too_many_chunks(source) is not None:
            # a flood of chunks or boxes: the metadata layer refuses the file in one line; c2pa-rs took
            # seconds to minutes to walk it first (QA, 2026-12-08)
            return False
        source.seek(0)
        try:
            return _has_manifest(source, format_info(fmt).mime)
        except C2paSignError:
            if fmt == "avi":
                # c2pa-rs refuses a RIFF form that runs past the end ("Invalid RIFF format"): an AVI cut
                # short (97 %) made aigc label warn of a manifest it does not hold. A cut file holds one
                # only if a C2PA chunk starts before the cut.
                cut = _riff_cut_manifest(source)
                if cut is not None:
                    return cut
            return True


def _riff_cut_manifest(source: BinaryIO) -> bool | None:
    """For a RIFF file whose form runs past the end of the file (cut short): whether a top-level
    ``C2PA`` chunk (c2pa-rs' RIFF chunk) starts in the bytes present. None for a file that is not cut
    (c2pa-rs' refusal stands: a manifest there may be damaged)."""
    import struct

    size = source.seek(0, os.SEEK_END)
    source.seek(0)
    head = source.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or 8 + struct.unpack("<I", head[4:8])[0] <= size:
        return None
    pos = 12
    for _ in range(1_000_000):  # an AVI's top level holds a handful of chunks; bounded all the same
        if size - pos < 8:
            break
        source.seek(pos)
        cid, length = struct.unpack("<4sI", source.read(8))
        if cid == b"C2PA":
            return True
        pos += 8 + length + (length & 1)
    return False


def _has_manifest(source: BinaryIO, mime: str) -> bool:
    """True if ``source`` holds a C2PA manifest store (embedded or a remote reference)."""
    import c2pa
    source.seek(0)
    try:
        with closing_native(c2pa.Context.from_dict(_READ_SETTINGS)) as ctx:
            reader = c2pa.Reader.try_create(mime, source, None, ctx)
            if reader is not None:
                reader.close()
                return True
            return False
    except c2pa.C2paError as exc:
        if str(exc).startswith("Remote"):
            # A remote-only manifest cannot be carried as an ingredient offline; re-signing would lose the
            # link to it, so refuse rather than drop it silently.
            raise C2paSignError(
                "the input refers to a remote C2PA manifest, which cannot be kept offline; not signing"
            ) from None
        reason = one_line(exc).removeprefix("Other: ")
        if reason.startswith("asset could not be parsed"):
            raise C2paSignError(f"C2PA cannot parse this file: {reason.split(': ', 1)[-1]}") from None
        raise C2paSignError(
            f"the input's C2PA manifest cannot be read ({reason}); not signing, it would be lost"
        ) from None


def _read_back(out: Any, mime: str) -> str:
    """Read the manifest just written from the output stream; return its label."""
    import c2pa
    ctx = c2pa.Context.from_dict(_READ_SETTINGS)
    with closing_native(ctx), closing_native(c2pa.Reader(mime, out, None, ctx)) as r:
        state = r.get_validation_state()
        active = r.get_active_manifest() or {}
        label = active.get("label")
        if state == "Invalid" or not label:
            results = r.get_validation_results() or {}
            codes = [f.get("code") for f in results.get("activeManifest", {}).get("failure", [])]
            why = ", ".join(map(str, codes)) or state
            raise C2paSignError(f"the signed output does not validate ({why})")
        return str(label)


def _timespan_ms(path: Path, fmt: str) -> tuple[int, int] | None:
    """``(0, duration)`` in milliseconds for audio and video (the soft binding's scope), else None."""
    if medium(fmt) == "image":
        return None
    from labeler.media.ffmpeg import probe

    try:
        duration = probe(path).duration
    except LabelerError:
        return None
    return (0, round(duration * 1000)) if duration else None


def _signing_error(exc: BaseException, signer: SignerSpec, failures: list[BaseException]) -> LabelerError:
    """One line for a failed signing: the callback's own error, the TSA, or c2pa-rs's reason."""
    if failures:
        return C2paSignError(f"signing callback failed: {one_line(failures[0])}")
    text = one_line(exc)
    if signer.tsa_url and text.startswith("Signature") and _TSA_FAILURE.search(text):
        # The TSA is the only network peer of a signing: name it, so the user knows what to fix.
        reason = re.sub(r"^Signature: (?:internal error )?\((.*)\)$", r"\1", text)
        return C2paSignError(f"time-stamp authority {signer.tsa_url} failed: {reason}")
    return C2paSignError(f"C2PA signing failed: {text}")


@contextlib.contextmanager
def closing_native(obj: Any) -> Any:
    """Context manager that closes a c2pa native object (Context, Builder, Reader, Signer) on exit.

    Native handles are freed here, on this thread, rather than by ``__del__`` at an arbitrary time on
    an arbitrary thread (shared or late-freed handles crash the native library under threads).
    """
    try:
        yield obj
    finally:
        with contextlib.suppress(Exception):
            obj.close()
