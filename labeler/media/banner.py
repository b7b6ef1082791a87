"""Read stream facts from the banner ffmpeg prints for an input (``ffmpeg -hide_banner -i FILE``).

``imageio-ffmpeg`` ships a static ``ffmpeg`` but no ``ffprobe``, so :func:`labeler.media.ffmpeg.probe`
runs ``ffmpeg -i`` and this module parses what it prints about its input. That text is meant for
people, so the parser takes only what it can recognise and leaves a field ``None`` rather than
guessing; it has been checked against ffmpeg 5.1 and 9.0. Pure text processing: nothing here runs a
program, so it is tested on captured banners.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

from labeler.errors import InvalidArgument


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file, as ffmpeg describes it.

    Attributes
    ----------
    index : int
        Stream index in the file (what ``-map 0:INDEX`` selects).
    kind : str
        ``"video"``, ``"audio"``, ``"subtitle"``, ``"data"`` or ``"attachment"``.
    codec : str
        ffmpeg codec name, e.g. ``"h264"``, ``"aac"``, ``"pcm_s16le"``.
    width, height : int or None
        Frame size in pixels (video), as decoded, before any display rotation.
    fps : float or None
        Frames per second (video): the ``fps`` figure, else ``tbr``. NTSC rates printed
        rounded (``29.97``) are restored to their exact value (30000/1001).
    frame_rate : str or None
        The same rate as an exact ffmpeg rational, e.g. ``"25"`` or ``"30000/1001"``.
    pix_fmt : str or None
        Pixel format of the coded video, e.g. ``"yuv420p"``.
    color_space : str or None
        YUV matrix the stream is tagged with (``"bt709"``, ``"bt470bg"``, ``"smpte170m"``...), if any.
    color_range : str or None
        ``"tv"`` (limited) or ``"pc"`` (full), if tagged.
    color_primaries, color_trc : str or None
        Colour primaries and transfer characteristic the stream is tagged with (``"bt2020"``,
        ``"smpte2084"``...), if any (ffmpeg's names, as ``-color_primaries`` / ``-color_trc`` take them).
    rotation : float or None
        Display rotation in degrees from the stream's display matrix (video), else None.
    sample_aspect_ratio : Fraction or None
        Sample (pixel) aspect ratio of the video, ``[SAR 4:3 DAR 16:9]`` -> ``Fraction(4, 3)``: a player
        shows each stored pixel this many times as wide as it is tall. None for square pixels (1:1),
        an unknown one (0:1) or none printed.
    sample_rate : int or None
        Samples per second per channel (audio), in Hz.
    channels : int or None
        Channel count (audio), from the channel layout name.
    channel_layout : str or None
        ffmpeg's layout name (audio), e.g. ``"stereo"``, ``"5.1(side)"``.
    sample_fmt : str or None
        Decoder sample format (audio), e.g. ``"fltp"``, ``"s16"``.
    bitrate : int or None
        Stream bit rate in bit/s when ffmpeg knows it.
    language : str or None
        ISO 639-2 code from the container, e.g. ``"und"``, ``"eng"``.
    default : bool
        The container marks this stream as default.
    attached_pic : bool
        A cover picture (a still image, not a video track).
    metadata : dict of str to str
        The stream's tags (``handler_name``, ``encoder``...).
    """

    index: int
    kind: str
    codec: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frame_rate: str | None = None
    pix_fmt: str | None = None
    color_space: str | None = None
    color_range: str | None = None
    color_primaries: str | None = None
    color_trc: str | None = None
    rotation: float | None = None
    sample_aspect_ratio: Fraction | None = None
    sample_rate: int | None = None
    channels: int | None = None
    channel_layout: str | None = None
    sample_fmt: str | None = None
    bitrate: int | None = None
    language: str | None = None
    default: bool = False
    attached_pic: bool = False
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` learned about a media file.

    Attributes
    ----------
    container : str
        ffmpeg's demuxer name, e.g. ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"wav"``, ``"mp3"``.
    duration : float or None
        Duration in seconds, None when the container does not say (``N/A``).
    start : float or None
        Start time of the first packet in seconds.
    bitrate : int or None
        Overall bit rate in bit/s.
    streams : tuple of StreamInfo
        Every stream, in file order.
    metadata : dict of str to str
        The container's global tags (``major_brand``, ``encoder``, ``title``...).
    """

    container: str
    duration: float | None
    start: float | None
    bitrate: int | None
    streams: tuple[StreamInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def video(self) -> tuple[StreamInfo, ...]:
        """The video streams that are real tracks (cover pictures left out)."""
        return tuple(s for s in self.streams if s.kind == "video" and not s.attached_pic)

    @property
    def audio(self) -> tuple[StreamInfo, ...]:
        """The audio streams."""
        return tuple(s for s in self.streams if s.kind == "audio")


_INPUT_RE = re.compile(r"^Input #0, (?P<container>[^,]+(?:,[^ ,]+)*), from ")
_STREAM_RE = re.compile(
    r"^\s*Stream #\d+[:.](?P<index>\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\((?P<lang>[^)]*)\))?"
    r"(?:\[0x[0-9a-fA-F]+\])?: (?P<kind>Video|Audio|Subtitle|Data|Attachment): (?P<rest>.*)$"
)
_DURATION_RE = re.compile(
    r"^\s*Duration: (?P<dur>N/A|\d+:\d\d:\d\d(?:\.\d+)?)"
    r"(?:, start: (?P<start>-?[\d.]+))?(?:, bitrate: (?P<rate>N/A|\d+) kb/s)?"
)
_META_RE = re.compile(r"^(?P<indent>\s*)(?P<key>[^:]*?)\s*: ?(?P<value>.*)$")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees")


def parse_banner(text: str) -> MediaInfo | None:
    """Parse the ``Input #0`` part of ffmpeg's stderr; None when there is none (an error).

    Only the first input is read. Chapter and program sections are skipped so their tags
    are not mistaken for the container's or a stream's.
    """
    container: str | None = None
    duration = start = None
    bitrate: int | None = None
    global_meta: dict[str, str] = {}
    streams: list[dict] = []
    # Which block the indented lines below belong to: "input", "stream", "chapter", "program".
    section = ""
    meta: dict[str, str] | None = None
    meta_indent = -1
    last_key = ""
    for line in text.splitlines():
        if container is None:
            match = _INPUT_RE.match(line)
            if match:
                container = match.group("container")
                section = "input"
            continue
        if line.startswith(("Input #", "Output #", "Stream mapping:")) or not line.startswith(" "):
            if line.startswith(("Input #", "Output #", "Stream mapping:")):
                break
            continue  # a log line such as "[mov @ 0x...] ..." or "At least one output file..."
        indent = len(line) - len(line.lstrip(" "))
        stripped = line.strip()
        if meta is not None:
            if indent > meta_indent:
                m = _META_RE.match(line)
                if m and m.group("key"):
                    last_key = m.group("key")
                    meta[last_key] = m.group("value")
                    continue
                if m and last_key:
                    # ffmpeg prints further lines of a multi-line tag as "   : more".
                    meta[last_key] += "\n" + m.group("value")
                    continue
            meta = None
        if stripped == "Metadata:":
            meta = _metadata_target(section, indent, global_meta, streams)
            meta_indent = indent
            last_key = ""
            continue
        match = _DURATION_RE.match(line)
        if match:
            duration, start, bitrate = _duration_line(match)
            section = "input"
            continue
        match = _STREAM_RE.match(line)
        if match:
            streams.append(_parse_stream(match))
            section = "stream"
            continue
        if stripped.startswith("Chapter") or stripped == "Chapters:":
            section = "chapter"
            continue
        if stripped.startswith("Program "):
            section = "program"
            continue
        rot = _ROTATION_RE.search(stripped)
        if rot and section == "stream" and streams:
            # Side data "displaymatrix: rotation of -90.00 degrees" (ffmpeg 5.1 and later).
            streams[-1]["rotation"] = float(rot.group(1))
    if container is None:
        return None
    return MediaInfo(
        container=container,
        duration=duration,
        start=start,
        bitrate=bitrate,
        streams=tuple(StreamInfo(**s) for s in streams),
        metadata=global_meta,
    )


def _metadata_target(section: str, indent: int, global_meta: dict[str, str],
                     streams: list[dict]) -> dict[str, str]:
    """Where the tags of a ``Metadata:`` block go: the container's, the last stream's, or nowhere."""
    if section == "input" and indent == 2:
        return global_meta
    if section == "stream" and streams:
        return streams[-1]["metadata"]
    return {}  # chapter or program tags: parsed and dropped


def _duration_line(match: re.Match[str]) -> tuple[float | None, float | None, int | None]:
    """``(duration s, start s, bit rate bit/s)`` of the ``Duration:`` line; None where ffmpeg says N/A."""
    rate = match.group("rate")
    return (_clock_seconds(match.group("dur")),
            float(match.group("start")) if match.group("start") else None,
            int(rate) * 1000 if rate and rate != "N/A" else None)


def _clock_seconds(text: str) -> float | None:
    if text == "N/A":
        return None
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _split_top(text: str) -> list[str]:
    """Split at commas that are not inside parentheses or brackets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char in "([":
            depth += 1
        elif char in ")]" and depth:
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


_SIZE_RE = re.compile(r"^(\d+)x(\d+)\b")
# The codec's SAR after the size, "1440x1080 [SAR 4:3 DAR 16:9]"; the container's, when it has one that
# differs (Matroska's display size, MP4's pasp), as a part of its own: "720x576, SAR 64:45 DAR 16:9".
_SAR_RE = re.compile(r"SAR (\d{1,9}):(\d{1,9}) DAR \d{1,9}:\d{1,9}")
_RATE_RE = re.compile(r"^([\d.]+)(k?) (fps|tbr)$")
_HZ_RE = re.compile(r"^(\d+) Hz$")
_KBS_RE = re.compile(r"^(\d+) kb/s")


def _parse_stream(match: re.Match[str]) -> dict:
    rest = match.group("rest")
    flags = re.findall(r"\((default|attached pic|forced|dub|original|comment|lyrics|karaoke)\)", rest)
    # Dispositions are printed after the last comma: "... 12800 tbn (default)".
    body = re.sub(r"\s*\((default|attached pic|forced|dub|original|comment|lyrics|karaoke)\)", "", rest)
    parts = _split_top(body)
    codec = parts[0].split()[0] if parts else "unknown"
    stream: dict = {
        "index": int(match.group("index")),
        "kind": match.group("kind").lower(),
        "codec": codec,
        "language": match.group("lang") or None,
        "default": "default" in flags,
        "attached_pic": "attached pic" in flags,
        "metadata": {},
    }
    fps_text = tbr_text = None
    for position, part in enumerate(parts[1:], start=1):
        size = _SIZE_RE.match(part)
        if size and stream["kind"] == "video" and "width" not in stream:
            stream["width"], stream["height"] = int(size.group(1)), int(size.group(2))
            stream["sample_aspect_ratio"] = _sample_aspect_ratio(_SAR_RE.search(part, size.end()))
            continue
        container_sar = _SAR_RE.fullmatch(part)
        if container_sar and stream["kind"] == "video":
            # ffmpeg (and so the overlay, and players) take the container's SAR over the codec's
            stream["sample_aspect_ratio"] = _sample_aspect_ratio(container_sar)
            continue
        rate = _RATE_RE.match(part)
        if rate:
            # ffmpeg abbreviates large rates: "1k tbn", "90k tbn".
            value = str(Fraction(rate.group(1)) * (1000 if rate.group(2) else 1))
            if rate.group(3) == "fps":
                fps_text = value
            else:
                tbr_text = value
            continue
        hz = _HZ_RE.match(part)
        if hz:
            stream["sample_rate"] = int(hz.group(1))
            if position + 1 < len(parts):
                layout = parts[position + 1]
                stream["channel_layout"] = layout
                stream["channels"] = channel_count(layout)
            if position + 2 < len(parts) and not _KBS_RE.match(parts[position + 2]):
                stream["sample_fmt"] = parts[position + 2].split()[0]
            continue
        kbs = _KBS_RE.match(part)
        if kbs:
            stream["bitrate"] = int(kbs.group(1)) * 1000
            continue
        if position == 1 and stream["kind"] == "video" and not _SIZE_RE.match(part):
            stream["pix_fmt"] = re.split(r"[(\s]", part, maxsplit=1)[0]
            stream.update(_colour_tags(part))
    rate_text = fps_text or tbr_text
    if rate_text and stream["kind"] == "video":
        exact = exact_rate(rate_text)
        stream["frame_rate"] = _rational_text(exact)
        stream["fps"] = float(exact)
    return stream


def _sample_aspect_ratio(match: re.Match[str] | None) -> Fraction | None:
    """The SAR ``_SAR_RE`` found; None when square, unknown (0:1, x:0) or not printed."""
    if not match or not int(match.group(1)) or not int(match.group(2)):
        return None
    sar = Fraction(int(match.group(1)), int(match.group(2)))
    return None if sar == 1 else sar


_FIELD_ORDERS = {"progressive", "top first", "bottom first", "top coded first (swapped)",
                 "bottom coded first (swapped)", "unknown"}


def _colour_tags(pix_fmt_text: str) -> dict[str, str]:
    """Read "yuv420p(tv, bt709/bt709/bt709, progressive)": range, space[/primaries/trc], field order.

    ffmpeg prints one name when matrix, primaries and transfer have the same name, else all three
    ("bt2020nc/bt2020/smpte2084"), with "unknown" for one that is not tagged.
    """
    match = re.search(r"\((.*)\)", pix_fmt_text)
    tags: dict[str, str] = {}
    if not match:
        return tags
    for item in (i.strip() for i in match.group(1).split(",")):
        if item in ("tv", "pc"):
            tags["color_range"] = item
        elif item and item not in _FIELD_ORDERS and "color_space" not in tags and " " not in item:
            names = item.split("/")
            space, primaries, trc = (names + names[:1] * 2)[:3] if len(names) < 3 else names[:3]
            tags["color_space"] = space
            for name, value in (("color_primaries", primaries), ("color_trc", trc)):
                if value != "unknown":
                    tags[name] = value
    return tags


# ffmpeg's named layouts (libavutil/channel_layout.c) that are not "N.M" sums.
_NAMED_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "binaural": 2,
    "downmix": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "cube": 8,
    "hexadecagonal": 16,
}


def channel_count(layout: str) -> int | None:
    """Return the channel count of an ffmpeg channel layout name, None when unknown.

    ``"stereo"`` -> 2, ``"5.1(side)"`` -> 6, ``"7.1.4"`` -> 12, ``"3 channels"`` -> 3.
    """
    name = layout.strip()
    match = re.match(r"^(\d+) channels\b", name)
    if match:
        return int(match.group(1))
    base = name.split("(", 1)[0].strip()
    if base in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[base]
    if re.fullmatch(r"\d+(\.\d+){1,2}", base):
        return sum(int(n) for n in base.split("."))
    return None


def exact_rate(value: float | str | Fraction) -> Fraction:
    """Turn a frame rate into an exact fraction, restoring rounded NTSC rates.

    ``"25"`` -> 25, ``29.97`` -> 30000/1001, ``"24000/1001"`` -> 24000/1001, ``"59.94"`` -> 60000/1001.

    Raises
    ------
    ValueError
        When the rate is not a positive number.
    """
    if isinstance(value, Fraction):
        rate = value
    elif isinstance(value, str) and "/" in value:
        num, den = value.split("/", 1)
        rate = Fraction(int(num), int(den))
    else:
        rate = Fraction(str(value))
    if rate <= 0:
        raise InvalidArgument(f"frame rate must be positive, got {value!r}")
    if rate.denominator != 1 and rate.denominator != 1001:
        # ffmpeg prints 2 decimals; n*1000/1001 (ATSC/SMPTE rates) is the usual origin of a fraction.
        for base in range(1, 241):
            ntsc = Fraction(base * 1000, 1001)
            if abs(ntsc - rate) < Fraction(1, 200):
                return ntsc
        return rate.limit_denominator(1001)
    return rate


def _rational_text(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def rate_text(value: float | str | Fraction) -> str:
    """Return a frame rate as ffmpeg's rational text (``"25"``, ``"30000/1001"``)."""
    return _rational_text(exact_rate(value))
