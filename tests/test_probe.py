"""The input is identified once: the format table, the probe, and how often a label/verify sniffs or opens."""

from __future__ import annotations

import builtins
import io
import sys
from collections import Counter

import pytest
from conftest import PRODUCER, SAMPLES, seeded_key

from labeler import formats
from labeler.errors import InvalidArgument, LabelerError, UnsupportedFormat
from labeler.formats import FORMAT_TABLE, PIXEL_FORMATS, format_info, sniff
from labeler.metadata import carrier_module
from labeler.probe import probe_array, probe_bytes, probe_path
from labeler.provenance.c2pa_sign import MIME_TYPES
from labeler.stages import STAGES, plan, stage_for


def test_every_fact_about_a_format_comes_from_its_row():
    names = [f.name for f in FORMAT_TABLE]
    assert len(set(names)) == len(names) == len(formats.FORMATS)
    for row in FORMAT_TABLE:
        assert formats.EXTENSIONS[row.name] == row.extensions and row.extensions[0].startswith(".")
        assert MIME_TYPES[row.name] == row.mime and row.mime.split("/")[0] in ("image", "audio", "video")
        assert carrier_module(row.name).__name__ == f"labeler.metadata.{row.carrier}"
        assert formats.medium(row.name) == row.medium
        for alt in row.magic:  # a signature recognises its own format, whatever follows it
            head = bytearray(64)
            for at, sig in alt:
                head[at:at + len(sig)] = sig
            assert sniff(bytes(head)) == row.name
    assert PIXEL_FORMATS == ("jpeg", "png", "webp", "tiff", "avif")
    with pytest.raises(UnsupportedFormat, match="unknown format 'bmp'"):
        format_info("bmp")


def test_probe_of_a_path_bytes_and_an_array():
    p = probe_path(SAMPLES / "photo.jpg")
    size = (SAMPLES / "photo.jpg").stat().st_size
    assert (p.source, p.format, p.medium, p.size) == ("path", "jpeg", "image", size)
    assert p.image_size is not None and p.media is None and p.info is format_info("jpeg")
    clip = probe_path(SAMPLES / "clip.mp4")
    assert clip.medium == "video" and clip.media is not None and clip.media.video[0].width > 0
    assert clip.media is clip.media  # read once
    data = (SAMPLES / "speech.flac").read_bytes()
    b = probe_bytes(data)
    assert (b.source, b.format, b.medium, b.size, b.path) == ("bytes", "flac", "audio", len(data), None)
    np = pytest.importorskip("numpy")
    a = probe_array(np.zeros((40, 60, 3), np.uint8))
    assert (a.source, a.format, a.medium, a.image_size) == ("array", None, "image", (60, 40))


def test_stages_are_one_table_and_plans_merge_one_stages_layers():
    steps = plan(("watermark", "visible", "metadata", "c2pa"), "jpeg")
    assert [(s.name, layers) for s, layers in steps] == [(STAGES[0].name, ("watermark", "visible")),
                                                         ("metadata label", ("metadata",)),
                                                         ("C2PA manifest", ("c2pa",))]
    wav = plan(("visible", "metadata"), "wav")
    assert [s.name for s, _ in wav] == ["audio samples (cue / voice prompt, watermark)", "metadata label"]
    with pytest.raises(LabelerError, match="the visible layer does not support gif files"):
        stage_for("visible", "gif")
    with pytest.raises(InvalidArgument, match="does not fit the input's format"):
        formats.check_extension("jpeg", "x.png")
    # a name ending in a space: the extension is quoted, so the message shows why ".mp4 " is not ".mp4"
    with pytest.raises(InvalidArgument, match=r"output extension '\.mp4 ' does not fit"):
        formats.check_extension("mp4", "clip.mp4 ")


class _Count:
    """Counts calls of ``sniff`` and of ``open`` (builtins and io) while active."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._sniff = sniff.__code__

    def __call__(self, frame, event, arg):  # noqa: ANN001 - sys.setprofile's signature
        if event == "call" and frame.f_code is self._sniff:
            self.calls["sniff"] += 1
        elif event == "c_call" and arg in (builtins.open, io.open):
            self.calls["open"] += 1

    def __enter__(self) -> _Count:
        sys.setprofile(self)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(None)


def test_label_with_every_layer_sniffs_once(tmp_path):
    from labeler import AIGCLabel, label_file
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path / "pki")
    signer = local_signer(pki.chain, pki.signer_key)
    rec = AIGCLabel(PRODUCER, "probe-1")
    with _Count() as count:
        label_file(SAMPLES / "photo.jpg", tmp_path / "out.jpg", rec, layers="watermark,visible,metadata,c2pa",
                   key=seeded_key("test_probe-1"), signer=signer)
    # Before the probe: 4 sniffs (pipeline, image decode, metadata writer, C2PA signer), 19 opens.
    assert count.calls["sniff"] == 1
    assert count.calls["open"] <= 19


def test_verify_sniffs_once():
    from detectors import verify

    with _Count() as count:
        verify(SAMPLES / "photo.jpg")
    assert count.calls["sniff"] == 1


def test_the_page_accepts_every_format():
    """The verification page's file picker offers every extension of the format table."""
    import re

    from labeler.formats import EXTENSIONS

    page = (SAMPLES.parent / "labeler" / "server" / "static" / "index.html").read_text()
    accept = set(re.search(r'accept="([^"]+)"', page).group(1).split(","))
    missing = sorted(e for exts in EXTENSIONS.values() for e in exts if e not in accept)
    assert missing == []


def test_an_ogg_opus_file_of_headers_only_is_refused_in_words(tmp_path):
    """An Ogg Opus file cut after its two header pages (OpusHead, OpusTags): ffmpeg's whole reason is
    "End of file", which said nothing of what is wrong; the error names it."""
    import subprocess

    from labeler.errors import CorruptFile
    from labeler.media.ffmpeg import ffmpeg_exe, probe

    full = tmp_path / "full.opus"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(SAMPLES / "speech.wav"), "-c:a", "libopus",
                    "-b:a", "32k", str(full)], check=True)
    data, pos = full.read_bytes(), 0
    for _ in range(2):  # each page: 27-byte header, segment table, then the segments
        assert data[pos:pos + 4] == b"OggS"
        count = data[pos + 26]
        pos += 27 + count + sum(data[pos + 27:pos + 27 + count])
    headers = tmp_path / "headers.opus"
    headers.write_bytes(data[:pos])
    with pytest.raises(CorruptFile, match="ends before any media data"):
        probe(headers)
