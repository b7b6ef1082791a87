"""QA (s36) of the watermark library API's argument checks: the image and audio embed / detect functions,
the streaming :class:`AudioEmbedder` and :class:`AudioDetector`, as a generation backend calls them.

Every bad argument must be a one-line :class:`WatermarkError`, never a TypeError from inside numpy nor a
silently wrong result (a stream reshaped into another signal, a p-value that counts too few windows).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from detectors.watermark import detect, detect_audio, detect_half
from detectors.watermark_audio import AudioDetector
from labeler.watermark import WatermarkError, embed, embed_audio
from labeler.watermark.audio import AudioEmbedder, embed_audio_blocks
from labeler.watermark.payload import TooSmallForWatermark
from tests.conftest import SAMPLES

KEY = bytes(range(32))
PAYLOAD = b"ABCDEFGH"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 256 x 256 crop of samples/photo.png (RGB, uint8)."""
    with Image.open(SAMPLES / "photo.png") as im:
        return np.asarray(im.convert("RGB"))[:256, :256].copy()


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    """The first 4 s of samples/speech.wav as int16 (22.05 kHz mono)."""
    x, fs = sf.read(str(SAMPLES / "speech.wav"), dtype="int16")
    return x[: 4 * fs], fs


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(err.value)
    assert "\n" not in text and text
    return text


# --- numbers that are not numbers ---------------------------------------------------------------------


@pytest.mark.parametrize("strength", ["2", True, [2]])
def test_image_strength_must_be_a_number(photo: np.ndarray, strength: object) -> None:
    # "2" and True were taken through float(), [2] raised TypeError from inside it
    with pytest.raises(WatermarkError) as err:
        embed(photo, PAYLOAD, key=KEY, strength=strength)
    assert "number" in _one_line(err)


@pytest.mark.parametrize("threshold", [float("nan"), 0, -1, 2, "1e-6", None])
def test_detector_thresholds_are_checked(photo: np.ndarray, speech: tuple[np.ndarray, int],
                                         threshold: object) -> None:
    # NaN / 0 / -1 silently reported every mark as absent; a str or None raised TypeError deep inside
    x, fs = speech
    half = np.ascontiguousarray(photo[::2, ::2, 0])
    for call in (lambda: detect(photo, key=KEY, threshold=threshold),
                 lambda: detect_half(half, key=KEY, threshold=threshold),
                 lambda: detect_audio(x, fs, key=KEY, threshold=threshold),
                 lambda: AudioDetector(fs, key=KEY, threshold=threshold)):
        with pytest.raises(WatermarkError) as err:
            call()
        assert "threshold" in _one_line(err)


@pytest.mark.parametrize("half", [[[0] * 64] * 64, np.ones((64, 64), bool), np.ones((64, 64), np.complex64),
                                  np.full((64, 64), np.nan, np.float32)],
                         ids=["list", "bool", "complex", "nan"])
def test_detect_half_refuses_what_is_not_luma(half: object) -> None:
    # a list raised AttributeError; bool / complex / NaN arrays were read as pixels (found=False, silently)
    with pytest.raises(WatermarkError) as err:
        detect_half(half, key=KEY)
    _one_line(err)


@pytest.mark.parametrize("kw", [{"strength": "0.5"}, {"strength": None}, {"strength": [0.5]},
                                {"strength": True}, {"snr_db": "30"}, {"snr_db": None}])
def test_audio_strength_and_snr_must_be_numbers(speech: tuple[np.ndarray, int], kw: dict) -> None:
    x, fs = speech
    with pytest.raises(WatermarkError) as err:
        embed_audio(x, fs, PAYLOAD, key=KEY, **kw)
    assert "must be a number" in _one_line(err)


@pytest.mark.parametrize("channels", [2.7, "2", None])
def test_embedder_channel_count_must_be_an_integer(channels: object) -> None:
    # 2.7 became 2 and "2" was taken; None raised TypeError
    with pytest.raises(WatermarkError) as err:
        AudioEmbedder(22050, channels, PAYLOAD, key=KEY)
    assert "integer" in _one_line(err)


def test_rate_given_as_text_says_so() -> None:
    with pytest.raises(WatermarkError) as err:
        AudioEmbedder("44100", 1, PAYLOAD, key=KEY)
    assert "'44100'" in _one_line(err)  # was "not 44100", which reads as if 44100 Hz were refused


# --- audio shapes -------------------------------------------------------------------------------------


def test_transposed_audio_is_refused_everywhere(speech: tuple[np.ndarray, int]) -> None:
    x, fs = speech
    wrong = np.stack([x, x])  # (2, n): channels first, by mistake
    # embed said "too short (0.00 s)", detect returned found=False "too short", a stream mixed garbage
    for call in (lambda: embed_audio(wrong, fs, PAYLOAD, key=KEY),
                 lambda: detect_audio(wrong, fs, key=KEY),
                 lambda: AudioDetector(fs, key=KEY).push(wrong),
                 lambda: AudioEmbedder(fs, 2, PAYLOAD, key=KEY).push(wrong)):
        with pytest.raises(WatermarkError) as err:
            call()
        assert "transpose" in _one_line(err)


