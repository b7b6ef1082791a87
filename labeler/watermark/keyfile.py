"""Watermark key files: ``aigc keygen K`` writes one, ``--key-file K`` reads it.

The file is two lines of text, so it survives copy-paste into a secret store::

    # aigc-labeler watermark key: keep it secret; anyone holding it can read and forge marks
    aigc-wm-key-v1:<64 hex digits = 32 random bytes>

A file holding only the hex digits (32-128 of them, optionally after the prefix) is accepted too.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from labeler.errors import LabelerError

#: Bytes of key material ``keygen`` draws (256 bits).
KEY_BYTES = 32
_PREFIX = "aigc-wm-key-v1:"
_HEX = re.compile(r"^(?:aigc-wm-key-v1:)?([0-9a-fA-F]{32,128})$")
_MAX_FILE = 4096


def generate_key() -> bytes:
    """32 bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    """A public 16-hex-digit identifier of ``key`` (a domain-separated SHA-256, not the key itself).

    Reports and C2PA soft-binding assertions name the key by this ID, so a verifier can tell which
    key to try without the key being disclosed.
    """
    return hashlib.sha256(b"aigc-labeler/key-id/v1\0" + key).hexdigest()[:16]


def write_key_file(
    path: str | os.PathLike[str], key: bytes | None = None, *, overwrite: bool = False
) -> bytes:
    """Write a key file readable only by its owner (mode 0600) and return the key.

    Refuses to replace an existing file unless ``overwrite``: losing a key makes every mark made with
    it unreadable.
    """
    key = generate_key() if key is None else key
    if len(key) < 16:
        raise LabelerError("a watermark key must have at least 16 bytes")
    target = Path(path)
    text = (
        "# aigc-labeler watermark key: keep it secret; anyone holding it can read and forge marks\n"
        f"{_PREFIX}{key.hex()}\n"
    )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise LabelerError(f"{target} exists; refusing to overwrite a key (use --overwrite)") from None
    except OSError as exc:
        raise LabelerError(f"{target}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
    return key


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """Read a key written by :func:`write_key_file` (or bare hex); one-line errors for anything else."""
    target = Path(path)
    try:
        with target.open("rb") as handle:
            raw = handle.read(_MAX_FILE + 1)
    except OSError as exc:
        raise LabelerError(f"key file {target}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE:
        raise LabelerError(f"key file {target} is too large to be a key file")
    try:
        lines = [ln.strip() for ln in raw.decode("ascii").splitlines()]
    except UnicodeDecodeError:
        raise LabelerError(f"key file {target} is not a text key file (see aigc keygen)") from None
    keys = [m.group(1) for ln in lines if ln and not ln.startswith("#") and (m := _HEX.match(ln))]
    content = [ln for ln in lines if ln and not ln.startswith("#")]
    if len(keys) != 1 or len(content) != 1:
        raise LabelerError(f"key file {target} holds no key in the aigc-wm-key-v1 format (see aigc keygen)")
    if len(keys[0]) % 2:
        raise LabelerError(f"key file {target} has an odd number of hex digits")
    return bytes.fromhex(keys[0])
