"""Watermark key files: generation, permissions, parsing, refusal to overwrite."""

from __future__ import annotations

import stat

import pytest

from labeler.errors import LabelerError
from labeler.watermark.keyfile import key_id, read_key_file, write_key_file


def test_roundtrip_mode_and_refusal(tmp_path):
    path = tmp_path / "wm.key"
    key = write_key_file(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_key_file(path) == key
    # the message serves Python callers too: it names the keyword, not only the CLI flag
    with pytest.raises(LabelerError, match=r"refusing to overwrite a key \(.*overwrite=True in Python\)"):
        write_key_file(path)
    assert read_key_file(path) == key
    other = write_key_file(path, overwrite=True)
    assert other != key and read_key_file(path) == other


def test_key_id_is_stable_and_not_the_key():
    key = bytes(range(32))
    assert key_id(key) == key_id(bytes(range(32)))
    assert len(key_id(key)) == 16 and key.hex()[:16] != key_id(key)
    assert key_id(key) != key_id(bytes(range(1, 33)))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "holds no key"),
        (b"hello\n", "holds no key"),
        (b"\xff\xfe\x00binary", "not a text key file"),
        (b"aigc-wm-key-v1:abc\n", "holds no key"),
        (b"0" * 33 + b"\n", "odd number"),
        (b"00" * 16 + b"\n" + b"11" * 16 + b"\n", "holds no key"),
        (b"x" * 5000, "too large"),
    ],
)
def test_bad_key_files(tmp_path, content, needle):
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(LabelerError, match=needle):
        read_key_file(path)


def test_bare_hex_accepted(tmp_path):
    path = tmp_path / "hex.key"
    path.write_text("# comment\n" + "ab" * 16 + "\n")
    assert read_key_file(path) == bytes([0xAB]) * 16


def test_cli_keygen(tmp_path):
    from conftest import run_cli

    path = tmp_path / "k"
    proc = run_cli("keygen", str(path))
    assert proc.returncode == 0 and "watermark key" in proc.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = run_cli("keygen", str(path))
    assert again.returncode == 2 and again.stderr.startswith("aigc: error: ")
    assert "Traceback" not in again.stderr
