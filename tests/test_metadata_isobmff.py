"""ISO-BMFF carrier (MP4, MOV, M4A): ``AIGC`` key in ``moov/udta/meta`` keys + ilst (``mp4-keys``).

Media are made with ffmpeg (libx264 + AAC) and checked with independent
readers: ffmpeg itself (decoded frames as framemd5, tags through its
``ffmetadata`` muxer), ffprobe and exiftool when installed, mutagen for iTunes
tags. Box layouts are checked with a small box walker written here, separately
from the module under test.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import random
import shutil
import struct
import subprocess
from pathlib import Path

import mutagen.mp4
import pytest
from conftest import PRODUCER, corpus_path, ffmpeg_exe, run_ffmpeg

from labeler import limits
from labeler.errors import CorruptFile, LabelerError, UnsafeInput, UnsupportedFormat
from labeler.metadata import FoundLabel, isobmff, write_label
from labeler.record import AIGCLabel

VALUE = AIGCLabel(PRODUCER, "vid-2025-000042").to_json()
VALUE2 = AIGCLabel(PRODUCER, "vid-2025-000043-b").to_json()
OLD = '{"Label":"1","ContentProducer":"kling","ProduceID":"KLingMuse-1"}'
FF = ffmpeg_exe()
# A new meta (hdlr 33 + keys 28 + ilst/item/data 32 + meta header 12) around the UTF-8 value.
NEW_META = 105
STD = "moov/udta/meta (mdta) key 'AIGC' (item {})"


# ------------------------------------------------------------------------------------------ helpers


@functools.lru_cache(maxsize=64)
def _frames(path: str, stamp: tuple[int, int]) -> str:
    proc = subprocess.run([FF, "-v", "error", "-nostdin", "-i", path, "-map", "0", "-f", "framemd5", "-"],
                          capture_output=True)
    errors = proc.stderr.decode(errors="replace").strip()
    assert proc.returncode == 0 and not errors, f"ffmpeg decoding {path}: {errors} (exit {proc.returncode})"
    lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith(b"#")]
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def frames(path: Path) -> str:
    """Digest of every decoded frame of every stream (``ffmpeg -v error -map 0 -f framemd5``).

    Fails the test when ffmpeg prints anything at error level while decoding (so this is also the
    ``ffmpeg -v error -i f -f null -`` check). Cached per file version: sources are decoded once.
    """
    st = path.stat()
    return _frames(str(path), (st.st_size, st.st_mtime_ns))


def ffmpeg_tags(path: Path) -> dict[str, str]:
    """Container tags as ffmpeg reads them (its ffmetadata muxer; no ffprobe needed)."""
    proc = subprocess.run([FF, "-v", "error", "-nostdin", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, check=True)
    tags = {}
    for line in proc.stdout.splitlines()[1:]:
        if line.startswith("["):
            break  # stream/chapter sections follow the global tags
        key, _, value = line.partition("=")
        tags[key] = value.replace("\\=", "=").replace("\\;", ";").replace("\\#", "#").replace("\\\\", "\\")
    return tags


def walk(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int, int]]:
    """(type, start, header length, end) of the boxes in ``data[start:end]``."""
    end = len(data) if end is None else end
    out, pos = [], start
    while end - pos >= 8:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        out.append((kind, pos, header, pos + size))
        pos += size
    return out


def inside(data: bytes, box: tuple[bytes, int, int, int]) -> tuple[int, int]:
    start = box[1] + box[2]
    if box[0] == b"meta" and data[start:start + 4] == b"\x00\x00\x00\x00":
        start += 4  # ISO full box
    return start, box[3]


def find_all(data: bytes, *path: bytes) -> list[tuple[bytes, int, int, int]]:
    """Every box at ``path`` (each step searched in the boxes found by the previous one)."""
    found = [(b"", 0, 0, len(data))]
    for kind in path:
        found = [b for parent in found for b in walk(data, *inside(data, parent)) if b[0] == kind]
    return found


def find(data: bytes, *path: bytes) -> tuple[bytes, int, int, int]:
    hits = find_all(data, *path)
    assert hits, f"no box {path}"
    return hits[0]


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def data_atom(text: str, dtype: int = 1) -> bytes:
    return box(b"data", struct.pack(">II", dtype, 0) + text.encode())


def insert(data: bytes, path: tuple[bytes, ...], payload: bytes, at_end: bool = True) -> bytes:
    """Insert ``payload`` at the end (or start) of the children of the box at ``path``, fixing sizes."""
    chain = [find(data, *path[:i + 1]) for i in range(len(path))]
    at = chain[-1][3] if at_end else inside(data, chain[-1])[0]
    out = bytearray(data[:at] + payload + data[at:])
    for _, start, header, end in chain:
        assert header == 8
        struct.pack_into(">I", out, start, end - start + len(payload))
    return bytes(out)


def chunk_offsets(data: bytes) -> list[int]:
    out = []
    for stco in find_all(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"):
        count = struct.unpack_from(">I", data, stco[1] + 12)[0]
        out += struct.unpack_from(f">{count}I", data, stco[1] + 16)
    return out


def tfra_offsets(data: bytes) -> list[int]:
    """moof offsets listed in the first tfra box (ISO/IEC 14496-12 8.8.10)."""
    tfra = find(data, b"mfra", b"tfra")
    c = tfra[1] + 8
    wide = 8 if data[c] == 1 else 4
    sizes, count = struct.unpack_from(">II", data, c + 8)
    step = 2 * wide + ((sizes >> 4) & 3) + ((sizes >> 2) & 3) + (sizes & 3) + 3
    fmt = ">Q" if wide == 8 else ">I"
    return [struct.unpack_from(fmt, data, c + 16 + i * step + wide)[0] for i in range(count)]


def shift_chunk_offsets(data: bytes, delta: int) -> bytes:
    out = bytearray(data)
    for stco in find_all(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"):
        count = struct.unpack_from(">I", data, stco[1] + 12)[0]
        for i in range(count):
            at = stco[1] + 16 + 4 * i
            struct.pack_into(">I", out, at, struct.unpack_from(">I", out, at)[0] + delta)
    return bytes(out)


def read_bytes(data: bytes) -> list[FoundLabel]:
    return isobmff.read(io.BytesIO(data))


def label_bytes(data: bytes, value: str = VALUE) -> bytes:
    out = io.BytesIO()
    isobmff.write(io.BytesIO(data), out, value)
    return out.getvalue()


def keys_of(data: bytes, *path: bytes) -> list[bytes]:
    keys = find(data, *path, b"keys")
    count = struct.unpack_from(">I", data, keys[1] + 12)[0]
    names, pos = [], keys[1] + 16
    for _ in range(count):
        size = struct.unpack_from(">I", data, pos)[0]
        names.append(data[pos + 8:pos + size])
        pos += size
    return names


def items_of(data: bytes, *path: bytes) -> dict[bytes, list[bytes]]:
    """ilst item type -> its data values."""
    out: dict[bytes, list[bytes]] = {}
    for item in walk(data, *inside(data, find(data, *path, b"ilst"))):
        values = [data[d[1] + 16:d[3]] for d in walk(data, item[1] + 8, item[3]) if d[0] == b"data"]
        out.setdefault(item[0], []).extend(values)
    return out


def xmp_packet(body: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        f'xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/">{body}</rdf:Description></rdf:RDF></x:xmpmeta>\n'
        + " " * 200 + '\n<?xpacket end="w"?>'
    ).encode()


# ------------------------------------------------------------------------------------------ media


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("isobmff")
    av = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=1",
          "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
          "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "4", "-c:a", "aac", "-b:a", "32k", "-shortest"]
    run_ffmpeg(*av, str(d / "end.mp4"))  # moov after mdat
    run_ffmpeg("-i", str(d / "end.mp4"), "-c", "copy", "-movflags", "+faststart", str(d / "fast.mp4"))
    run_ffmpeg("-i", str(d / "end.mp4"), "-c", "copy", "-f", "mov", str(d / "clip.mov"))
    run_ffmpeg("-f", "lavfi", "-i", "sine=frequency=330:duration=1", "-c:a", "aac", "-b:a", "32k",
               "-metadata", "title=Song", str(d / "song.m4a"))
    # Fragmented: ffmpeg's default tfhd has an absolute base_data_offset; default_base_moof: relative.
    run_ffmpeg("-i", str(d / "end.mp4"), "-c", "copy", "-movflags", "frag_keyframe", str(d / "frag.mp4"))
    run_ffmpeg("-i", d / "end.mp4", "-c", "copy", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
               str(d / "fragmoof.mp4"))
    run_ffmpeg("-i", str(d / "end.mp4"), "-c", "copy", "-moov_size", "3000", str(d / "reserved.mp4"))
    run_ffmpeg("-i", str(d / "end.mp4"), "-c", "copy", "-metadata", f"AIGC={OLD}", "-metadata", "title=Clip",
               "-movflags", "use_metadata_tags", str(d / "fflabel.mp4"))
    return {p.name: p for p in d.iterdir()}


def label_file(src: Path, tmp_path: Path, value: str = VALUE) -> Path:
    dst = tmp_path / f"out{src.suffix}"
    with src.open("rb") as s, dst.open("w+b") as o:
        isobmff.write(s, o, value)
    return dst


def labels(path: Path) -> list[FoundLabel]:
    with path.open("rb") as f:
        return isobmff.read(f)


def mdat_payload(data: bytes) -> bytes:
    return b"".join(data[b[1] + b[2]:b[3]] for b in walk(data) if b[0] == b"mdat")


# ------------------------------------------------------------------------------------------ write/read


@pytest.mark.parametrize(
    "name", ["end.mp4", "fast.mp4", "clip.mov", "song.m4a", "frag.mp4", "fragmoof.mp4", "reserved.mp4"]
)
def test_write_read_decode_identical(media, tmp_path, name):
    src = media[name]
    out = label_file(src, tmp_path)
    assert labels(src) == []
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, STD.format(1))]
    before, after = src.read_bytes(), out.read_bytes()
    # The label is one new meta; nothing else grows, except where a free box absorbs it (-moov_size).
    grown = len(after) - len(before)
    assert grown == (0 if name == "reserved.mp4" else NEW_META + len(VALUE))
    meta = find_all(after, b"moov", b"udta", b"meta")[-1]  # after ffmpeg's iTunes-style meta
    assert after[meta[1]:meta[3]] == isobmff._new_meta(VALUE)
    assert mdat_payload(after) == mdat_payload(before)
    assert [b[0] for b in walk(after)] == [b[0] for b in walk(before)]
    # Decoding reads the samples through the (shifted) chunk offsets: equal frames prove the offsets.
    assert frames(out) == frames(src)
    assert ffmpeg_tags(out)["AIGC"] == VALUE
    if name == "fast.mp4":
        assert chunk_offsets(after) == [o + grown for o in chunk_offsets(before)]
    if name == "frag.mp4":  # the random-access index (tfra) points at the moved fragments
        moofs = [b[1] for b in walk(after) if b[0] == b"moof"]
        assert len(moofs) > 1 and tfra_offsets(after) == moofs
    if name == "reserved.mp4":  # the moov grew into the padding: the media did not move
        assert chunk_offsets(after) == chunk_offsets(before)


def test_write_twice_replaces_in_place(media, tmp_path):
    once = label_file(media["fast.mp4"], tmp_path)
    twice = label_file(once, tmp_path / "..", VALUE2)
    assert labels(twice) == [FoundLabel("mp4-keys", VALUE2, STD.format(1))]
    a, b = once.read_bytes(), twice.read_bytes()
    assert len(b) - len(a) == len(VALUE2) - len(VALUE)
    assert keys_of(b, b"moov", b"udta", b"meta") == [b"AIGC"]
    assert frames(twice) == frames(media["fast.mp4"])


def test_write_label_api(media, tmp_path):
    result = write_label(media["end.mp4"], tmp_path / "api.mp4", VALUE)
    assert (result.format, result.carrier, result.other_copies) == ("mp4", "mp4-keys", ())
    assert result.bytes_added == NEW_META + len(VALUE)


def test_m4a_keeps_itunes_tags(media, tmp_path):
    src = media["song.m4a"]
    out = label_file(src, tmp_path)
    before, after = src.read_bytes(), out.read_bytes()
    # ffmpeg's iTunes-style meta (hdlr mdir, ©nam, ©too) stays first and byte for byte; ours follows it.
    old_meta = find(before, b"moov", b"udta", b"meta")
    metas = find_all(after, b"moov", b"udta", b"meta")
    assert len(metas) == 2
    assert after[metas[0][1]:metas[0][3]] == before[old_meta[1]:old_meta[3]]
    assert after[metas[1][1]:metas[1][3]] == isobmff._new_meta(VALUE)
    tags = mutagen.mp4.MP4(out).tags
    assert tags["\xa9nam"] == ["Song"] and "\xa9too" in tags
    ff = ffmpeg_tags(out)
    assert ff["title"] == "Song" and ff["AIGC"] == VALUE and ff["encoder"] == ffmpeg_tags(src)["encoder"]


def test_ffprobe_reads_the_tag(media, tmp_path):
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed")
    for name in ("fast.mp4", "song.m4a", "clip.mov"):
        out = label_file(media[name], tmp_path)
        proc = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags=AIGC,title",
                               "-of", "default=nw=1", str(out)], capture_output=True, text=True, check=True)
        assert f"TAG:AIGC={VALUE}" in proc.stdout.splitlines()
        if name == "song.m4a":
            assert "TAG:title=Song" in proc.stdout.splitlines()


@pytest.mark.exiftool
def test_exiftool_reads_the_keys_tag(media, tmp_path):
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool not installed")
    for name in ("end.mp4", "song.m4a", "clip.mov"):
        out = label_file(media[name], tmp_path)
        proc = subprocess.run(["exiftool", "-s3", "-Keys:AIGC", "-ItemList:Title", str(out)],
                              capture_output=True, text=True, check=True)
        lines = proc.stdout.splitlines()
        assert lines[0] == VALUE
        if name == "song.m4a":
            assert lines[1:] == ["Song"]


def test_ffmpeg_labelled_file_is_read_and_replaced_in_place(media, tmp_path):
    src = media["fflabel.mp4"]
    before = src.read_bytes()
    keys = keys_of(before, b"moov", b"udta", b"meta")
    index = keys.index(b"AIGC") + 1
    assert labels(src) == [FoundLabel("mp4-keys", OLD, STD.format(index))]
    out = label_file(src, tmp_path)
    after = out.read_bytes()
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, STD.format(index))]
    assert keys_of(after, b"moov", b"udta", b"meta") == keys  # same keys, same numbering
    items = items_of(after, b"moov", b"udta", b"meta")
    assert items[struct.pack(">I", index)] == [VALUE.encode()]
    old_items = items_of(before, b"moov", b"udta", b"meta")
    assert {k: v for k, v in items.items() if k != struct.pack(">I", index)} == {
        k: v for k, v in old_items.items() if k != struct.pack(">I", index)
    }
    assert len(after) - len(before) == len(VALUE) - len(OLD)
    tags = ffmpeg_tags(out)
    assert tags["AIGC"] == VALUE and tags["title"] == "Clip"
    assert frames(out) == frames(src)


def test_vendor_key_is_reported_and_kept(media, tmp_path):
    src = tmp_path / "vendor.mp4"
    run_ffmpeg("-i", str(media["end.mp4"]), "-c", "copy", "-metadata", "aigc_label_type=1",
               "-movflags", "use_metadata_tags", str(src))
    found = labels(src)
    assert [(f.carrier, f.raw, f.standard) for f in found] == [("vendor-key", "1", False)]
    out = label_file(src, tmp_path)
    assert [(f.carrier, f.raw, f.standard) for f in labels(out)] == [
        ("mp4-keys", VALUE, True), ("vendor-key", "1", False)
    ]
    # ffmpeg's keys table gets the key appended (one keys table per movie: see the QuickTime test).
    old_keys = keys_of(src.read_bytes(), b"moov", b"udta", b"meta")
    assert b"aigc_label_type" in old_keys
    assert keys_of(out.read_bytes(), b"moov", b"udta", b"meta") == [*old_keys, b"AIGC"]
    assert labels(out)[0].location == STD.format(len(old_keys) + 1)
    assert ffmpeg_tags(out)["AIGC"] == VALUE and ffmpeg_tags(out)["aigc_label_type"] == "1"


# ------------------------------------------------------------------------------------ other carriers


def test_keyless_ilst_items_are_read_then_removed(media, tmp_path):
    # A phone app's export: iTunes-style freeform '----' item named AIGC, and the JSON in a comment.
    base = media["song.m4a"].read_bytes()
    freeform = box(b"----", box(b"mean", b"\0\0\0\0com.apple.iTunes") + box(b"name", b"\0\0\0\0AIGC")
                   + data_atom(OLD))
    comment = box(b"\xa9cmt", data_atom(OLD.replace("KLingMuse-1", "KLingMuse-2")))
    src = tmp_path / "phone.m4a"
    src.write_bytes(insert(base, (b"moov", b"udta", b"meta", b"ilst"), freeform + comment))
    assert [(f.carrier, f.raw, f.location) for f in labels(src)] == [
        ("mp4-ilst", OLD, "moov/udta/meta (mdir) ilst item '----' name 'AIGC'"),
        ("mp4-ilst", OLD.replace("KLingMuse-1", "KLingMuse-2"), "moov/udta/meta (mdir) ilst item '\xa9cmt'"),
    ]
    assert frames(src) == frames(media["song.m4a"])
    out = tmp_path / "phone-out.m4a"
    result = write_label(src, out, VALUE)
    assert result.other_copies == ()
    after = out.read_bytes()
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, STD.format(1))]
    # What is left of the iTunes meta is exactly ffmpeg's original one.
    old_meta = find(base, b"moov", b"udta", b"meta")
    new_meta = find_all(after, b"moov", b"udta", b"meta")[0]
    assert after[new_meta[1]:new_meta[3]] == base[old_meta[1]:old_meta[3]]
    assert mutagen.mp4.MP4(out).tags["\xa9nam"] == ["Song"]
    assert frames(out) == frames(media["song.m4a"])


MAKE = b"com.apple.quicktime.make"


def qt_meta(*entries: tuple[bytes, str]) -> bytes:
    """QuickTime's keyed metadata as an iPhone writes it: a plain (not full) meta box under moov."""
    hdlr = box(b"hdlr", b"\0" * 8 + b"mdta" + b"\0" * 13)
    keys = box(b"keys", struct.pack(">II", 0, len(entries)) + b"".join(box(b"mdta", k) for k, _ in entries))
    items = b"".join(box(struct.pack(">I", i), data_atom(v)) for i, (_, v) in enumerate(entries, start=1))
    return box(b"meta", hdlr + keys + box(b"ilst", items))


