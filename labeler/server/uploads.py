"""Uploads: each request gets a private folder, its files are copied there, and all of it goes at the end.

Starlette's multipart parser (python-multipart underneath) streams each file part into a
``SpooledTemporaryFile``: up to 1 MiB in memory, beyond that an *anonymous* file in the temporary
directory (``aigc serve`` points that at its own private folder), which has no name on disk and so
cannot outlive the process. For the worker processes the file is then copied to a named file in the
request's folder (mode 0700); :func:`admitted` removes that folder when the request ends - on success,
on error, on a client that went away - or, after a timeout, when the still-running job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from labeler.server.errors import ApiError, UploadTooLarge
from labeler.server.jobs import Pending

#: Prefix of a request's private folder.
REQUEST_PREFIX = "aigc-request-"
#: The multipart field that carries the file(s).
FILE_FIELD = "file"
#: Longest text field (each); Starlette's default is 1 MiB, and no option of label needs a tenth of this.
FIELD_MAX_BYTES = 64 << 10
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,8}")
#: How long a refused (503) request's body is read and discarded before the answer goes out.
DRAIN_S = 5.0


@dataclass
class Upload:
    """One uploaded file, copied into the request's folder.

    Attributes
    ----------
    path : Path
        The copy: ``upload-<n><suffix>``; the suffix is the client's (letters and digits only), so
        verify warns about an extension that contradicts the content exactly as the CLI does.
    name : str
        The client's file name for display (last path component, no control characters), never used
        as a path.
    size : int
    """

    path: Path
    name: str
    size: int


@dataclass
class Work:
    """A request's private folder, its fields and files, and what may outlive it."""

    folder: Path
    pending: Pending = field(default_factory=Pending)
    fields: dict[str, str] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)


@contextlib.asynccontextmanager
async def admitted(state: Any, request: Request | None = None) -> AsyncIterator[Work]:
    """Admit a request (503 when the gate is full), give it a private folder, clean up after it.

    Parameters
    ----------
    state : object
        The app state: ``gate`` (:class:`~labeler.server.limits.Gate`) and ``root`` (the server's
        private temporary folder).
    request : Request, optional
        Given, a refused request's body is read and discarded first (see :func:`drain`), so that
        the client, still sending, reads the 503 instead of a broken pipe.
    """
    if not state.gate.try_enter():
        if request is not None:
            await drain(request, DRAIN_S)
        raise ApiError(503, f"{state.gate.limit} requests are already being handled; retry shortly",
                       {"Retry-After": "5"})
    work: Work | None = None
    try:
        work = Work(Path(tempfile.mkdtemp(prefix=REQUEST_PREFIX, dir=state.root)))
        yield work
    finally:
        _release(state, work)


async def drain(request: Request, limit_s: float) -> None:
    """Read and discard a request's body for at most ``limit_s`` seconds, in memory one chunk at a time.

    A server that answers before reading the body and then closes leaves a client that is still
    sending with a broken pipe (or a reset that discards the answer): most HTTP clients then report a
    network error, not the status. Draining costs neither disk nor a worker, and the body limit still
    applies as it streams. A client that sent ``Expect: 100-continue`` has not sent the body (it is
    waiting for our go-ahead, which reading would give), so it is answered at once.
    """
    if request.headers.get("expect", "").lower() == "100-continue":
        return

    async def discard() -> None:
        async for _chunk in request.stream():
            pass

    with contextlib.suppress(asyncio.TimeoutError, ClientDisconnect, UploadTooLarge):
        await asyncio.wait_for(discard(), limit_s)


def _release(state: Any, work: Work | None) -> None:
    future = work.pending.future if work is not None else None
    if future is None or future.done():
        _remove(work)
        state.gate.leave()
        return
    # A job still runs in a worker and may still write into the folder: clean up when it ends.
    loop = asyncio.get_running_loop()

    def later() -> None:
        _remove(work)
        state.gate.leave()

    future.add_done_callback(lambda _f: loop.call_soon_threadsafe(later))


def _remove(work: Work | None) -> None:
    if work is not None:
        shutil.rmtree(work.folder, ignore_errors=True)


