"""Write one marked section of ``benchmarks/RESULTS.md`` (replaced in place, other sections kept)."""

from __future__ import annotations

import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n"


def machine() -> str:
    """One line: CPU, Python and library versions."""
    import cv2
    import numpy as np
    import PIL
    import pywt

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}; Python {platform.python_version()}, numpy {np.__version__}, Pillow {PIL.__version__}, "
            f"opencv {cv2.__version__}, pywavelets {pywt.__version__}")


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

    ``name`` is ``TOPIC:PART`` (e.g. ``watermark:speed``, ``visible:video``, ``batch:robustness``).
    """
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n_Machine: {machine()}_\n\n{body.strip()}\n{end}"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
