"""Key files: the writer refuses what the reader cannot load (16-64 bytes, bytes only), and the reader
takes a file saved with a UTF-8 byte-order mark (Windows Notepad)."""

from __future__ import annotations

import pytest
from conftest import seeded_key

from labeler.errors import InvalidArgument, LabelerError
from labeler.watermark.keyfile import MAX_KEY_BYTES, MIN_KEY_BYTES, read_key_file, write_key_file


@pytest.mark.parametrize("size", [MIN_KEY_BYTES, 32, 48, MAX_KEY_BYTES])
def test_every_key_the_writer_takes_reads_back(tmp_path, size):
    key = (seeded_key(f"qa-keyfile-{size}") * 2)[:size]
    path = tmp_path / "k.key"
    assert write_key_file(path, key) == key
    assert read_key_file(path) == key
    assert write_key_file(path, bytearray(key), overwrite=True) == key and read_key_file(path) == key


@pytest.mark.parametrize(("key", "words"), [
    (b"x" * 15, "16 to 64 bytes, not 15"),
    (b"x" * 65, "16 to 64 bytes, not 65"),
    (b"x" * 100, "16 to 64 bytes, not 100"),
    ("0123456789abcdef0123", "must be bytes, not str"),
    (12345, "must be bytes, not int"),
])
def test_the_writer_refuses_what_the_reader_cannot_load(tmp_path, key, words):
    path = tmp_path / "k.key"
    with pytest.raises(InvalidArgument, match=words) as info:
        write_key_file(path, key)
    assert "\n" not in str(info.value)
    assert not path.exists()  # refused before the file is made


def test_a_byte_order_mark_is_accepted(tmp_path):
    key = seeded_key("qa-keyfile-bom")
    path = tmp_path / "notepad.key"
    write_key_file(path, key)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert read_key_file(path) == key
    path.write_bytes(b"\xef\xbb\xbf" + key.hex().encode())  # bare hex after the mark
    assert read_key_file(path) == key


def test_a_key_of_the_wrong_length_in_a_file_says_so(tmp_path):
    path = tmp_path / "long.key"
    path.write_text("aigc-wm-key-v1:" + "ab" * 100 + "\n")
    with pytest.raises(LabelerError, match="holds no key .*200 hex digits, where a key has 32 to 128"):
        read_key_file(path)


def test_a_nul_in_the_key_path_is_one_line(tmp_path):
    with pytest.raises(LabelerError) as info:
        read_key_file(str(tmp_path / "a\0.key"))
    assert "\n" not in str(info.value)