def test_quicktime_moov_meta_gets_the_key(media, tmp_path):
    # ffmpeg uses the first keys table of a movie for every keyed ilst: a second keyed meta in udta
    # would make it misread either table, so the label joins the moov/meta table that is there.
    src = tmp_path / "phone.mov"
    src.write_bytes(insert(media["clip.mov"].read_bytes(), (b"moov",),
                           qt_meta((MAKE, "Apple"), (b"com.apple.quicktime.model", "iPhone 15"))))
    assert labels(src) == [] and ffmpeg_tags(src)[MAKE.decode()] == "Apple"
    out = label_file(src, tmp_path)
    after = out.read_bytes()
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, "moov/meta (mdta) key 'AIGC' (item 3)")]
    assert keys_of(after, b"moov", b"meta") == [MAKE, b"com.apple.quicktime.model", b"AIGC"]
    assert len(after) - src.stat().st_size == 12 + 24 + len(VALUE)  # one key entry, one item
    assert not any(b"keys" in after[m[1]:m[3]] for m in find_all(after, b"moov", b"udta", b"meta"))
    moov_meta = next(b for b in walk(after, *inside(after, find(after, b"moov"))) if b[0] == b"meta")
    assert after[moov_meta[1] + 12:moov_meta[1] + 16] == b"hdlr"  # still a plain box
    tags = ffmpeg_tags(out)
    got = (tags[MAKE.decode()], tags["com.apple.quicktime.model"], tags["AIGC"])
    assert got == ("Apple", "iPhone 15", VALUE)
    assert frames(out) == frames(media["clip.mov"])
    if shutil.which("exiftool"):
        proc = subprocess.run(["exiftool", "-s3", "-Keys:AIGC", "-Keys:Make", str(out)],
                              capture_output=True, text=True, check=True)
        assert proc.stdout.splitlines() == [VALUE, "Apple"]


