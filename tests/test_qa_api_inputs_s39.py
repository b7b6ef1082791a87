"""labeler.label and detectors.verify as a generation backend calls them: argument mistakes are one-line
InvalidArgument / TypeError naming the public function, never an "internal error" report, and big-endian
uint16 pixels are the pixels they hold (QA round s39)."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES, seeded_key

from detectors import verify
from labeler import AIGCLabel, label, label_file
from labeler.errors import InvalidArgument
from labeler.media import read_image

KEY = seeded_key("qa-api-inputs-s39")


@pytest.fixture(scope="module")
def pixels16() -> np.ndarray:
    # a 16-bit picture: the photo's 8-bit values spread over 0..65535
    return read_image(SAMPLES / "photo.png").pixels.astype(np.uint16) * 257


def test_big_endian_uint16_pixels_label_and_verify_as_native(pixels16: np.ndarray) -> None:
    big = pixels16.astype(">u2")  # as a 16-bit PNG or TIFF reader may give them
    before = big.copy()
    rec = AIGCLabel(PRODUCER, "s39-big-endian")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either: the same pixels as the native array
        marked = label(big, rec, layers="watermark,visible", key=KEY)
        native = label(pixels16, rec, layers="watermark,visible", key=KEY)
    assert np.array_equal(big, before)  # the caller's array is not touched
    assert marked.dtype == big.dtype and marked.shape == big.shape  # given back in the caller's order
    assert np.array_equal(marked.astype(np.uint16), native)
    report = verify(marked, key=KEY)
    assert report.errors == [] and report.verdict == "confirmed"
    assert report.to_dict() == verify(native, key=KEY).to_dict()


@pytest.mark.parametrize("kind", ["path", "bytes", "array"])
def test_an_unknown_keyword_is_a_type_error_naming_label(kind: str, tmp_path) -> None:
    rec = AIGCLabel(PRODUCER, "s39-kw")
    if kind == "path":
        call = lambda: label(SAMPLES / "photo.png", rec, dst=tmp_path / "out.png", colour="red")  # noqa: E731
    elif kind == "bytes":
        call = lambda: label((SAMPLES / "photo.png").read_bytes(), rec, colour="red")  # noqa: E731
    else:
        call = lambda: label(read_image(SAMPLES / "photo.png").pixels, rec, layers="visible",  # noqa: E731
                             colour="red")
    with pytest.raises(TypeError) as caught:
        call()
    assert not isinstance(caught.value, InvalidArgument)
    assert str(caught.value) == "label() got an unexpected keyword argument 'colour'"
    assert not (tmp_path / "out.png").exists()


def test_the_keywords_label_passes_on_are_those_of_label_file() -> None:
    from labeler.api import _MORE_KEYWORDS  # its own list, checked here against label_file's signature

    own = set(inspect.signature(label).parameters)
    passed_on = set(inspect.signature(label_file).parameters) - own - {"src", "label"}
    assert passed_on == _MORE_KEYWORDS


def test_a_nul_in_a_path_is_a_one_line_error_not_an_internal_one() -> None:
    report = verify(str(SAMPLES / "photo.png") + "\0.png")
    assert report.verdict is None
    assert report.errors == ["the file name contains a NUL character"]


@pytest.mark.parametrize("anchors", [3, b"anchors.pem", 2.5])
def test_trust_anchors_of_the_wrong_type_are_invalid_argument(anchors: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^trust anchors are a PEM file path or a list of them, not "):
        verify(SAMPLES / "photo.jpg", trust_anchors=anchors)


@pytest.mark.parametrize("store", [3, b"/tmp/manifests.db", ""])
def test_a_manifest_store_of_the_wrong_type_is_refused_up_front(store: object) -> None:
    # Before: accepted, and once the watermark was found open_store's TypeError turned the report of a
    # perfectly readable file into "internal error while reading", verdict None.
    marked = label((SAMPLES / "photo.png").read_bytes(), AIGCLabel(PRODUCER, "s39-store"),
                   layers="watermark", key=KEY)
    with pytest.raises(InvalidArgument, match="^manifest_store must be a"):
        verify(marked, key=KEY, manifest_store=store, visible=False)


@pytest.mark.parametrize("visible", ["false", None, 0])
def test_visible_must_be_a_bool(visible: object) -> None:
    with pytest.raises(InvalidArgument, match="^visible must be True or False"):
        verify(SAMPLES / "photo.jpg", visible=visible)


def test_a_numpy_bool_is_a_bool() -> None:
    report = verify(SAMPLES / "photo.jpg", visible=np.bool_(False))
    assert report.errors == [] and "visible" not in report.examined


def test_quick_with_other_layers_says_it_stands_alone() -> None:
    with pytest.raises(InvalidArgument) as caught:
        verify(SAMPLES / "photo.jpg", layers="quick,metadata")
    assert str(caught.value) == "quick stands alone: it cannot be combined with other layers"


def test_layers_as_bytes_names_the_type() -> None:
    with pytest.raises(InvalidArgument) as caught:
        verify(SAMPLES / "photo.jpg", layers=b"metadata")
    assert str(caught.value) == "layers must be a str or a sequence of str, not bytes"


def test_the_summary_of_an_array_does_not_call_its_container_layers_not_examined() -> None:
    # An array has no container: its reasons and verify's docstring call the metadata label and the
    # manifest absent; the summary said "not examined: metadata, c2pa" as if they could have been looked at.
    pixels = read_image(SAMPLES / "photo.png").pixels
    assert verify(pixels, key=KEY).summary() == "<array>: none - no AIGC label found"
    assert verify(pixels).summary() == "<array>: none - no AIGC label found - not examined: watermark"
    # a file still names what it left out
    assert "not examined: metadata, c2pa" in verify(SAMPLES / "photo.png", layers="visible").summary()


def test_visible_false_with_only_the_visible_layer_is_refused() -> None:
    # It examined nothing and still gave the verdict "none" with no warning.
    with pytest.raises(InvalidArgument, match="^no layers to verify: layers names only visible"):
        verify(SAMPLES / "photo.jpg", layers="visible", visible=False)
    assert verify(SAMPLES / "photo.jpg", layers="metadata,visible", visible=False).examined == ["metadata"]


def test_a_nul_in_the_source_path_with_fmt_is_one_line(tmp_path) -> None:
    # Without fmt it was already InvalidArgument; with fmt the sniff's ValueError escaped raw.
    with pytest.raises(InvalidArgument, match="^the input path contains a NUL character$"):
        label(str(SAMPLES / "photo.png") + "\0", AIGCLabel(PRODUCER, "s39-nul"), dst=tmp_path / "o.png",
              fmt="png")
    assert list(tmp_path.iterdir()) == []
