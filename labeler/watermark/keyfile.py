"""Watermark key files: ``aigc keygen K`` writes one, ``--key-file K`` reads it.

The file is two lines of text, so it survives copy-paste into a secret store::

    # aigc-labeler watermark key: keep it secret; anyone holding it can read and forge marks
    aigc-wm-key-v1:<64 hex digits = 32 random bytes>

A file holding only the hex digits (32-128 of them, optionally after the prefix) is accepted too, and so
is a UTF-8 byte-order mark before the text (Windows Notepad writes one). A key is 16 to 64 bytes
(:data:`MIN_KEY_BYTES`, :data:`MAX_KEY_BYTES`): the writer refuses what the reader could not load.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from labeler.atomic import write_whole
from labeler.errors import OVERWRITE_HINT, InvalidArgument, LabelerError

#: Bytes of key material ``keygen`` draws (256 bits).
KEY_BYTES = 32
#: Shortest and longest key a key file holds (bytes): 128 bits at least; 512 bits is far beyond need.
MIN_KEY_BYTES, MAX_KEY_BYTES = 16, 64
_PREFIX = "aigc-wm-key-v1:"
_HEX = re.compile(rf"^(?:aigc-wm-key-v1:)?([0-9a-fA-F]{{{2 * MIN_KEY_BYTES},{2 * MAX_KEY_BYTES}}})$")
_ANY_HEX = re.compile(r"(?:aigc-wm-key-v1:)?([0-9a-fA-F]+)")
_MAX_FILE = 4096
_UTF8_BOM = b"\xef\xbb\xbf"


def generate_key() -> bytes:
    """32 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    """A public 16-hex-digit identifier of ``key`` (a domain-separated SHA-256, not the key itself).

    Reports and C2PA soft-binding assertions name the key by this ID, so a verifier can tell which
    key to try without the key being disclosed.

    Raises
    ------
    InvalidArgument
        ``key`` is not bytes-like (e.g. hex text: ``bytes.fromhex`` turns it into bytes).
    """
    return hashlib.sha256(b"aigc-labeler/key-id/v1\0" + _key_bytes(key)).hexdigest()[:16]


def _key_bytes(key: object) -> bytes:
    """``key`` as ``bytes``; a str or any other non-bytes value is refused, not silently encoded (the same
    text as UTF-8 or as hex would give two different keys)."""
    if not isinstance(key, (bytes, bytearray, memoryview)):
        hint = " (hex text: bytes.fromhex(text))" if isinstance(key, str) else ""
        raise InvalidArgument(f"a watermark key must be bytes, not {type(key).__name__}{hint}")
    return bytes(key)


def check_key(key: object) -> bytes:
    """``key`` as ``bytes`` when a key file can hold it: bytes-like, :data:`MIN_KEY_BYTES` to
    :data:`MAX_KEY_BYTES` long.

    Raises
    ------
    InvalidArgument
        With a one-line reason otherwise.
    """
    data = _key_bytes(key)
    if not MIN_KEY_BYTES <= len(data) <= MAX_KEY_BYTES:
        raise InvalidArgument(f"a watermark key must have {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, "
                              f"not {len(data)}")
    return data


def write_key_file(
    path: str | os.PathLike[str], key: bytes | None = None, *, overwrite: bool = False
) -> bytes:
    """Write a key file readable only by its owner (mode 0600) and return the key.

    Refuses to replace an existing file unless ``overwrite``: losing a key makes every mark made with
    it unreadable. With ``overwrite`` the new file is written beside the old one and renamed onto it, so
    the old key stays whole until the new one is on disk; a symbolic link is refused (replacing the link
    would leave its target holding the old key, writing through it would change a file elsewhere), and
    so is anything else that is not a regular file.

    Parameters
    ----------
    path : path-like
        The key file to write.
    key : bytes-like, optional
        :data:`MIN_KEY_BYTES` to :data:`MAX_KEY_BYTES` bytes (what :func:`read_key_file` reads back);
        None draws a fresh :data:`KEY_BYTES`-byte key.
    overwrite : bool
        Replace an existing regular file.

    Raises
    ------
    InvalidArgument
        A key that is not bytes or has a length a key file cannot hold (checked before any file is made).
    LabelerError
        The file exists (without ``overwrite``), is a symbolic link, a folder or not a regular file (with
        ``overwrite``), or cannot be written.
    """
    key = generate_key() if key is None else check_key(key)
    target = Path(path)
    text = (
        "# aigc-labeler watermark key: keep it secret; anyone holding it can read and forge marks\n"
        f"{_PREFIX}{key.hex()}\n"
    )
    if not write_whole(target, text.encode("ascii"), private=True, overwrite=overwrite):
        raise LabelerError(f"{target} exists; refusing to overwrite a key ({OVERWRITE_HINT})")
    return key


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """Read a key written by :func:`write_key_file` (or bare hex); one-line errors for anything else.

    A UTF-8 byte-order mark before the text is skipped: Windows Notepad saves one.
    """
    if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
        raise InvalidArgument(f"the key file must be a path (str or path-like), not {type(path).__name__}")
    target = Path(path)
    try:
        with target.open("rb") as handle:
            raw = handle.read(_MAX_FILE + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise LabelerError(f"key file {target}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(raw) > _MAX_FILE:
        raise LabelerError(f"key file {target} is too large to be a key file")
    raw = raw.removeprefix(_UTF8_BOM)
    try:
        lines = [ln.strip() for ln in raw.decode("ascii").splitlines()]
    except UnicodeDecodeError:
        raise LabelerError(f"key file {target} is not a text key file (see aigc keygen)") from None
    keys = [m.group(1) for ln in lines if ln and not ln.startswith("#") and (m := _HEX.match(ln))]
    content = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(keys) != 1 or len(content) != 1:
        # A lone run of hex digits of the wrong length: say so, it is the likely mistake (a pasted key).
        digits = _ANY_HEX.fullmatch(content[0]) if len(content) == 1 else None
        why = (f": {len(digits.group(1))} hex digits, where a key has {2 * MIN_KEY_BYTES} to "
               f"{2 * MAX_KEY_BYTES}" if digits else "")
        raise LabelerError(f"key file {target} holds no key in the aigc-wm-key-v1 format{why} "
                           "(see aigc keygen)")
    if len(keys[0]) % 2:
        raise LabelerError(f"key file {target} has an odd number of hex digits")
    return bytes.fromhex(keys[0])