@pytest.mark.parametrize(("channels", "shape"), [(2, (3000,)), (2, (3000, 3)), (1, (3000, 2))])
def test_embedder_refuses_another_channel_count(channels: int, shape: tuple[int, ...]) -> None:
    # each was reshaped to (-1, channels): samples interleaved into another signal, the length changed
    emb = AudioEmbedder(22050, channels, PAYLOAD, key=KEY)
    with pytest.raises(WatermarkError) as err:
        emb.push(np.zeros(shape, np.float32))
    assert "channel" in _one_line(err)


def test_embedder_scales_integer_blocks_like_embed_audio(speech: tuple[np.ndarray, int]) -> None:
    # int16 blocks went in unscaled (samples of +-32768 as floats): the output was not the audio in [-1, 1]
    x, fs = speech
    whole = embed_audio(x, fs, PAYLOAD, key=KEY)
    emb = AudioEmbedder(fs, 1, PAYLOAD, key=KEY)
    out = np.concatenate([emb.push(x[i:i + 5000]) for i in range(0, len(x), 5000)] + [emb.flush()])
    assert out.dtype == np.float32 and out.shape == (len(x), 1)
    np.testing.assert_allclose(np.clip(out[:, 0], -1, 1), whole, atol=1e-6)


def test_empty_blocks_are_nothing(speech: tuple[np.ndarray, int]) -> None:
    x, fs = speech
    xf = x.astype(np.float32) / 32768
    whole = embed_audio(xf, fs, PAYLOAD, key=KEY)
    blocks = [xf[:9000], xf[:0], np.zeros((0, 1), np.float32), xf[9000:]]
    # embed_audio_blocks refused the empty block as "not shaped (n,)"
    streamed = np.concatenate(list(embed_audio_blocks(blocks, fs, 1, PAYLOAD, key=KEY)))
    np.testing.assert_allclose(streamed[:, 0], whole, atol=1e-6)
    emb = AudioEmbedder(fs, 2, PAYLOAD, key=KEY)
    assert emb.push(np.zeros(0, np.float32)).shape == (0, 2)


def test_embedder_push_after_flush_is_refused(speech: tuple[np.ndarray, int]) -> None:
    # the flush's zero padding used to land mid-stream: the next output was shifted, not the input
    x, fs = speech
    emb = AudioEmbedder(fs, 1, PAYLOAD, key=KEY)
    emb.push(x[:10000])
    emb.flush()
    assert emb.flush().shape == (0, 1)  # a second flush: nothing more
    with pytest.raises(WatermarkError) as err:
        emb.push(x[10000:])
    assert "flush" in _one_line(err)


def test_empty_audio_is_too_short(speech: tuple[np.ndarray, int]) -> None:
    x, fs = speech
    # "any length under 1.5 s gives found=False, too short": an empty array raised a shape error instead
    r = detect_audio(x[:0], fs, key=KEY)
    assert not r.found and "too short" in r.reason
    with pytest.raises(TooSmallForWatermark):
        embed_audio(x[:0], fs, PAYLOAD, key=KEY)
    with pytest.raises(TooSmallForWatermark) as err:
        embed_audio(x[: fs - 1], fs, PAYLOAD, key=KEY)
    assert "0.99 s < 1 s" in _one_line(err)  # was "1.00 s < 1 s"


# --- the streaming detector ---------------------------------------------------------------------------


def test_detector_takes_empty_blocks(speech: tuple[np.ndarray, int]) -> None:
    x, fs = speech
    det = AudioDetector(fs, key=KEY)
    assert det.push(x[:0]) is None and det.push(np.zeros((0, 2), np.int16)) is None  # were shape errors
    assert "too short" in det.result().reason


def test_detector_push_after_result_is_refused(speech: tuple[np.ndarray, int]) -> None:
    # result() reads the rest as the last window; more pushes read more windows than the p-value counts
    # (with frames= the whole-signal plan: 2 windows under 1 window's trials)
    x, fs = speech
    det = AudioDetector(fs, key=KEY, frames=len(x))
    det.push(x[: 2 * fs])
    first = det.result()
    with pytest.raises(WatermarkError) as err:
        det.push(x[2 * fs:])
    assert "result()" in _one_line(err)
    assert det.result() is first


@pytest.mark.parametrize("frames", [-5, 1.5, "100"])
def test_detector_frames_are_checked(frames: object) -> None:
    with pytest.raises(WatermarkError) as err:
        AudioDetector(22050, key=KEY, frames=frames)
    assert "frames" in _one_line(err)


@pytest.mark.parametrize("max_windows", [0, -1, "a", 1.5])
def test_detect_audio_max_windows_checked(speech: tuple[np.ndarray, int], max_windows: object) -> None:
    x, fs = speech
    # 0 and -1 read one window anyway; "a" raised ValueError from int()
    with pytest.raises(WatermarkError) as err:
        detect_audio(x, fs, key=KEY, max_windows=max_windows)
    assert "max_windows" in _one_line(err)


def test_payload_type_is_named_and_memoryview_taken() -> None:
    # a str of 8 characters was told "must be 8 bytes"; a memoryview (accepted as a key) was refused
    from labeler.watermark.payload import WatermarkError as Err
    from labeler.watermark.payload import check_payload

    with pytest.raises(Err, match="not str"):
        check_payload("ABCDEFGH")
    with pytest.raises(Err, match="not 9"):
        check_payload(b"123456789")
    assert check_payload(memoryview(b"12345678")) == b"12345678"
