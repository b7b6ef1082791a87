"""label() on bytes and arrays reports what LabelResult.warnings would say, as LabelWarning; the picture
read-back (detectors.read_back.unread_watermark) works on bytes and says when the output is unreadable.

Each case labels the same input as a file and as bytes: the warnings must be the same, in the same order
(the in-memory path has its own copy of the pipeline's input checks, and this is what keeps them equal).
"""

from __future__ import annotations

import io
import tempfile
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, seeded_key
from PIL import Image

import labeler.atomic
from detectors.read_back import (
    OTHER_WATERMARK_NOTE,
    UNREAD_WATERMARK_NOTE,
    UNREADABLE_OUTPUT_NOTE,
    unread_watermark,
)
from labeler import AIGCLabel, LabelWarning, label, label_file
from labeler.errors import InvalidArgument
from labeler.watermark import payload_from_produce_id


@pytest.fixture(scope="module")
def key() -> bytes:
    return seeded_key("test_qa_api_warnings")


@pytest.fixture(scope="module")
def pki_signer(tmp_path_factory):
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki

    pki = init_test_pki(tmp_path_factory.mktemp("pki") / "keys")
    return local_signer(pki.chain, pki.signer_key)


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def _palette_png() -> bytes:
    return _encoded(Image.open(SAMPLES / "photo.png").convert("RGB").convert("P"), "PNG")


def _cmyk_jpeg() -> bytes:
    return _encoded(Image.open(SAMPLES / "photo.png").convert("CMYK"), "JPEG")


def _small_png() -> bytes:  # 200 x 200: under RELIABLE_PIXELS (256 x 256), over the 128 x 128 minimum
    return _encoded(Image.open(SAMPLES / "photo.png").convert("RGB").crop((0, 0, 200, 200)), "PNG")


def _labeled_by_another(tmp_path: Path) -> bytes:
    out = tmp_path / "other.png"
    label_file(SAMPLES / "photo.png", out, AIGCLabel("another-producer", "their-id-1"))
    return out.read_bytes()


def _signed_jpeg(tmp_path: Path, signer) -> bytes:
    out = tmp_path / "signed.jpg"
    label_file(SAMPLES / "photo.jpg", out, AIGCLabel("another-producer", "their-id-2"),
               layers="metadata,c2pa", signer=signer)
    return out.read_bytes()


def _silent_wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(44100)
        handle.writeframes(bytes(4 * 44100 * 5))  # 5 s of digital silence
    return buf.getvalue()