def test_quicktime_moov_meta_label_is_read_and_replaced(media, tmp_path):
    src = tmp_path / "qt.mp4"
    meta = qt_meta((b"AIGC", OLD), (MAKE, "Apple"))
    src.write_bytes(insert(media["end.mp4"].read_bytes(), (b"moov",), meta))
    assert labels(src) == [FoundLabel("mp4-keys", OLD, "moov/meta (mdta) key 'AIGC' (item 1)")]
    assert ffmpeg_tags(src)["AIGC"] == OLD
    out = label_file(src, tmp_path)
    after = out.read_bytes()
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, "moov/meta (mdta) key 'AIGC' (item 1)")]
    assert keys_of(after, b"moov", b"meta") == [b"AIGC", MAKE]
    assert items_of(after, b"moov", b"meta") == {struct.pack(">I", 1): [VALUE.encode()],
                                                 struct.pack(">I", 2): [b"Apple"]}
    assert ffmpeg_tags(out)["AIGC"] == VALUE and ffmpeg_tags(out)[MAKE.decode()] == "Apple"


def test_aigc_key_in_a_second_keys_table_is_removed_with_renumbering(media, tmp_path):
    # ffmpeg's udta/meta table comes first and gets the label; the later moov/meta loses its AIGC key
    # and its make item is renumbered from 2 to 1.
    base = media["fflabel.mp4"].read_bytes()
    src = tmp_path / "two.mp4"
    src.write_bytes(insert(base, (b"moov",), qt_meta((b"AIGC", VALUE2), (MAKE, "Apple"))))
    index = keys_of(base, b"moov", b"udta", b"meta").index(b"AIGC") + 1
    assert labels(src) == [FoundLabel("mp4-keys", OLD, STD.format(index)),
                           FoundLabel("mp4-keys", VALUE2, "moov/meta (mdta) key 'AIGC' (item 1)")]
    out = label_file(src, tmp_path)
    after = out.read_bytes()
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, STD.format(index))]
    assert keys_of(after, b"moov", b"meta") == [MAKE]
    assert items_of(after, b"moov", b"meta") == {struct.pack(">I", 1): [b"Apple"]}
    if shutil.which("exiftool"):
        proc = subprocess.run(["exiftool", "-s3", "-Keys:AIGC", "-Keys:Make", str(out)],
                              capture_output=True, text=True, check=True)
        assert proc.stdout.splitlines() == [VALUE, "Apple"]


