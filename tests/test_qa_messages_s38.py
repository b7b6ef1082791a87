"""One-line errors say what the user can act on, not how the package is built (QA, December 2026)."""

from __future__ import annotations

import pytest
from conftest import PRODUCER, SAMPLES

from labeler import AIGCLabel, label
from labeler.errors import LabelerError


def test_a_wording_the_label_font_cannot_draw_names_what_it_can():
    """A character outside the shipped font's subset was answered (by the CLI and as a 400 by the server)
    with "rebuild labeler/visible/fonts/NotoSansCJKsc-Subset.otf with make_subset.py": a file inside the
    package, which a user or an API client cannot rebuild."""
    with pytest.raises(LabelerError) as caught:
        label((SAMPLES / "photo.png").read_bytes(), AIGCLabel(PRODUCER, "qa-glyph"), layers="visible",
              text="长AI生成")
    message = str(caught.value)
    assert "'长'" in message and "AI生成" in message and "ASCII" in message
    assert "make_subset" not in message and ".otf" not in message and "\n" not in message


def test_a_relabel_that_shrinks_the_file_prints_a_minus():
    """The label line printed "(+-70446 bytes)" when a relabel made the file smaller (a JPEG whose label
    was in an Extended XMP packet, rewritten without it)."""
    from labeler.cli import _describe

    assert _describe("metadata", {"carrier": "xmp-tc260", "bytes_added": -70446}).endswith("(-70446 bytes)")
    assert _describe("metadata", {"carrier": "xmp-tc260", "bytes_added": 513}).endswith("(+513 bytes)")


def test_labeling_a_marked_picture_again_with_the_same_key_says_why_the_mark_is_lost(tmp_path):
    """A labeled picture, cropped and labeled again with the same key and another ProduceID, kept its first
    mark, which the read-back then found instead of the new one, and the warning blamed the content ("too
    little to ride on"). It now says the input was watermarked already, and names the payload there."""
    import io

    from PIL import Image

    from detectors.read_back import OTHER_WATERMARK_NOTE, unread_watermark
    from labeler.watermark import payload_from_produce_id

    key = bytes(range(32))
    first = label((SAMPLES / "photo.jpg").read_bytes(), AIGCLabel(PRODUCER, "first-id"), layers="watermark",
                  key=key)
    picture = Image.open(io.BytesIO(first))
    cropped = io.BytesIO()  # a crop moves the first mark off the new one's tile grid
    picture.crop((40, 40, *picture.size)).save(cropped, format="JPEG", quality=92)
    again = AIGCLabel(PRODUCER, "second-id")
    second = label(cropped.getvalue(), again, layers="watermark", key=key)
    note = unread_watermark(second, again, key)
    old = payload_from_produce_id("first-id").hex()
    assert note == OTHER_WATERMARK_NOTE.format(payload=old), note