def _label_bytes_recording(data: bytes, rec: AIGCLabel,
                           **kwargs) -> tuple[bytes, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = label(data, rec, **kwargs)  # the line the warnings must point at
    return out, [w for w in caught if issubclass(w.category, LabelWarning)]


def _no_temp(*args, **kwargs):
    raise AssertionError("label(bytes) made a temporary file")


# name: (make the input, its suffix, layers, words a warning of the case holds, labeled in memory)
CASES = {
    "palette-png": (lambda tmp, signer: _palette_png(), ".png", "watermark,metadata", "8-bit palette image",
                    True),
    "cmyk-jpeg": (lambda tmp, signer: _cmyk_jpeg(), ".jpg", "watermark", "CMYK image written as RGB", True),
    "small-png": (lambda tmp, signer: _small_png(), ".png", "watermark,metadata", "the picture is 200x200",
                  True),
    "relabel": (lambda tmp, signer: _labeled_by_another(tmp), ".png", "metadata",
                "replaces the file's existing", True),
    "c2pa": (lambda tmp, signer: _signed_jpeg(tmp, signer), ".jpg", "metadata",
             "C2PA manifest will no longer", True),
    "silent-wav": (lambda tmp, signer: _silent_wav(), ".wav", "watermark,metadata",
                   "no watermark was embedded", False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bytes_give_the_warnings_of_the_path_form(case, tmp_path, monkeypatch, key, pki_signer):
    make, suffix, layers, words, in_memory = CASES[case]
    data = make(tmp_path, pki_signer)
    rec = AIGCLabel(PRODUCER, f"qa-warn-{case}")
    src = tmp_path / f"in{suffix}"
    src.write_bytes(data)
    result = label(src, rec, dst=tmp_path / f"out{src.suffix}", layers=layers, key=key)
    assert any(words in w for w in result.warnings), result.warnings
    if in_memory:  # the warnings come without spilling the bytes to a file
        for name in ("TemporaryDirectory", "mkstemp", "NamedTemporaryFile"):
            monkeypatch.setattr(tempfile, name, _no_temp)
        monkeypatch.setattr(labeler.atomic, "_create_beside", _no_temp)
    out, caught = _label_bytes_recording(data, rec, layers=layers, key=key)
    assert out == (tmp_path / f"out{src.suffix}").read_bytes()
    assert [str(w.message) for w in caught] == result.warnings
    assert {w.filename for w in caught} == {__file__}  # stacklevel: the caller's line, not labeler's


def test_clean_bytes_warn_nothing(key):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        label((SAMPLES / "photo.png").read_bytes(), AIGCLabel(PRODUCER, "qa-clean"),
              layers="watermark,metadata", key=key)
        label(np.zeros((300, 300, 3), np.uint8), AIGCLabel(PRODUCER, "qa-clean"), layers="visible")


def test_a_small_array_warns_as_the_file_does(key, tmp_path):
    pixels = np.asarray(Image.open(SAMPLES / "photo.png").convert("RGB"))[:200, :200].copy()
    Image.fromarray(pixels).save(tmp_path / "small.png")
    rec = AIGCLabel(PRODUCER, "qa-small-array")
    result = label(tmp_path / "small.png", rec, dst=tmp_path / "out.png", layers="watermark", key=key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        label(pixels, rec, layers="watermark", key=key)
    assert [str(w.message) for w in caught if w.category is LabelWarning] == result.warnings != []


def test_label_warning_can_be_an_error(key):
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabelWarning)
        with pytest.raises(LabelWarning, match="8-bit palette"):
            label(_palette_png(), AIGCLabel(PRODUCER, "qa-strict"), layers="watermark", key=key)


# ---- the read-back on bytes, and on an unreadable output ------------------------------------------------


def test_read_back_of_bytes(key, tmp_path):
    rec = AIGCLabel(PRODUCER, "qa-readback")
    body = label((SAMPLES / "photo.png").read_bytes(), rec, layers="watermark,metadata", key=key)
    assert unread_watermark(body, rec, key) is None
    assert unread_watermark(memoryview(body), rec, key) is None
    (tmp_path / "body.png").write_bytes(body)
    assert unread_watermark(tmp_path / "body.png", rec, key) is None
    # another record's payload is not the one in the picture, which carries this key's mark of another
    # ProduceID: said as a mark already there (detectors.read_back.OTHER_WATERMARK_NOTE)
    other = unread_watermark(body, AIGCLabel(PRODUCER, "qa-other"), key)
    assert other == OTHER_WATERMARK_NOTE.format(payload=payload_from_produce_id("qa-readback").hex())
    assert unread_watermark(body, rec, None) is None


def test_read_back_of_noise_bytes_warns_as_the_path_form(key, tmp_path):
    # Pure noise: the per-image budget leaves the mark unreadable (findings item 2).
    noise = np.random.default_rng(7).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    data = _encoded(Image.fromarray(noise), "PNG")
    rec = AIGCLabel(PRODUCER, "qa-noise")
    (tmp_path / "noise.png").write_bytes(data)
    result = label(tmp_path / "noise.png", rec, dst=tmp_path / "out.png", layers="watermark", key=key)
    assert unread_watermark(tmp_path / "out.png", result, key) == UNREAD_WATERMARK_NOTE
    body = label(data, rec, layers="watermark", key=key)
    assert unread_watermark(body, rec, key) == UNREAD_WATERMARK_NOTE


def test_read_back_skips_video(key):
    rec = AIGCLabel(PRODUCER, "qa-video")
    body = label((SAMPLES / "clip.mp4").read_bytes(), rec, layers="metadata")
    assert unread_watermark(body, rec, key) is None  # pictures, audio up to 30 s, video files under 256 x 256


def test_read_back_of_a_missing_or_unreadable_output_says_so(key, tmp_path):
    rec = AIGCLabel(PRODUCER, "qa-missing")
    result = label(SAMPLES / "photo.png", rec, dst=tmp_path / "out.png", layers="watermark", key=key)
    for output, words in ((tmp_path / "gone.png", "No such file"), (tmp_path, "folder")):
        note = unread_watermark(output, result, key)
        assert note is not None and note.startswith(UNREADABLE_OUTPUT_NOTE) and words in note, note
        assert "too little to ride on" not in note
    note = unread_watermark(b"not a picture", rec, key)
    assert note is not None and note.startswith(UNREADABLE_OUTPUT_NOTE) and "unrecognised" in note
    (tmp_path / "cut.png").write_bytes((tmp_path / "out.png").read_bytes()[:2000])
    note = unread_watermark(tmp_path / "cut.png", result, key)
    assert note is not None and note.startswith(UNREADABLE_OUTPUT_NOTE), note


@pytest.mark.parametrize(("output", "result"), [("x.png", None), ("x.png", "rec"), (5, AIGCLabel("p", "i"))])
def test_read_back_arguments(output, result, key):
    with pytest.raises(InvalidArgument) as info:
        unread_watermark(output, result, key)
    assert "\n" not in str(info.value)
