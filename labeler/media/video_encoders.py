"""The one choice of encoder, rate control and pixel format for a re-encoded video stream.

Both pixel passes re-encode the video stream (the visible label's, :mod:`labeler.visible.video`, and the
watermark's, :mod:`labeler.watermark.video`) and both take it from here, so a source comes out of
either in the same codec family at the same quality:

* the encoder is the source's family (:data:`ENCODERS`) when the ffmpeg in use has it and the output
  container takes that codec; else H.264 (VP9 for WebM, which holds nothing else), and the choice says
  it fell back;
* rate control is each encoder's "visually lossless" setting (constant quality, never a bit rate
  matched to the source: a low-rate source would get a second generation of its own artefacts);
  ProRes keeps its profile family (HQ for 4:2:2, 4444 for 4:4:4), FFV1 stays lossless;
* the pixel format is the source's when the encoder takes it, else the nearest one it takes
  (:func:`nearest_pix_fmt`: no loss of bit depth, chroma or alpha when any format avoids it).

Design and the per-codec settings: ``docs/watermark-video.md`` ("encoder").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from labeler.media import ffmpeg as ff
from labeler.media.video_streams import FrameFacts

__all__ = ["ALTERNATIVES", "ENCODERS", "FULL_CHROMA", "NO_CHROMA", "EncoderChoice", "Encoding", "PixTraits",
           "choose_encoder", "chroma_lost", "container_args", "fallback_reason", "keep_frame_facts", "loses",
           "nearest_pix_fmt", "overlay_format", "overlay_pix_fmt", "pix_fmt_traits", "plan_encoding"]

#: Source codec (ffmpeg's name) -> (encoder, its quality options), each at its "visually lossless"
#: point: x264 CRF 18 (x264's docs call 18 "visually lossless or nearly so"), x265 CRF 20 (x265's scale
#: runs ~4-6 CRF above x264's for the same quality; 20 errs on the good side), VP9 and AV1 in
#: constant-quality mode (``-b:v 0``) at CRF 24 (libvpx's recommended 1080p range is 15-35), VP8 CRF 10
#: under a 20 Mbit/s ceiling (libvpx's VP8 has no unconstrained constant-quality mode). ProRes:
#: ``prores_ks`` with its default ``-profile auto``, HQ for 4:2:2 and 4444 for 4:4:4 sources (ProRes is
#: constant quality per profile; HQ and 4444 are Apple's mastering profiles, so a Proxy/LT/422 source
#: comes out at a higher rate, never lower quality). FFV1: lossless (version 3, slice CRCs, every frame
#: a key frame: the archival settings, so a damaged file loses one frame, not a GOP).
ENCODERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "h264": ("libx264", ("-crf", "18", "-preset", "medium")),
    "hevc": ("libx265", ("-crf", "20", "-preset", "medium", "-x265-params", "log-level=error")),
    "vp9": ("libvpx-vp9", ("-crf", "24", "-b", "0", "-row-mt", "1", "-deadline", "good", "-cpu-used", "2")),
    "vp8": ("libvpx", ("-crf", "10", "-b", "20M")),
    "av1": ("libsvtav1", ("-crf", "24", "-preset", "8")),
    "prores": ("prores_ks", ()),
    "ffv1": ("ffv1", ("-level", "3", "-slicecrc", "1", "-g", "1")),
}
# Containers that take a family (ffmpeg's muxers; checked with ffmpeg 5.1 and 9.0): a family not listed
# goes wherever its source came from. WebM holds VP8, VP9 and AV1 only; MP4 takes neither ProRes nor FFV1
# (ffmpeg 9 writes FFV1 in MP4, which no other reader opens).
_WEBM = {"vp8", "vp9", "av1"}
_ONLY_IN = {"prores": {".mov", ".mkv"}, "ffv1": {".mkv", ".mov", ".avi"}}
_MOV_SUFFIXES = {".mp4", ".m4v", ".mov", ".3gp", ".3g2"}


@dataclass(frozen=True)
class EncoderChoice:
    """How a video stream is re-encoded.

    Attributes
    ----------
    encoder : str
        ffmpeg encoder name (``"libx264"``, ``"prores_ks"``...).
    options : tuple of str
        Its rate-control and speed options, as ``("-crf", "18", ...)`` (stream specifier not added).
    family : str
        The codec written (a key of :data:`ENCODERS`).
    fallback : bool
        True when this is not the source's family (no encoder for it here, or the container refuses it).
    """

    encoder: str
    options: tuple[str, ...]
    family: str
    fallback: bool


def _fits(family: str, suffix: str) -> bool:
    if suffix == ".webm" and family not in _WEBM:
        return False
    return suffix in _ONLY_IN.get(family, {suffix})


#: Other encoders of a family, tried in order when this ffmpeg lacks the one in :data:`ENCODERS`:
#: libaom (AV1's reference encoder, in most builds) at the same constant quality, ``-cpu-used 6`` (its
#: documented speed range is 0-8; 6 is the fastest setting its docs recommend for good quality).
ALTERNATIVES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "av1": (("libaom-av1", ("-crf", "24", "-b:v", "0", "-cpu-used", "6", "-row-mt", "1")),),
}


def _family_encoder(family: str) -> tuple[str, tuple[str, ...]] | None:
    """The first encoder of ``family`` this ffmpeg has (:data:`ENCODERS`, then :data:`ALTERNATIVES`)."""
    for encoder, options in (ENCODERS[family], *ALTERNATIVES.get(family, ())):
        if ff.encoder_pix_fmts(encoder) is not None:
            return encoder, options
    return None


def choose_encoder(codec: str | None, suffix: str) -> EncoderChoice:
    """The encoder for a source ``codec`` (ffmpeg's name) written to a file ending in ``suffix``.

    The source's family when this ffmpeg has one of its encoders and the container takes it; else H.264,
    or VP9 for WebM (the fallback is taken whether or not its encoder is there: ``aigc doctor`` reports
    a missing libx264, and ffmpeg's own error names it). :func:`fallback_reason` says why.
    """
    suffix = suffix.lower()
    family = codec or ""
    if family in ENCODERS and _fits(family, suffix) and (found := _family_encoder(family)) is not None:
        return EncoderChoice(*found, family, False)
    fallback = "vp9" if suffix == ".webm" else "h264"
    return EncoderChoice(*ENCODERS[fallback], fallback, True)


def fallback_reason(codec: str, suffix: str) -> str:
    """Why :func:`choose_encoder` did not keep a ``codec`` source's family in a ``suffix`` file: the
    passes have no family for the codec, this ffmpeg lacks the family's encoders, or the container
    refuses the codec (where ffmpeg does write it is named)."""
    if codec not in ENCODERS:
        return "the video passes keep H.264, HEVC, VP8, VP9, AV1, ProRes and FFV1 only"
    if _family_encoder(codec) is None:
        names = [ENCODERS[codec][0], *(e for e, _ in ALTERNATIVES.get(codec, ()))]
        return f"this ffmpeg has no {' or '.join(names)} encoder"
    if suffix.lower() == ".webm":
        return f"WebM files cannot hold {codec} (WebM holds VP8, VP9 and AV1 only)"
    homes = [name for ext, name in ((".mkv", "Matroska"), (".mov", "MOV"), (".avi", "AVI"))
             if ext in _ONLY_IN.get(codec, ())]
    where = f" (ffmpeg writes it to {', '.join(homes[:-1])} or {homes[-1]})" if len(homes) > 1 else ""
    return f"{suffix.lstrip('.').upper()} files cannot hold {codec}{where}"


def container_args(choice: EncoderChoice, suffix: str, out_index: int) -> list[str]:
    """Stream tags a container needs for the encoder: HEVC in MP4/MOV as ``hvc1``, as phones and cameras
    write it (ffmpeg's default ``hev1`` is refused by Apple's players)."""
    if choice.encoder == "libx265" and suffix.lower() in _MOV_SUFFIXES:
        return [f"-tag:{out_index}", "hvc1"]
    return []


_YUV = re.compile(r"^yuv(a|j)?(4[0-4][0-4]|41[01]|410)p(\d+)?(?:le|be)?$")
_RGB = re.compile(r"^(?:gbr(a)?p(\d+)?(?:le|be)?|(?:x2)?(rgb|bgr)(a|0)?(\d+)?(?:le|be)?|(a|0)(?:rgb|bgr))$")
_GRAY = re.compile(r"^(?:gray|y)(a)?(\d+)?(?:le|be)?$")
# packed RGB: bits a pixel -> bits a component (rgb565 and the like are not recognised)
_PACKED_RGB_DEPTH = {None: 8, "24": 8, "32": 8, "48": 16, "64": 16}
# chroma planes' subsampling as (horizontal, vertical) shifts: each axis on its own, since 4:4:0 (full
# width, half height) and 4:2:2 (half width, full height) hold different halves of the chroma, as 4:1:1
# and 4:2:0 do; one rank (4:4:0 = 4:2:2) lost 4:4:0's horizontal chroma and 4:1:1's vertical chroma.
_CHROMA = {"410": (2, 2), "420": (1, 1), "411": (2, 0), "422": (1, 0), "440": (0, 1), "444": (0, 0)}
#: (horizontal, vertical) shifts of a format without chroma (gray): coarser than any YUV layout.
NO_CHROMA = (3, 3)
#: (horizontal, vertical) shifts of full chroma (4:4:4, RGB).
FULL_CHROMA = (0, 0)


@dataclass(frozen=True)
class PixTraits:
    """What a pixel format keeps: ``kind`` (``"yuv"``, ``"rgb"``, ``"gray"``), ``chroma`` (the chroma
    planes' subsampling as (horizontal, vertical) shifts: :data:`FULL_CHROMA` ``(0, 0)`` for 4:4:4 and
    RGB, ``(1, 1)`` for 4:2:0, ``(0, 1)`` for 4:4:0, :data:`NO_CHROMA` for gray), ``depth`` (bits a
    component), ``alpha``, ``full_range`` (the ``yuvj`` forms)."""

    kind: str
    chroma: tuple[int, int]
    depth: int
    alpha: bool
    full_range: bool = False


def pix_fmt_traits(pix_fmt: str | None) -> PixTraits | None:
    """:class:`PixTraits` of an ffmpeg pixel format name, None for one not recognised (packed, bayer...)."""
    name = pix_fmt or ""
    if m := _YUV.match(name):
        kind = m.group(1)
        return PixTraits("yuv", _CHROMA[m.group(2)], int(m.group(3) or 8), kind == "a", kind == "j")
    if m := _RGB.match(name):
        if name.startswith("gbr"):
            return PixTraits("rgb", FULL_CHROMA, int(m.group(2) or 8), bool(m.group(1)))
        depth = 10 if name.startswith("x2") else _PACKED_RGB_DEPTH.get(m.group(5))
        alpha = "a" in (m.group(4), m.group(6))
        return None if depth is None else PixTraits("rgb", FULL_CHROMA, depth, alpha)
    if m := _GRAY.match(name):
        return PixTraits("gray", NO_CHROMA, int(m.group(2) or 8), bool(m.group(1)))
    return None


def chroma_lost(source: tuple[int, int], written: tuple[int, int]) -> int:
    """Halvings of chroma resolution lost writing chroma subsampled as ``source`` (shifts:
    :attr:`PixTraits.chroma`) as ``written``, both axes counted: 4:4:0 as 4:2:2 loses 1 (the width),
    4:1:1 as 4:2:2 none."""
    return sum(max(0, w - s) for s, w in zip(source, written, strict=True))


def nearest_pix_fmt(wanted: str | None, supported: tuple[str, ...], *, alpha: bool = True) -> str:
    """The format of ``supported`` closest to ``wanted``: ``wanted`` itself if there, else the one that
    loses least (bit depth first, then chroma resolution, alpha, the kind of coding), then the one
    that adds least. With ``alpha=False`` an alpha channel is not asked for.

    ``wanted`` unknown, or nothing recognised in ``supported``: ``yuv420p`` (what every player takes)
    when supported, else the encoder's first format.
    """
    want = pix_fmt_traits(wanted)
    if want is not None and not alpha and want.alpha:
        want = PixTraits(want.kind, want.chroma, want.depth, False, want.full_range)
        wanted = None
    if wanted in supported:
        assert wanted is not None
        return wanted
    default = "yuv420p" if "yuv420p" in supported else (supported[0] if supported else "yuv420p")
    if want is None:
        return default

    def cost(name: str) -> tuple[int, ...]:
        t = pix_fmt_traits(name)
        assert t is not None
        # RGB sources are coded as YUV 4:4:4 when the encoder takes no RGB: same resolution, other matrix
        # chroma lost, then chroma added, per axis: 4:4:0 goes to 4:4:4 (adds height), never 4:2:2
        return (max(0, want.depth - t.depth), chroma_lost(want.chroma, t.chroma), want.alpha > t.alpha,
                t.kind != want.kind, t.depth - want.depth if t.depth > want.depth else 0,
                chroma_lost(t.chroma, want.chroma), t.alpha > want.alpha, t.full_range != want.full_range)

    known = [name for name in supported if pix_fmt_traits(name) is not None]
    return min(known, key=cost) if known else default


def overlay_format(pix_fmt: str) -> str:
    """The ``overlay`` filter's ``format`` for frames of ``pix_fmt``: the same chroma and (up to the
    filter's 10 bits) depth, so frames are blended in their own format.

    ``format=auto`` is not that: with an RGBA label input it picks ``rgba`` for every main format
    (measured with ffmpeg 5.1 and 9.0), so each frame went YUV -> RGB -> YUV, chroma resampled twice.
    ``yuv444p10`` needs ffmpeg 6 or newer; 5.1 blends a 10-bit 4:4:4 frame in 8 bits.
    """
    t = pix_fmt_traits(pix_fmt)
    if t is None or t.kind == "gray":
        return "yuv420"
    if t.kind == "rgb":
        return "gbrp"
    # the coarsest blend format that keeps both axes: 4:4:0 is blended in 4:4:4, 4:1:1 in 4:2:2
    across, down = t.chroma
    name = "yuv444" if across == 0 else "yuv422" if down == 0 else "yuv420"
    if t.depth > 8 and (name != "yuv444" or ff.ffmpeg_version() >= (6, 0)):
        name += "p10"
    return name


# overlay's format option -> the frames it blends in
_OVERLAY_PIX = {"yuv420": "yuv420p", "yuv420p10": "yuv420p10le", "yuv422": "yuv422p",
                "yuv422p10": "yuv422p10le", "yuv444": "yuv444p", "yuv444p10": "yuv444p10le", "gbrp": "gbrp"}


def overlay_pix_fmt(overlay: str) -> str:
    """The pixel format the ``overlay`` filter blends in with ``format=overlay`` (:func:`overlay_format`)."""
    return _OVERLAY_PIX.get(overlay, "yuv420p")


def loses(source: str | None, written: str) -> bool:
    """Whether frames of ``source`` format lose bit depth or chroma resolution, or change from RGB to YUV
    (or gray), when written as ``written`` (alpha is not counted; unknown formats count as a loss when
    they differ)."""
    if source == written:
        return False
    a, b = pix_fmt_traits(source), pix_fmt_traits(written)
    if a is None or b is None:
        return True
    return (b.depth < a.depth or chroma_lost(a.chroma, b.chroma) > 0
            or (a.kind != b.kind and a.kind != "gray"))


@dataclass(frozen=True)
class Encoding:
    """How one pass writes the video stream: :class:`EncoderChoice`, the pixel format, the rate control.

    ``quality`` is ``choice.options`` unless a caller replaced it (benchmarks, the visible pass's
    ``crf`` / ``preset`` for libx264)."""

    choice: EncoderChoice
    pix_fmt: str
    quality: tuple[str, ...]

    @property
    def encoder(self) -> str:
        return self.choice.encoder


def plan_encoding(codec: str | None, pix_fmt: str | None, suffix: str, *, alpha_kept: bool = False,
                  quality: tuple[str, ...] | None = None, odd_sides: bool = False) -> Encoding:
    """The encoder (:func:`choose_encoder`) and the pixel format for frames like ``pix_fmt`` (the nearest
    the encoder takes, without alpha); with ``alpha_kept`` (a VP8/VP9 alpha plane read by libvpx) the
    source's libvpx family and ``yuva420p``, in WebM or Matroska alike.

    ``odd_sides``: the frames have an odd width or height. Subsampled chroma then needs even sides in
    libx264 and most encoders ("width not divisible by 2"), so the 4:4:4 form of the same depth is taken
    where the encoder has one: an odd-sized MPEG-4 Part 2 or cropped H.264 source was refused before.
    """
    choice = choose_encoder(codec, ".webm" if alpha_kept else suffix)
    if alpha_kept:
        written = "yuva420p"
    else:
        supported = ff.encoder_pix_fmts(choice.encoder) or ("yuv420p",)
        written = nearest_pix_fmt(pix_fmt, supported, alpha=False)
        traits = pix_fmt_traits(written)
        if odd_sides and traits is not None and traits.kind == "yuv" and traits.chroma != FULL_CHROMA:
            depth = "" if traits.depth == 8 else f"{traits.depth}le"
            full = nearest_pix_fmt(f"yuv{'j' if traits.full_range else ''}444p{depth}", supported,
                                   alpha=False)
            if (pix_fmt_traits(full) or traits).chroma == FULL_CHROMA:
                written = full
    return Encoding(choice, written, choice.options if quality is None else tuple(quality))


def keep_frame_facts(encoding: Encoding, facts: FrameFacts) -> Encoding:
    """``encoding`` with the options that write a source's field order and HDR10 static metadata again
    (``facts``: :func:`labeler.media.video_streams.frame_facts` reads them from its first frame).

    Interlaced: libx264 and ProRes code the fields (``-flags +ilme+ildct``; the order is each frame's own,
    so frames that lost it, raw frames from a pipe, need ``setfield``) and the stream is tagged with it;
    without them every frame was coded progressive, combed, and players did not deinterlace it.
    HDR10: libx265 and SVT-AV1 write the mastering display and content light level
    (x265's ``master-display`` in 0.00002 chromaticity and 0.0001 cd/m² units); without them a PQ source
    came out with its tags but not its metadata, which HDR10 displays tone-map from. Other encoders are
    left as they are.
    """
    quality = list(encoding.quality)
    field_order, mastering, light_level = facts.field_order, facts.mastering, facts.light_level
    if field_order is not None and encoding.encoder in ("libx264", "prores_ks", "ffv1"):
        if encoding.encoder != "ffv1":
            # the field order itself comes from the frames (libx264 and prores_ks read each frame's flag)
            quality += ["-flags", "+ilme+ildct" if encoding.encoder == "libx264" else "+ildct"]
        quality += ["-field_order", field_order]
    if encoding.encoder == "libx265" and (mastering or light_level):
        params = []
        if mastering:
            rx, ry, gx, gy, bx, by, wx, wy, low, high = mastering
            xy = [round(v / 0.00002) for v in (gx, gy, bx, by, rx, ry, wx, wy)]
            params.append("master-display=G({},{})B({},{})R({},{})WP({},{})".format(*xy)
                          + f"L({round(high * 10000)},{round(low * 10000)})")
        if light_level:
            params.append(f"max-cll={light_level[0]},{light_level[1]}")
        quality = _add_params(quality, "-x265-params", params)
    elif encoding.encoder == "libsvtav1" and (mastering or light_level):
        params = []
        if mastering:
            rx, ry, gx, gy, bx, by, wx, wy, low, high = mastering
            params.append(f"mastering-display=G({gx:g},{gy:g})B({bx:g},{by:g})R({rx:g},{ry:g})"
                          f"WP({wx:g},{wy:g})L({high:g},{low:g})")
        if light_level:
            params.append(f"content-light={light_level[0]},{light_level[1]}")
        quality = _add_params(quality, "-svtav1-params", params)
    return replace(encoding, quality=tuple(quality))


def _add_params(quality: list[str], option: str, params: list[str]) -> list[str]:
    # an encoder's "-x265-params a=b:c=d" is one option: a second one would replace the first
    if option in quality:
        at = quality.index(option) + 1
        quality[at] = ":".join([quality[at], *params])
        return quality
    return [*quality, option, ":".join(params)]
