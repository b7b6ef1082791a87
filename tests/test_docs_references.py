"""Every dotted name of ours that README.md and docs/*.md cite (``labeler.x.y``, ``detectors.x.y``)
resolves in the code as it is.

Code moves between modules (the audio band map into ``detectors.audio_bandmap``, the video pass's ffmpeg
command lines into ``labeler.watermark.video_commands``, the silent-audio note into
``labeler.stages_audio``); a reader who follows a stale name finds nothing, so a move must carry the
docs along. Soft-binding algorithm names (``aigc-labeler.wm.dct.1``) are not module paths and are
skipped.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# A dotted name that starts with one of our packages; not part of a longer word, a path or a
# hyphenated identifier such as ``aigc-labeler.wm.dct.1``.
_DOTTED = re.compile(r"(?<![\w/.-])((?:labeler|detectors)(?:\.[A-Za-z_]\w*)+)")


def _resolves(name: str) -> bool:
    """Whether ``name`` is a module, or an attribute chain under the longest importable module prefix."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def _cited() -> dict[str, list[str]]:
    """Each cited dotted name with the ``file:line`` places that cite it."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in _DOTTED.finditer(line):
                found.setdefault(match.group(1), []).append(f"{doc.relative_to(ROOT)}:{number}")
    return found


def test_the_docs_cite_dotted_names() -> None:
    # The scan itself must keep finding the citations (a regex that matches nothing passes vacuously).
    cited = _cited()
    assert "detectors.audio_bandmap._harmonic_predict" in cited
    assert len(cited) >= 50


def test_every_dotted_name_the_docs_cite_exists() -> None:
    stale = {name: places for name, places in _cited().items() if not _resolves(name)}
    assert not stale, "docs cite names the code does not have: " + "; ".join(
        f"{name} ({', '.join(places)})" for name, places in sorted(stale.items()))
