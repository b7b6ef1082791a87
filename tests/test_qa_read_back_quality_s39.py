"""The label read-back names a low --quality as the cause for WebP too (QA, December 2026).

``detectors.read_back.unread_watermark`` tells a JPEG's quality from its quantization tables; a WebP's
cannot be read back from the file, so the callers (CLI, batch, server) pass the quality they encoded
with. Before, a WebP labeled at --quality 20 was said to give the mark "too little to ride on".
"""

from __future__ import annotations

import json

from conftest import PRODUCER, SAMPLES, run_cli, seeded_key_file
from PIL import Image


def test_a_webp_labeled_at_low_quality_names_the_quality(tmp_path):
    src = tmp_path / "photo.webp"
    Image.open(SAMPLES / "photo.jpg").save(src, quality=90)
    key = seeded_key_file(tmp_path / "wm.key")
    dst = tmp_path / "labeled.webp"
    done = run_cli("label", str(src), str(dst), "--producer", PRODUCER, "--produce-id", "rbq-1",
                   "--layers", "watermark", "--key-file", str(key), "--quality", "10", "--json")
    assert done.returncode == 0, done.stderr
    warnings = " ".join(json.loads(done.stdout)["warnings"])
    assert "quality 10" in warnings and "too little to ride on" not in warnings, warnings
