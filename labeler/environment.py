"""What this installation runs with: the ffmpeg program, its codecs, the C2PA library, the array stack.

``aigc doctor`` prints :func:`describe_environment`; ``aigc --version`` prints its first lines. A bug
report that carries this output says which build decoded and encoded the user's file, which is the
first thing to know when two machines disagree (ffmpeg builds differ in their warnings, their
encoders and their defaults).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from labeler import __version__
from labeler.errors import LabelerError

#: Encoders the layers use, by what they are for. ``required`` ones are used for the default output of
#: a supported format; the rest only for a source that already uses that codec: the video passes keep
#: HEVC, VP9, VP8, AV1, ProRes and FFV1 with their encoders in
#: :data:`labeler.media.video_encoders.ENCODERS`, and write H.264 (VP9 in WebM) where one is missing.
ENCODERS: dict[str, tuple[str, ...]] = {
    "required": ("libx264", "aac", "libmp3lame", "flac", "pcm_s16le"),
    "optional": ("libx265", "libvpx-vp9", "libvpx", "libsvtav1", "libaom-av1", "prores_ks", "ffv1", "libopus",
                 "libvorbis", "libwebp"),
}
#: Environment variables that set the BLAS thread count of NumPy's OpenBLAS (pip wheels) or MKL (conda
#: builds); the ``aigc`` command sets each to 1 unless the user did (:func:`labeler.cli.main`).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Python distributions reported, in this order (``None`` when not installed).
PACKAGES = ("numpy", "opencv-python-headless", "pillow", "pywavelets", "soundfile", "mutagen", "c2pa-python",
            "imageio-ffmpeg", "cryptography", "dask", "distributed")


@dataclass(frozen=True)
class FFmpegReport:
    """The ffmpeg program in use.

    Attributes
    ----------
    path : str or None
        Absolute path, None when no ffmpeg could be found.
    source : str or None
        ``"AIGC_FFMPEG"``, ``"PATH"`` or ``"imageio-ffmpeg"``
        (see :func:`labeler.media.ffmpeg.ffmpeg_choice`).
    version : str or None
        The version word of ``ffmpeg -version``, e.g. ``"5.1.6-0+deb12u1"`` (Debian 12) or
        ``"n9.0.2-17-g2a571b6068-20260930"`` (the imageio-ffmpeg wheel).
    encoders : dict of str to bool
        For every encoder in :data:`ENCODERS`, whether this build has it.
    error : str or None
        Why ffmpeg is unusable, when it is.
    video_fallbacks : dict of str to str
        Video codec families the pixel passes cannot keep with this build (written as H.264, VP9 in
        WebM), each with the encoder it lacks; empty when every family is kept.
    setting : str or None
        The value of ``AIGC_FFMPEG`` the choice was made with (a path, a command or ``"bundled"``), None
        when it is unset: then ``source`` says whether ``PATH`` or the wheel's fallback gave the program.
    """

    path: str | None
    source: str | None
    version: str | None
    encoders: dict[str, bool] = field(default_factory=dict)
    error: str | None = None
    video_fallbacks: dict[str, str] = field(default_factory=dict)
    setting: str | None = None


def ffmpeg_report() -> FFmpegReport:
    """Describe the ffmpeg program the project would run now (never raises)."""
    from labeler.media.ffmpeg import CHILD, FFMPEG_ENV, ffmpeg_choice

    # read as ffmpeg_choice() reads it: the doctor line says which value made the choice
    setting = os.environ.get(FFMPEG_ENV, "").strip() or None
    try:
        choice = ffmpeg_choice()
    except LabelerError as exc:
        return FFmpegReport(None, None, None, error=str(exc), setting=setting)
    try:
        ver = subprocess.run([choice.path, "-hide_banner", "-version"], capture_output=True, text=True,
                             timeout=30, **CHILD)
        enc = subprocess.run([choice.path, "-hide_banner", "-encoders"], capture_output=True, text=True,
                             timeout=30, **CHILD)
    except (OSError, subprocess.SubprocessError) as exc:
        return FFmpegReport(choice.path, choice.source, None, error=f"cannot run {choice.path}: {exc}",
                            setting=setting)
    match = re.search(r"ffmpeg version (\S+)", ver.stdout)
    # An encoder line is " V....D libx264  description": flags, then the name.
    names = {line.split()[1] for line in enc.stdout.splitlines() if re.match(r"^\s[VAS][.A-Z]{5}\s", line)}
    wanted = ENCODERS["required"] + ENCODERS["optional"]
    return FFmpegReport(choice.path, choice.source, match.group(1) if match else None,
                        {name: name in names for name in wanted},
                        # H.264 is the fallback itself: a missing libx264 is a problem (describe_environment)
                        video_fallbacks={family: " or ".join(encoders)
                                         for family, encoders in _video_encoders().items()
                                         if not any(e in names for e in encoders) and family != "h264"},
                        setting=setting)


def _video_encoders() -> dict[str, tuple[str, ...]]:
    """Video codec family -> the encoders the pixel passes may keep it with, in the order they try them."""
    from labeler.media.video_encoders import ALTERNATIVES
    from labeler.media.video_encoders import ENCODERS as VIDEO

    return {family: (encoder, *(other for other, _ in ALTERNATIVES.get(family, ())))
            for family, (encoder, _) in VIDEO.items()}


def _c2pa_versions() -> dict[str, str | None]:
    try:
        import c2pa
    except ImportError as exc:  # a broken native wheel is worth reporting, not crashing on
        return {"c2pa-python": None, "c2pa-rs": None, "error": str(exc)}
    sdk = getattr(c2pa, "sdk_version", None)
    return {"c2pa-python": getattr(c2pa, "__version__", None), "c2pa-rs": sdk() if callable(sdk) else None}


def _package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe_environment() -> dict[str, Any]:
    """Everything :command:`aigc doctor` reports, as a JSON-ready dict (never raises).

    Returns
    -------
    dict
        ``aigc`` (our version), ``python``, ``platform``, ``ffmpeg`` (:class:`FFmpegReport` as a dict),
        ``c2pa`` (``c2pa-python`` and ``c2pa-rs`` versions), ``libsndfile``, ``packages`` (distribution
        name -> version or None), ``threads`` (the BLAS thread variables as this process sees them:
        ``aigc`` sets each to 1 unless the user did, :data:`BLAS_THREAD_VARIABLES`; None where
        unset, as in a host application that imports the library) and ``problems`` (one line each; empty
        when everything the default layers need is there).
    """
    ff = ffmpeg_report()
    c2pa = _c2pa_versions()
    try:
        import soundfile

        libsndfile: str | None = soundfile.__libsndfile_version__
    except (ImportError, OSError):
        libsndfile = None
    problems = []
    if ff.error:
        problems.append(f"ffmpeg: {ff.error}")
    else:
        problems += [f"ffmpeg at {ff.path} has no {name} encoder"
                     for name in ENCODERS["required"] if not ff.encoders.get(name)]
    if c2pa.get("error"):
        problems.append(f"c2pa: {c2pa['error']}")
    if libsndfile is None:
        problems.append("soundfile: libsndfile could not be loaded")
    return {
        "aigc": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "ffmpeg": asdict(ff),
        "c2pa": c2pa,
        "libsndfile": libsndfile,
        "packages": _package_versions(),
        "threads": {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES},
        "problems": problems,
    }


def _video_line(fallbacks: dict[str, str]) -> str:
    """Which video codec families the pixel passes keep with this ffmpeg, and which become H.264."""
    kept = [family for family in _video_encoders() if family not in fallbacks]
    if not fallbacks:
        return f"video: every codec family kept ({', '.join(kept)})"
    lacks = ", ".join(dict.fromkeys(fallbacks.values()))
    return (f"video: {', '.join(fallbacks)} re-encoded as H.264 (VP9 in WebM): this ffmpeg has no {lacks}; "
            f"kept: {', '.join(kept) or 'none'}")


def _chosen_by(ff: dict[str, Any]) -> str:
    """Why this ffmpeg program (README: ``aigc doctor`` shows the choice and why): the ``AIGC_FFMPEG``
    value that named it, else the lookup order that found it (:func:`labeler.media.ffmpeg.ffmpeg_choice`)."""
    from labeler.media.ffmpeg import FFMPEG_ENV

    setting = ff.get("setting")
    if setting and ff["source"] == FFMPEG_ENV:  # a path or a command
        return f"{FFMPEG_ENV}={setting}"
    if setting:  # "bundled": the wheel's program even where PATH has one
        return f"{ff['source']}, chosen by {FFMPEG_ENV}={setting}"
    if ff["source"] == "PATH":
        return f"PATH; {FFMPEG_ENV} is not set"
    return f"{ff['source']}: {FFMPEG_ENV} is not set and PATH has no ffmpeg"


def summary_lines(env: dict[str, Any]) -> list[str]:
    """The human form of :func:`describe_environment`: short ``name: value`` lines, problems last."""
    ff = env["ffmpeg"]
    c2pa = env["c2pa"]
    lines = [
        f"aigc {env['aigc']} (Python {env['python']}, {env['platform']})",
        f"ffmpeg: {ff['version'] or '?'} at {ff['path']} (from {_chosen_by(ff)})" if ff["path"]
        else f"ffmpeg: none ({ff['error']})",
    ]
    if ff["encoders"]:
        have = [name for name, ok in ff["encoders"].items() if ok]
        missing = [name for name, ok in ff["encoders"].items() if not ok]
        absent = f" (missing: {', '.join(missing)})" if missing else ""
        lines.append(f"encoders: {', '.join(have)}{absent}")
        lines.append(_video_line(ff.get("video_fallbacks") or {}))
    lines.append(f"c2pa: c2pa-python {c2pa.get('c2pa-python')}, c2pa-rs {c2pa.get('c2pa-rs')}")
    lines.append(f"libsndfile: {env['libsndfile']}")
    packages = env["packages"]
    lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in packages.items() if v is not None))
    threads = env.get("threads") or {}
    lines.append("threads: " + ", ".join(f"{k}={'unset' if v is None else v}" for k, v in threads.items()))
    problems = env["problems"]
    lines += [f"problem: {p}" for p in problems] or ["problems: none"]
    return lines