def test_second_aigc_key_in_the_standard_meta_is_removed(media, tmp_path):
    base = media["fflabel.mp4"].read_bytes()
    count = len(keys_of(base, b"moov", b"udta", b"meta"))
    # A second AIGC key (another tool appended one) with its item.
    keys = find(base, b"moov", b"udta", b"meta", b"keys")
    data = bytearray(insert(base, (b"moov", b"udta", b"meta", b"keys"), box(b"mdta", b"AIGC")))
    struct.pack_into(">I", data, keys[1] + 12, count + 1)
    data = insert(bytes(data), (b"moov", b"udta", b"meta", b"ilst"),
                  box(struct.pack(">I", count + 1), data_atom(VALUE2)))
    assert [f.raw for f in read_bytes(data)] == [OLD, VALUE2]
    out = label_bytes(data)
    assert [(f.carrier, f.raw) for f in read_bytes(out)] == [("mp4-keys", VALUE)]
    assert keys_of(out, b"moov", b"udta", b"meta") == keys_of(base, b"moov", b"udta", b"meta")


def test_xmp_uuid_box_is_read_and_updated(media, tmp_path):
    pytest.importorskip("labeler.metadata.xmp")
    base = media["end.mp4"].read_bytes()
    escaped = OLD.replace('"', "&quot;")
    packet = xmp_packet(f"<xmp:CreatorTool>PhoneApp 2.1</xmp:CreatorTool><TC260:AIGC>{escaped}</TC260:AIGC>")
    uuid = box(b"uuid", isobmff.XMP_UUID + packet)
    src = tmp_path / "xmp.mp4"
    src.write_bytes(base + uuid)
    assert labels(src) == [FoundLabel("xmp-tc260", OLD, f"top-level XMP uuid box at offset {len(base)}")]
    out = label_file(src, tmp_path)
    found = labels(out)
    assert [(f.carrier, f.raw) for f in found] == [("mp4-keys", VALUE), ("xmp-tc260", VALUE)]
    after = out.read_bytes()
    new_packet = after[walk(after)[-1][1] + 24:]
    assert b"<xmp:CreatorTool>PhoneApp 2.1</xmp:CreatorTool>" in new_packet
    assert len(new_packet) == len(packet)  # the packet's padding absorbed the longer value
    assert frames(out) == frames(media["end.mp4"])


