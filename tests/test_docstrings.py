"""The examples in the public modules' docstrings run, on real files made from samples/.

Each module's doctests run in a private folder that holds the files the examples name (``in.png``,
``labeled.jpg``, ``signed.jpg``, ``pki/``...), with the names they use (``key``, ``pixels``,
``png_bytes``, ``upload_bytes``, ``samples``, ``label``, ``info``) already bound.
"""

from __future__ import annotations

import doctest
import importlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import PRODUCER, SAMPLES

MODULES = [
    "labeler", "labeler.api", "labeler.watermark", "labeler.visible.image", "labeler.visible.audio",
    "labeler.visible.voice_prompt", "labeler.visible.video", "labeler.media.video",
    "labeler.provenance.c2pa_sign", "detectors", "detectors.c2pa", "detectors.watermark", "detectors.visible",
    "detectors.visible.image", "detectors.watermark_audio",
]


@pytest.fixture(scope="module")
def namespace(tmp_path_factory) -> tuple[Path, dict[str, object]]:
    from labeler import AIGCLabel, label_file
    from labeler.media import read_image
    from labeler.media.video import video_info
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.provenance.pki import init_test_pki
    from labeler.watermark.keyfile import generate_key

    folder = tmp_path_factory.mktemp("doctest")
    for name, sample in (("in.png", "photo.png"), ("render.png", "photo.png"), ("photo.jpg", "photo.jpg"),
                         ("in.mp4", "clip.mp4")):
        shutil.copy(SAMPLES / sample, folder / name)
    rec = AIGCLabel(PRODUCER, "img-42")
    label_file(SAMPLES / "photo.jpg", folder / "labeled.jpg", rec, layers="visible,metadata")
    label_file(SAMPLES / "photo.jpg", folder / "out.labeled.jpg", rec)
    pki = init_test_pki(folder / "pki")
    label_file(SAMPLES / "photo.jpg", folder / "signed.jpg", rec, layers="metadata,c2pa",
               signer=local_signer(pki.chain, pki.signer_key))
    # 10 s of a chord with a slow swell and a little noise: music-like, long enough for a payload.
    t = np.arange(10 * 44100) / 44100
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330, 440, 554, 660))
    tone = chord * (1 + 0.5 * np.sin(np.pi * t)) + 0.02 * np.random.default_rng(1).standard_normal(t.size)
    globs = {
        "key": generate_key(),
        "pixels": read_image(SAMPLES / "photo.png").pixels,
        "png_bytes": (SAMPLES / "photo.png").read_bytes(),
        "upload_bytes": (folder / "labeled.jpg").read_bytes(),
        "samples": np.stack([tone, tone], axis=1).astype(np.float32),
        "label": rec,
        "info": video_info(folder / "in.mp4"),
    }
    return folder, globs


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(namespace, module_name, monkeypatch):
    folder, globs = namespace
    monkeypatch.chdir(folder)
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name, globs=dict(globs))
    examples = sum(len(t.examples) for t in tests)
    assert examples > 0, f"{module_name} has no docstring examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    skipped = sum(1 for t in tests for e in t.examples if e.options.get(doctest.SKIP))
    assert failed == 0, f"{failed} of {attempted} examples failed in {module_name}"
    assert skipped == 0, f"{skipped} examples of {module_name} are skipped"