async def read_form(request: Request, work: Work, *, max_files: int, max_bytes: int,
                    allowed_fields: frozenset[str] = frozenset(),
                    refused_fields: frozenset[str] = frozenset(), deadline_s: float | None = None) -> None:
    """Parse the multipart body into ``work``: files of field ``file`` copied, text fields kept.

    ``refused_fields`` are taken in (so the caller can refuse them with its own reason) but not named
    among the fields an unknown field's error lists. ``deadline_s`` (the server's ``--timeout``) bounds
    the time the body may take to arrive: a stalled upload holds an admission slot, so without it a few
    idle connections would lock everyone out (503).

    Raises
    ------
    ApiError
        400: not multipart, a body cut short before its closing boundary, a text field over
        :data:`FIELD_MAX_BYTES` (named), no ``file`` field, an empty file, an unknown field, too many files;
        408: the body did not arrive within ``deadline_s``; 413: a file over ``max_bytes``.
    UploadTooLarge
        From the body limit, while the body streams in.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        raise ApiError(400, f"send multipart/form-data with the file in a field named {FILE_FIELD!r}"
                            f" (got {kind or 'no content type'})")
    # As Request.form() does it, but with the parser below; the stream closed whatever happens.
    async with contextlib.aclosing(request.stream()) as stream:
        parser = _FormParser(request.headers, stream, max_files=max_files, max_fields=len(allowed_fields) + 8,
                             max_part_size=FIELD_MAX_BYTES)
        try:
            # Cancelled at the deadline, the parser closes its spooled parts (anonymous files) itself, and
            # admitted() removes the request's folder and frees the slot.
            form = await asyncio.wait_for(parser.parse(), deadline_s)
        except MultiPartException as exc:  # the parser's complaint (bad framing, too many parts)
            raise ApiError(400, exc.message) from None
        except asyncio.TimeoutError:
            # Connection: close - the rest of the body, if it ever comes, is not read.
            raise ApiError(408, f"the upload did not arrive within {deadline_s:g} s (the server's --timeout)",
                           {"Connection": "close"}) from None
    try:
        if not parser.ended:
            parser.close_cut_part()
            # The parts before the cut look complete to the parser and the one cut off is dropped, so
            # without this a truncated upload was answered "no file" (or handled without its last field).
            raise ApiError(400, "the upload is truncated or malformed: the multipart body ends before its "
                                "closing boundary; send the whole file again")
        await _take(form, work, max_bytes, allowed_fields, refused_fields)
    finally:
        await form.close()


class _FormParser(MultiPartParser):
    """Starlette's multipart parser, saying which text field is too long and whether the body ended.

    ``ended`` is set by python-multipart's ``end`` callback, which it calls only on the closing
    boundary (``--BOUNDARY--``): a body that stops before it (a client or proxy that cut the upload
    short) is malformed, not a form without a file.
    """

    ended = False

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        try:
            super().on_part_data(data, start, end)
        except MultiPartException:
            # Starlette says "Part exceeded maximum size of 64KB." and not which part.
            part = getattr(self, "_current_part", None)  # Starlette's own attribute; absent: unnamed
            name = _shown(getattr(part, "field_name", None) or "")
            raise MultiPartException(
                f"the form field {name!r} is longer than {FIELD_MAX_BYTES >> 10} KB, the most a text field "
                f"may hold (a file goes in the field {FILE_FIELD!r} as a file upload, with a filename)"
            ) from None

    def on_end(self) -> None:
        self.ended = True
        super().on_end()

    def close_cut_part(self) -> None:
        """Close the spooled file of a part the body stopped in: it is in no form item to be closed."""
        for spooled in getattr(self, "_files_to_close_on_error", ()):
            spooled.close()


async def _take(form: FormData, work: Work, max_bytes: int, allowed_fields: frozenset[str],
                refused_fields: frozenset[str] = frozenset()) -> None:
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            if name != FILE_FIELD:
                raise ApiError(400, f"files go in the field {FILE_FIELD!r}, not {_shown(name)!r}")
            work.uploads.append(await _copy(value, work, len(work.uploads), max_bytes))
        elif name == FILE_FIELD:
            raise ApiError(400, f"the field {FILE_FIELD!r} must be a file upload, not text")
        elif name not in allowed_fields | refused_fields:
            known = f" (fields: {', '.join(sorted(allowed_fields))})" if allowed_fields else ""
            raise ApiError(400, f"unknown field {_shown(name)!r}{known}")
        elif name in work.fields:
            raise ApiError(400, f"the field {name!r} is given twice")
        else:
            work.fields[name] = value
    if not work.uploads:
        raise ApiError(400, f"no file: send it in a multipart field named {FILE_FIELD!r}")


async def _copy(upload: UploadFile, work: Work, index: int, max_bytes: int) -> Upload:
    name = display_name(upload.filename)
    suffix = os.path.splitext(name)[1]
    path = work.folder / f"upload-{index}{suffix if _SUFFIX.fullmatch(suffix) else ''}"
    size = await asyncio.to_thread(_copy_file, upload.file, path, max_bytes)
    if size == 0:
        raise ApiError(400, f"{name}: empty file (0 bytes)")
    return Upload(path, name, size)


def _copy_file(source: Any, path: Path, max_bytes: int) -> int:
    source.seek(0)
    size = 0
    # O_EXCL: the name is ours, in our private folder; never follow or reuse anything there.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(f"the file is larger than this server's limit of {max_bytes} bytes")
            out.write(chunk)
    return size


def display_name(filename: str | None) -> str:
    """The client's file name, safe to show and to put in JSON: last path part, printable, <= 200 chars.

    ``../../etc/passwd`` becomes ``passwd``; it is only ever a label, never a path.
    """
    if not filename:
        return "<upload>"
    last = re.split(r"[/\\]", filename)[-1]
    clean = "".join(ch for ch in unicodedata.normalize("NFC", last)
                    if unicodedata.category(ch)[0] != "C").strip()
    if clean in ("", ".", ".."):
        return "<upload>"
    return clean[:200]


def _shown(text: str) -> str:
    return display_name(text)[:60]