def test_xmp_before_mdat_without_label_is_kept_and_offsets_follow(media, tmp_path):
    pytest.importorskip("labeler.metadata.xmp")
    base = media["fast.mp4"].read_bytes()
    uuid = box(b"uuid", isobmff.XMP_UUID + xmp_packet("<xmp:CreatorTool>Editor</xmp:CreatorTool>"))
    ftyp_end = walk(base)[0][3]
    src = tmp_path / "xmp-front.mp4"
    src.write_bytes(shift_chunk_offsets(base[:ftyp_end] + uuid + base[ftyp_end:], len(uuid)))
    assert labels(src) == [] and frames(src) == frames(media["fast.mp4"])
    out = label_file(src, tmp_path)
    after = out.read_bytes()
    assert after[ftyp_end:ftyp_end + len(uuid)] == uuid
    assert frames(out) == frames(src)


def test_udta_xmp_box_is_read(media, tmp_path):
    pytest.importorskip("labeler.metadata.xmp")
    base = media["clip.mov"].read_bytes()
    packet = xmp_packet(f'<rdf:Description TC260:AIGC="{OLD.replace(chr(34), "&quot;")}"/>')
    data = insert(base, (b"moov", b"udta"), box(b"XMP_", packet))
    assert read_bytes(data) == [FoundLabel("xmp-tc260", OLD, "moov/udta/XMP_ box")]
    out = label_bytes(data)
    assert [(f.carrier, f.raw) for f in read_bytes(out)] == [("mp4-keys", VALUE), ("xmp-tc260", VALUE)]


