"""Everything that reads and judges labels: metadata readers, the verdict, the report.

The entry point is :func:`verify`::

    >>> from detectors import verify
    >>> report = verify("labeled.jpg")
    >>> report.verdict, report.metadata.fields["ProduceID"]
"""

from __future__ import annotations

import os
from pathlib import Path

from detectors.metadata import MetadataLayer, judge_metadata
from detectors.report import SCHEMA, Report
from detectors.verdict import VERDICTS, decide
from labeler.errors import LabelerError
from labeler.formats import EXTENSIONS, medium
from labeler.metadata import read_labels

__all__ = ["verify", "Report", "MetadataLayer", "VERDICTS", "SCHEMA"]


def verify(path: str | os.PathLike[str]) -> Report:
    """Read every label layer of the file at ``path`` and judge them.

    Never raises for a bad file: problems reading it are in ``report.errors``
    (and ``report.verdict`` is then ``None``). Thread-safe; keeps no state.
    """
    report = Report(file=os.fspath(path))
    p = Path(path)
    try:
        if p.is_dir():
            raise LabelerError("is a folder, not a file")
        report.size = p.stat().st_size
        fmt, found = read_labels(p)
        report.format, report.medium = fmt, medium(fmt)
    except LabelerError as exc:
        report.errors.append(str(exc))
        return report
    except OSError as exc:
        report.errors.append(exc.strerror or str(exc))
        return report
    except Exception as exc:  # noqa: BLE001 - a parser bug must not stop a batch; it is reported
        report.errors.append(f"internal error while reading ({type(exc).__name__}: {exc}); please report it")
        return report
    ext = p.suffix.lower()
    if ext and ext not in EXTENSIONS.get(fmt, ()):
        report.warnings.append(f"extension {ext} does not match the content ({fmt})")
    report.metadata = judge_metadata(found)
    report.verdict, report.reasons = decide(report.metadata)
    return report
