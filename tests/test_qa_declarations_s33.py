"""QA pass s33: a label put in the wrong place must not read as "no label".

The GB 45438 Appendix E object (bare or wrapped) or an ``AIGC{...}`` blob in a free-text field of
another carrier -- an ID3 comment, a WAV ``ICMT``, a Vorbis ``COMMENT``, a PNG ``Comment`` chunk, XMP
``dc:description``, a Matroska ``COMMENT`` tag, an FLV or MOV comment -- gave the verdict ``none``
before this pass; JPEG and GIF comments already gave ``possible``. Each carrier is made here with the
tool people use to write it (ffmpeg ``-metadata``, exiftool, mutagen, Pillow) and must now read as a
non-standard declaration (``possible``, the reason naming the carrier), while plain comments and other
tools' JSON in the same fields stay ``none``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from detectors import verify
from labeler.metadata import read_labels, write_label
from tests.conftest import CORPUS, PRODUCER, SAMPLES, ffmpeg_exe

LABEL = json.dumps({
    "Label": "1", "ContentProducer": PRODUCER, "ProduceID": "id-1", "ReservedCode1": "",
    "ContentPropagator": PRODUCER, "PropagateID": "id-1", "ReservedCode2": "",
}, separators=(",", ":"))
WRAPPED = json.dumps({"AIGC": json.loads(LABEL)}, separators=(",", ":"))
# What other tools put in the same fields: must never read as a declaration.
OTHER_JSON = '{"label":"cat","camera":"x","Label":"holiday"}'


def _ffmpeg(src: Path, dst: Path, *args: str) -> Path:
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), *args, str(dst)]
    subprocess.run(cmd, check=True, timeout=120)
    return dst


def _exiftool(path: Path, *args: str) -> Path:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool not installed")
    subprocess.run(["exiftool", "-q", "-overwrite_original", *args, str(path)], check=True, timeout=60)
    return path


def _copy(tmp: Path, name: str, out: str) -> Path:
    dst = tmp / out
    shutil.copyfile(SAMPLES / name, dst)
    return dst


def _mp3_comm(tmp: Path, text: str) -> Path:
    from mutagen.id3 import COMM
    from mutagen.mp3 import MP3

    path = _copy(tmp, "speech.mp3", "comm.mp3")
    audio = MP3(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.add(COMM(encoding=1, lang="eng", desc="", text=[text]))
    audio.save(v2_version=3)
    return path


def _mp3_tit3(tmp: Path, text: str) -> Path:
    from mutagen.id3 import TIT3
    from mutagen.mp3 import MP3

    path = _copy(tmp, "speech.mp3", "tit3.mp3")
    audio = MP3(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.add(TIT3(encoding=3, text=[text]))
    audio.save()
    return path


def _wav_id3(tmp: Path, text: str) -> Path:
    from mutagen.id3 import COMM
    from mutagen.wave import WAVE

    path = _copy(tmp, "speech.wav", "id3.wav")
    audio = WAVE(path)
    audio.add_tags()
    audio.tags.add(COMM(encoding=3, lang="eng", desc="", text=[text]))
    audio.save()
    return path


def _flac_comment(tmp: Path, text: str) -> Path:
    from mutagen.flac import FLAC

    path = _copy(tmp, "speech.flac", "comment.flac")
    audio = FLAC(path)
    audio["COMMENT"] = text
    audio.save()
    return path


def _png_text(tmp: Path, text: str, keyword: str = "Comment", kind: str = "tEXt") -> Path:
    info = PngInfo()
    if kind == "iTXt":
        info.add_itxt(keyword, text)
    else:
        info.add_text(keyword, text, zip=kind == "zTXt")
    path = tmp / f"{kind}.png"
    Image.open(SAMPLES / "photo.png").save(path, pnginfo=info)
    return path


def _webp_xmp(tmp: Path, text: str) -> Path:
    path = tmp / "xmp.webp"
    Image.open(SAMPLES / "photo.png").convert("RGB").save(path, quality=80)
    return _exiftool(path, f"-XMP-exif:UserComment={text}")


# (builder, the carrier the reason must name); builders take the text to store.
CARRIERS: dict[str, tuple[Callable[[Path, str], Path], str]] = {
    "mp3 ID3 COMM (mutagen)": (_mp3_comm, "id3-comm"),
    "mp3 ID3 TXXX:comment (ffmpeg)": (
        lambda t, s: _ffmpeg(SAMPLES / "speech.mp3", t / "c.mp3", "-c", "copy", "-metadata", f"comment={s}"),
        "id3-txxx"),
    "mp3 ID3 TIT3": (_mp3_tit3, "id3-tit3"),
    "wav LIST/INFO ICMT (ffmpeg)": (
        lambda t, s: _ffmpeg(SAMPLES / "speech.wav", t / "c.wav", "-c", "copy", "-metadata", f"comment={s}"),
        "riff-info-icmt"),
    "wav id3 chunk COMM": (_wav_id3, "id3-comm"),
    "flac COMMENT=": (_flac_comment, "vorbis-comment-comment"),
    "ogg vorbis DESCRIPTION= (ffmpeg)": (
        lambda t, s: _ffmpeg(SAMPLES / "speech.wav", t / "c.ogg", "-c:a", "libvorbis",
                             "-metadata", f"description={s}"),
        "vorbis-comment-description"),
    "png tEXt Comment": (_png_text, "png-text-comment"),
    "png zTXt Comment": (lambda t, s: _png_text(t, s, kind="zTXt"), "png-text-comment"),
    "png iTXt Description": (lambda t, s: _png_text(t, s, "Description", "iTXt"), "png-text-description"),
    "jpeg XMP dc:description (exiftool)": (
        lambda t, s: _exiftool(_copy(t, "photo.jpg", "d.jpg"), f"-XMP-dc:Description={s}"),
        "xmp-description"),
    "png XMP exif:UserComment (exiftool)": (
        lambda t, s: _exiftool(_copy(t, "photo.png", "u.png"), f"-XMP-exif:UserComment={s}"),
        "xmp-usercomment"),
    "webp XMP exif:UserComment (exiftool)": (_webp_xmp, "xmp-usercomment"),
    "mkv COMMENT tag (ffmpeg)": (
        lambda t, s: _ffmpeg(SAMPLES / "clip.mkv", t / "c.mkv", "-c", "copy", "-metadata", f"comment={s}"),
        "mkv-tag-comment"),
    "flv onMetaData comment (ffmpeg)": (
        lambda t, s: _ffmpeg(SAMPLES / "clip.mp4", t / "c.flv", "-c", "copy", "-metadata", f"comment={s}"),
        "flv-onmetadata-comment"),
    "avi LIST/INFO ICMT (ffmpeg)": (
        lambda t, s: _ffmpeg(SAMPLES / "clip.mp4", t / "c.avi", "-c", "copy", "-metadata", f"comment={s}"),
        "riff-info-icmt"),
    "mov udta (c)cmt (ffmpeg)": (
        lambda t, s: _ffmpeg(SAMPLES / "clip.mp4", t / "c.mov", "-c", "copy", "-metadata", f"comment={s}"),
        "mp4-udta-cmt"),
}


@pytest.mark.parametrize("case", sorted(CARRIERS))
def test_label_in_a_comment_field_is_a_non_standard_declaration(tmp_path, case):
    build, carrier = CARRIERS[case]
    path = build(tmp_path, LABEL)
    report = verify(path, layers=["metadata"]).to_dict()
    layer = report["layers"]["metadata"]
    assert report["verdict"] == "possible", report["reasons"]
    assert carrier in report["reasons"][0], report["reasons"]
    assert not layer["present"] and not layer["copies"]
    # ffmpeg's MOV muxer writes a comment twice (udta (c)cmt and (c)des): each copy is reported
    assert carrier in [d["carrier"] for d in layer["declarations"]], layer["declarations"]
    assert all(json.loads(d["raw"]) == json.loads(LABEL) for d in layer["declarations"])


@pytest.mark.parametrize("case", ["mp3 ID3 COMM (mutagen)", "wav LIST/INFO ICMT (ffmpeg)", "flac COMMENT=",
                                  "png tEXt Comment", "jpeg XMP dc:description (exiftool)",
                                  "mkv COMMENT tag (ffmpeg)"])
@pytest.mark.parametrize("text", [WRAPPED, "AIGC" + LABEL])
def test_other_label_shapes_in_a_comment_are_declarations(tmp_path, case, text):
    build, carrier = CARRIERS[case]
    report = verify(build(tmp_path, text), layers=["metadata"]).to_dict()
    assert report["verdict"] == "possible"
    assert [d["carrier"] for d in report["layers"]["metadata"]["declarations"]] == [carrier]


@pytest.mark.parametrize("case", ["mp3 ID3 COMM (mutagen)", "wav LIST/INFO ICMT (ffmpeg)", "flac COMMENT=",
                                  "png tEXt Comment", "png XMP exif:UserComment (exiftool)",
                                  "mkv COMMENT tag (ffmpeg)", "mov udta (c)cmt (ffmpeg)"])
@pytest.mark.parametrize("text", ["Made with care by a human, {not AI}", OTHER_JSON])
def test_plain_comments_and_other_json_are_no_declaration(tmp_path, case, text):
    build, _ = CARRIERS[case]
    report = verify(build(tmp_path, text), layers=["metadata"]).to_dict()
    assert report["verdict"] == "none", report["reasons"]
    assert report["layers"]["metadata"]["declarations"] == []


@pytest.mark.parametrize("case", ["mp3 ID3 COMM (mutagen)", "wav LIST/INFO ICMT (ffmpeg)", "flac COMMENT=",
                                  "png tEXt Comment", "jpeg XMP dc:description (exiftool)"])
def test_labeling_such_a_file_keeps_one_label_and_reports_the_declaration(tmp_path, case):
    build, carrier = CARRIERS[case]
    src = build(tmp_path, LABEL)
    out = tmp_path / ("out" + src.suffix)
    result = write_label(src, out, LABEL.replace("id-1", "id-2"))
    assert [(o.carrier, o.standard) for o in result.other_copies] == [(carrier, False)]
    report = verify(out, layers=["metadata"]).to_dict()
    assert report["verdict"] == "confirmed"
    assert report["layers"]["metadata"]["fields"]["ProduceID"] == "id-2"
    assert len(report["layers"]["metadata"]["copies"]) == 1


def test_unreadable_comment_chunk_does_not_make_the_png_unreadable(tmp_path):
    # A Comment chunk is no label carrier: a bad CRC there must not turn a readable file into an error.
    path = _png_text(tmp_path, LABEL)
    data = bytearray(path.read_bytes())
    at = data.find(b"tEXtComment")
    data[at + 12] ^= 0xFF  # a byte of the text: the chunk's CRC no longer matches
    path.write_bytes(bytes(data))
    assert read_labels(path)[1] == []


def test_huge_info_comment_is_skipped_not_refused(tmp_path):
    # Only an AIGC entry over the text limit is refused; a 2 MiB ICMT is someone's long comment, and the
    # label at its start is still reported.
    data = (SAMPLES / "speech.wav").read_bytes()
    fmt_end = data.find(b"fmt ") + 8 + int.from_bytes(data[data.find(b"fmt ") + 4:][:4], "little")
    text = LABEL.encode() + b" " * ((2 << 20) - len(LABEL))
    info = b"INFO" + b"ICMT" + len(text).to_bytes(4, "little") + text
    chunk = b"LIST" + len(info).to_bytes(4, "little") + info
    body = data[12:fmt_end] + chunk + data[fmt_end:]
    path = tmp_path / "long.wav"
    path.write_bytes(b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body)
    assert [(f.carrier, f.standard) for f in read_labels(path)[1]] == [("riff-info-icmt", False)]


def test_a_flood_of_misplaced_labels_gives_a_bounded_report(tmp_path):
    # One declaration per XMP property: a 1 MiB packet of them listed in full made a report of megabytes.
    from detectors.metadata import MAX_DECLARATIONS

    props = "".join(f"<dc:p{i}>{LABEL}</dc:p{i}>" for i in range(4000))
    packet = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
              f'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">{props}</rdf:Description>'
              "</rdf:RDF></x:xmpmeta>")
    path = tmp_path / "flood.png"
    Image.open(SAMPLES / "photo.png").save(path, pnginfo=_xmp_info(packet))
    report = verify(path, layers=["metadata"]).to_dict()
    layer = report["layers"]["metadata"]
    assert report["verdict"] == "possible"
    assert len(layer["declarations"]) == MAX_DECLARATIONS
    unlisted = f"{4000 - MAX_DECLARATIONS} further non-standard AI declarations are not listed"
    assert unlisted in layer["warnings"]


def _xmp_info(packet: str) -> PngInfo:
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet)
    return info


def _media_files() -> list[Path]:
    files = sorted(p for p in SAMPLES.iterdir() if p.suffix not in (".py", ".md"))
    if CORPUS.exists():
        files += sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".md", ".tsv"))
    return files


@pytest.mark.parametrize("path", _media_files(), ids=lambda p: p.name)
def test_no_declaration_in_samples_and_corpus(path):
    # Real files made by others (camera JPEGs, C2PA fixtures, ffmpeg and espeak output) carry comments,
    # XMP descriptions and encoder tags: none of them is a label.
    from labeler.errors import LabelerError

    try:
        _, found = read_labels(path)
    except LabelerError:
        return  # hostile fixtures: refused as before (the corpus README lists them)
    assert [f for f in found if not f.standard] == []