def test_iloc_offsets_follow_a_moved_mdat(media, tmp_path):
    # A file-based item (ISO/IEC 14496-12 8.11.3, version 1, 4-byte offsets) pointing into mdat.
    base = media["fast.mp4"].read_bytes()

    def with_iloc(target: int) -> bytes:
        iloc = box(b"iloc", bytes([1, 0, 0, 0]) + bytes([0x44, 0x00]) + struct.pack(">H", 1)
                   + struct.pack(">HHHH", 7, 0, 0, 1) + struct.pack(">II", target, 16))
        meta = box(b"meta", b"\0\0\0\0" + box(b"hdlr", b"\0" * 8 + b"test" + b"\0" * 13) + iloc)
        return insert(base, (b"moov",), meta)

    probe = with_iloc(0)
    grown = len(probe) - len(base)
    mdat = next(b for b in walk(probe) if b[0] == b"mdat")
    target = mdat[1] + mdat[2] + 100
    src = shift_chunk_offsets(with_iloc(target), grown)
    out = label_bytes(src)
    iloc = find(out, b"moov", b"meta", b"iloc")
    moved = struct.unpack_from(">I", out, iloc[1] + 12 + 2 + 2 + 8)[0]
    assert out[moved:moved + 16] == src[target:target + 16]
    assert moved - target == len(out) - len(src) == NEW_META + len(VALUE)


