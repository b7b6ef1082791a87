"""Exceptions with one-line messages, so the CLI can print them without a traceback."""

from __future__ import annotations

#: How to replace an existing output, for messages read both on the command line and in Python.
OVERWRITE_HINT = "--overwrite, or overwrite=True in Python"


class LabelerError(Exception):
    """Base class: every error the toolkit raises on purpose.

    ``str(err)`` is a single line fit to show a user after the file name.
    """


class UnsupportedFormat(LabelerError):
    """The file's content is not a container this toolkit handles."""


class CorruptFile(LabelerError):
    """The container is truncated or structurally broken."""


class PartialFile(CorruptFile):
    """A file cut short whose carriers before the cut could be read: ``found`` holds what they gave.

    Readers that can go no further (labeling) see a :class:`CorruptFile`; verification reports what
    was found, and that the file is cut short.
    """

    def __init__(self, message: str, found: list) -> None:
        super().__init__(message)
        self.found = found


class UnsafeInput(LabelerError):
    """The input exceeds a safety bound (size, nesting depth, element count, XML entities)."""


class InvalidLabel(LabelerError):
    """A label record violates GB 45438-2025 Appendix E and cannot be written."""


class UnsupportedLayer(LabelerError):
    """A requested layer does not apply to this input (e.g. the watermark on a GIF, C2PA on an array)."""


class InvalidArgument(LabelerError, ValueError):
    """A parameter has a value the function cannot use (also a ``ValueError``, as callers expect)."""


class LabelWarning(UserWarning):
    """Something a label call did that the caller should know, for calls that return no
    :class:`~labeler.pipeline.LabelResult`.

    :func:`labeler.label` on bytes or an array issues one (``warnings.warn``, pointing at the caller's
    line) for each entry the path form reports in ``LabelResult.warnings``: no watermark embedded in
    silent audio, a palette or CMYK picture written as RGB, another producer's label replaced, a C2PA
    manifest that no longer matches... Turn them into errors with
    ``warnings.simplefilter("error", LabelWarning)``, or collect them with
    ``warnings.catch_warnings(record=True)``.
    """
