"""Checks of :func:`detectors.verify`'s arguments: what a caller passes that cannot be used is refused up
front with :class:`~labeler.errors.InvalidArgument` (a one-line message), never turned into a layer's
"internal error" or a silently dropped layer."""

from __future__ import annotations

import os
from typing import Any

from labeler.errors import InvalidArgument, LabelerError

__all__ = ["key_argument", "trust_anchor_files", "store_argument", "visible_argument"]


def key_argument(key: Any) -> bytes | None:
    """``key`` as bytes (``bytes``, ``bytearray`` or ``memoryview``, as :func:`labeler.label` takes), or
    InvalidArgument for what cannot be a key.

    Another type, a NumPy array included, is refused as ``label`` refuses it: the message names only the
    type (the key is a secret), and said "not ndarray (empty)" of a 32-byte array until 2026-12-07.
    """
    if key is None:
        return None
    from labeler.watermark.payload import check_key

    if not isinstance(key, (bytes, bytearray, memoryview)):
        hint = " (its tobytes() gives the bytes)" if hasattr(key, "tobytes") else ""
        raise InvalidArgument(f"key must be bytes (a key file's contents, see labeler.watermark.keyfile), "
                              f"not {type(key).__name__}{hint}")
    try:
        return check_key(key)
    except LabelerError:
        raise InvalidArgument("key is empty: it must be non-empty bytes (a key file's contents)") from None


#: Bytes of a trust-anchor file read to find a PEM certificate in it.
_PEM_PROBE = 1 << 20


def trust_anchor_files(anchors: Any) -> tuple[str, ...]:
    """The trust-anchor paths as a tuple (one path may be given alone), each checked to exist and to hold
    a PEM certificate: c2pa-rs would otherwise fail on it inside the C2PA layer and drop the layer."""
    if anchors is None:
        return ()
    if isinstance(anchors, (str, os.PathLike)):
        paths = [anchors]
    elif isinstance(anchors, (bytes, bytearray, memoryview)) or not hasattr(anchors, "__iter__"):
        # an int was "'int' object is not iterable" (a TypeError from list()), bytes a list of ints
        raise InvalidArgument(f"trust anchors are a PEM file path or a list of them, "
                              f"not {type(anchors).__name__}")
    else:
        paths = list(anchors)
    for path in paths:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidArgument(f"trust anchors are PEM file paths, not {type(path).__name__}")
        try:
            with open(path, "rb") as handle:
                head = handle.read(_PEM_PROBE)
        except OSError as exc:
            raise InvalidArgument(f"trust anchors {os.fspath(path)}: {exc.strerror or exc}") from None
        if b"-----BEGIN CERTIFICATE-----" not in head:
            raise InvalidArgument(f"trust anchors {os.fspath(path)}: no PEM certificate in it")
    return tuple(os.fspath(p) for p in paths)


def store_argument(spec: Any) -> str | None:
    """``manifest_store`` as a str (a path, ``sqlite:///``, ``postgresql://`` or ``https://``), or
    InvalidArgument for what cannot name a store.

    Checked up front: a number or bytes reached :func:`labeler.provenance.store.open_store` only once a
    watermark was found, and its TypeError made the report of a readable file "internal error while
    reading" with no verdict.
    """
    if spec is None:
        return None
    if not isinstance(spec, (str, os.PathLike)):
        raise InvalidArgument(f"manifest_store must be a path or URL (str), not {type(spec).__name__}")
    text = os.fspath(spec)
    if not isinstance(text, str) or not text or "\0" in text:
        raise InvalidArgument("manifest_store must be a non-empty path or URL (str) without NUL characters")
    return text


def visible_argument(visible: Any) -> bool:
    """``visible`` as a bool; anything else is refused (``"false"`` from a query string is true)."""
    import numpy as np

    if not isinstance(visible, (bool, np.bool_)):
        raise InvalidArgument(f"visible must be True or False, not {type(visible).__name__} ({visible!r})")
    return bool(visible)