def test_largesize_mdat_is_copied(media, tmp_path):
    # ffmpeg's 8-byte 'free' before mdat is the room for a 64-bit header: use it, offsets stay valid.
    base = media["end.mp4"].read_bytes()
    free, mdat = walk(base)[1:3]
    assert free[0] == b"free" and free[3] - free[1] == 8 and mdat[0] == b"mdat"
    src = tmp_path / "large.mp4"
    header = struct.pack(">I4sQ", 1, b"mdat", mdat[3] - mdat[1] + 8)
    src.write_bytes(base[:free[1]] + header + base[mdat[1] + 8:])
    assert frames(src) == frames(media["end.mp4"])
    out = label_file(src, tmp_path)
    after = out.read_bytes()
    assert after[free[1]:free[1] + 16] == header
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, STD.format(1))]
    assert frames(out) == frames(src)


def test_chunk_offset_overflow_is_refused(media, tmp_path):
    # A sparse file over 4 GiB whose last stco entry lies past 4 GiB - 100: moving it would overflow.
    base = bytearray(media["fast.mp4"].read_bytes())
    mdat = next(b for b in walk(bytes(base)) if b[0] == b"mdat")
    struct.pack_into(">I", base, mdat[1], 0)  # size 0: runs to the end of the file
    stco = find(bytes(base), b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco")
    count = struct.unpack_from(">I", base, stco[1] + 12)[0]
    struct.pack_into(">I", base, stco[1] + 16 + 4 * (count - 1), (1 << 32) - 100)
    src = tmp_path / "huge.mp4"
    with src.open("wb") as f:
        f.write(base)
        f.truncate((1 << 32) + (1 << 20))
    with src.open("rb") as s, (tmp_path / "huge-out.mp4").open("w+b") as o:
        with pytest.raises(UnsupportedFormat, match="4 GiB"):
            isobmff.write(s, o, VALUE)
        assert o.tell() == 0  # refused before anything was written


# ------------------------------------------------------------------------------------------ corpus


@pytest.mark.corpus
def test_corpus_720p_round_trip(tmp_path):
    src = corpus_path("video", "pan-720p.mp4")
    out = label_file(src, tmp_path)
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, STD.format(1))]
    assert out.stat().st_size - src.stat().st_size == NEW_META + len(VALUE)
    assert frames(out) == frames(src)


