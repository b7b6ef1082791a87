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
