"""The README's Python examples run as printed, in order, in one namespace (as a reader pastes them).

Only the names the README takes as given are made here: ``render.png`` (a picture to label), ``wm.key``
(what ``aigc keygen`` writes), ``out.mp4`` (a labeled video: the command-line section's second example),
``in.wav``, ``upload_bytes`` (an encoded file in memory) and ``pixels`` (an RGB array).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeler import AIGCLabel, label
from labeler.watermark.keyfile import write_key_file
from tests.conftest import PRODUCER, SAMPLES

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(_python_blocks()) >= 4


def test_the_readme_python_examples_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copyfile(SAMPLES / "photo.png", tmp_path / "render.png")
    shutil.copyfile(SAMPLES / "speech.wav", tmp_path / "in.wav")
    write_key_file(tmp_path / "wm.key")
    label(SAMPLES / "clip.mp4", AIGCLabel(PRODUCER, "vid-7"), dst=tmp_path / "out.mp4", layers="metadata")
    monkeypatch.chdir(tmp_path)
    names = {"upload_bytes": (SAMPLES / "photo.jpg").read_bytes(),
             "pixels": np.asarray(Image.open(SAMPLES / "photo.png").convert("RGB"))}
    for i, block in enumerate(_python_blocks()):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), names)
        except Exception as exc:  # which block, and why: the README is what a reader copies
            pytest.fail(f"README python block {i} failed: {type(exc).__name__}: {exc}\n{block}")
    assert names["report"].verdict == "confirmed"
    assert (tmp_path / "out.wav").exists() and (tmp_path / "render.api.png").exists()