@pytest.mark.corpus
def test_corpus_c2pa_video_keeps_its_boxes(tmp_path):
    src = corpus_path("provenance", "video1.mp4")
    before = src.read_bytes()
    out = label_file(src, tmp_path)
    after = out.read_bytes()
    assert labels(out) == [FoundLabel("mp4-keys", VALUE, STD.format(1))]
    old, new = walk(before), walk(after)
    assert [b[0] for b in old] == [b[0] for b in new]
    for a, b in zip(old, new, strict=True):
        if a[0] != b"moov" and a[0] != b"free":  # C2PA manifest, XMP, media: byte for byte
            assert before[a[1]:a[3]] == after[b[1]:b[3]]
    # The C2PA manifest box stays in place, and so does mdat: the moov grew into the free box after it.
    assert (old[1][0], old[1][1]) == (b"uuid", new[1][1])
    assert before[old[1][1] + 8:old[1][1] + 24] == bytes.fromhex("d8fec3d61b0e483c92975828877ec481")
    assert old[-1][0] == b"mdat" and old[-1][1] == new[-1][1]
    # The moov grew into the free box that follows it, so the file keeps its size.
    assert len(after) == len(before)
    assert frames(out) == frames(src)


@pytest.mark.corpus
def test_corpus_nested_moov_is_clean_and_fast():
    # 1000 moov boxes nested in each other and no movie header: refused on read and on write.
    path = corpus_path("provenance", "nested_moov_1000.mp4")
    with pytest.raises(CorruptFile, match="no mvhd"):
        labels(path)
    with pytest.raises(CorruptFile):
        label_bytes(path.read_bytes())


# ------------------------------------------------------------------------------------------ hostile


def test_truncated_and_missing_moov(media):
    end = media["end.mp4"].read_bytes()
    fast = media["fast.mp4"].read_bytes()
    moov_end = find(end, b"moov")
    moov_fast = find(fast, b"moov")
    cases = {
        "cut in the moov at the end": end[:(moov_end[1] + moov_end[3]) // 2],
        "cut in the moov at the front": fast[:(moov_fast[1] + moov_fast[3]) // 2],
        "cut in the mdat": fast[:len(fast) - 100],
        "no moov": end[:moov_end[1]],
        "empty": b"",
    }
    for what, data in cases.items():
        for op in (read_bytes, label_bytes):
            with pytest.raises(CorruptFile):
                op(data)
            assert what


def test_box_size_past_the_end_of_the_file(media):
    data = bytearray(media["end.mp4"].read_bytes())
    mdat = next(b for b in walk(bytes(data)) if b[0] == b"mdat")
    struct.pack_into(">I", data, mdat[1], 0x7FFFFFFF)
    with pytest.raises(CorruptFile, match="runs past the end"):
        read_bytes(bytes(data))
    data = bytearray(media["end.mp4"].read_bytes())
    udta = find(bytes(data), b"moov", b"udta")
    struct.pack_into(">I", data, udta[1], udta[3] - udta[1] + 1000)
    with pytest.raises(CorruptFile, match="does not fit"):
        label_bytes(bytes(data))


def test_huge_keys_count_is_bounded(media):
    data = bytearray(media["fflabel.mp4"].read_bytes())
    keys = find(bytes(data), b"moov", b"udta", b"meta", b"keys")
    struct.pack_into(">I", data, keys[1] + 12, 0xFFFFFFFF)
    assert [f.raw for f in read_bytes(bytes(data))] == [OLD]
    with pytest.raises(CorruptFile, match="declares 4294967295 keys"):
        label_bytes(bytes(data))


def test_deep_nesting_and_box_floods(media):
    base = media["end.mp4"].read_bytes()
    nested = b"\0\0\0\x08free"
    for _ in range(20000):
        nested = box(b"udta", nested)  # 20000 levels: never recursed into
    data = insert(base, (b"moov",), nested)
    assert read_bytes(data) == []
    assert read_bytes(label_bytes(data)) == [FoundLabel("mp4-keys", VALUE, STD.format(1))]
    flood = insert(base, (b"moov", b"udta"), b"\0\0\0\x08free" * (limits.MAX_BOXES + 1))
    with pytest.raises(UnsafeInput):
        read_bytes(flood)


def test_random_damage_gives_only_labeler_errors(media):
    good = label_bytes(media["fflabel.mp4"].read_bytes())
    moov = find(good, b"moov")
    rng = random.Random(45438)
    for _ in range(300):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(moov[1], moov[3])] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[:rng.randrange(len(data))]
        for op in (read_bytes, label_bytes):
            with contextlib.suppress(LabelerError):
                op(bytes(data))
