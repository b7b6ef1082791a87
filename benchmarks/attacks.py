"""The attacks the benchmarks (and the tests) apply: one small library, no project imports.

Image attacks (signal edits on RGB uint8 arrays): real encoders (Pillow JPEG/WebP/PNG re-encode) and
ordinary editing operations (Pillow resize with bicubic filtering, crop at a random offset, rotation,
Gaussian blur, enhancement, gamma; numpy noise). Each factory returns ``f(array, rng) -> array``; the
generator is drawn from by the random ones (:func:`is_random`). :data:`ATTACKS` names the set the
watermark benchmarks run (:data:`QUICK_ATTACKS` their quick subset).

File attacks (hostile inputs for the parsers and the batch): decompression bombs (:func:`pixel_bomb_png`,
:func:`text_bomb_png`, :func:`sof_bomb_jpeg`) and the seeded, structure-aware byte mutations of
:class:`Mutator` (bit flips, interesting integers, chunk/box/segment length corruption, truncation,
splices, label-text edits).

Audio and video attacks (through the project's ffmpeg): :func:`mp3_round_trip` (MP3 encode and decode
back, the visible audio cue and voice prompt benchmarks) and :func:`video_reencodes` (the re-encodes the
visible video benchmark applies). The two import the project (``labeler``) when called, so the project
root must be on ``sys.path`` then; the rest of this module needs only numpy and Pillow.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

#: An image attack: ``(RGB uint8 array, generator) -> attacked array``.
ImageAttack = Callable[[np.ndarray, np.random.Generator], np.ndarray]

# --- image attacks ---------------------------------------------------------------------------------------


def reencode(a: np.ndarray, fmt: str, **kw: object) -> np.ndarray:
    """``a`` saved by Pillow as ``fmt`` (with the encoder options ``kw``) and decoded back to RGB."""
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt, **kw)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def jpeg(q: int) -> ImageAttack:
    return lambda a, rng: reencode(a, "JPEG", quality=q)


def webp(q: int) -> ImageAttack:
    return lambda a, rng: reencode(a, "WEBP", quality=q)


def avif(q: int) -> ImageAttack:
    """An AVIF re-encode (Pillow's libavif, its default speed), as CDNs serve images now."""
    return lambda a, rng: reencode(a, "AVIF", quality=q)


def resize(f: float) -> ImageAttack:
    def run(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = a.shape[:2]
        return np.asarray(Image.fromarray(a).resize((round(w * f), round(h * f)), Image.BICUBIC))

    return run


def crop(area: float) -> ImageAttack:
    def run(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = a.shape[:2]
        s = np.sqrt(area)
        ch, cw = int(h * s), int(w * s)
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        return a[y0 : y0 + ch, x0 : x0 + cw]

    return run


def rotate(deg: float) -> ImageAttack:
    def run(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r = np.asarray(Image.fromarray(a).rotate(deg, Image.BICUBIC))
        h, w = a.shape[:2]
        m = int(np.ceil(np.sin(np.radians(abs(deg))) * max(h, w))) + 2  # drop the black corners
        return r[m : h - m, m : w - m]

    return run


def blur(sigma: float) -> ImageAttack:
    return lambda a, rng: np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(sigma)))


def noise(sigma: float) -> ImageAttack:
    return lambda a, rng: np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)


def enhance(kind: str, f: float) -> ImageAttack:
    cls = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast}[kind]
    return lambda a, rng: np.asarray(cls(Image.fromarray(a)).enhance(f))


def gamma(g: float) -> ImageAttack:
    lut = np.clip(255.0 * (np.arange(256) / 255.0) ** g + 0.5, 0, 255).astype(np.uint8)
    return lambda a, rng: lut[a]


def chain(*fs: ImageAttack) -> ImageAttack:
    def run(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for f in fs:
            a = f(a, rng)
        return a

    return run


ATTACKS: dict[str, ImageAttack] = {
    "none": lambda a, rng: a,
    "png": lambda a, rng: reencode(a, "PNG"),
    "jpeg90": jpeg(90),
    "jpeg75": jpeg(75),
    "jpeg50": jpeg(50),
    "jpeg30": jpeg(30),
    "webp75": webp(75),
    "resize0.5": resize(0.5),
    "resize0.75": resize(0.75),
    "resize1.5": resize(1.5),
    "crop80": crop(0.8),
    "crop50": crop(0.5),
    "rot1": rotate(1.0),
    "rot2": rotate(2.0),
    "blur1": blur(1.0),
    "noise5": noise(5.0),
    "bright+20": enhance("brightness", 1.2),
    "bright-20": enhance("brightness", 0.8),
    "contrast0.8": enhance("contrast", 0.8),
    "gamma0.8": gamma(0.8),
    "resize0.75+jpeg75": chain(resize(0.75), jpeg(75)),
    "crop50+jpeg80": chain(crop(0.5), jpeg(80)),
}
QUICK_ATTACKS = ["none", "jpeg50", "webp75", "resize0.5", "crop50", "rot2", "blur1", "noise5", "contrast0.8",
                 "resize0.75+jpeg75"]


def is_random(attack: str) -> bool:
    """Attacks of :data:`ATTACKS` that draw from the generator (so repeated draws are different trials)."""
    return "crop" in attack or "noise" in attack


# --- audio and video attacks --------------------------------------------------------------------------


def mp3_round_trip(x: np.ndarray, sr: int, bitrate: str = "128k") -> np.ndarray:
    """Samples ``x`` (rate ``sr``) encoded to MP3 at ``bitrate`` and decoded back (labeler.media.audio)."""
    from labeler.media.audio import read_audio
    from labeler.media.audio_write import write_audio

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.mp3"
        write_audio(path, x, sr, bitrate=bitrate)
        return read_audio(path).samples


def video_reencodes(quick: bool) -> dict[str, tuple[str, list[str]]]:
    """Video re-encodes: name -> (output suffix, ffmpeg output options); "as is" has no options."""
    out = {
        "as is": ("", []),
        "crf 28, 0.5x": (".mp4", ["-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "28", "-c:a", "copy"]),
    }
    if not quick:
        out["VP9/WebM"] = (".webm", ["-c:v", "libvpx-vp9", "-crf", "40", "-b:v", "0", "-deadline", "realtime",
                                     "-cpu-used", "8", "-c:a", "libopus"])
        out["MPEG-4 part 2"] = (".mp4", ["-c:v", "mpeg4", "-q:v", "6", "-c:a", "copy"])
    return out


# --- file attacks: decompression bombs -------------------------------------------------------------------


def png_chunk(ctype: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data, CRC-32."""
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def zlib_repeat(unit: bytes, count: int) -> bytes:
    """A zlib stream of ``unit * count``, made without compressing it all.

    After a full flush deflate starts afresh on a byte boundary, so the compressed form of ``unit`` is the
    same every time and can be repeated; the Adler-32 trailer is computed over the whole data (RFC 1950).
    """
    comp = zlib.compressobj(9)
    first = comp.compress(b"") + comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH)
    head, block = first[:2], first[2:]  # the 2-byte zlib header, then unit's deflate blocks
    adler = 1
    for _ in range(count):
        adler = zlib.adler32(unit, adler)
    return head + block * count + b"\x03\x00" + struct.pack(">I", adler)  # 03 00: empty final block


@functools.lru_cache(maxsize=4)
def pixel_bomb_png(side: int = 20000) -> bytes:
    """A valid grey PNG of ``side`` x ``side`` zero pixels: ~0.4 MB on disk, 400 MB decoded (side 20000)."""
    rows = 100
    while side % rows:
        rows -= 1
    body = zlib_repeat(b"\0" * ((side + 1) * rows), side // rows)  # each row: filter byte + pixels
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def text_bomb_png(base: bytes, ctype: bytes, inflated: int = 64 << 20) -> bytes:
    """``base`` PNG plus a compressed text chunk inflating to ``inflated`` bytes (zTXt AIGC or iTXt XMP)."""
    blob = zlib_repeat(b" " * (1 << 20), inflated >> 20)
    # iTXt: compressed, the XMP keyword, so the XMP carrier inflates it.
    head = b"AIGC\0\0" if ctype == b"zTXt" else b"XML:com.adobe.xmp\0\1\0\0\0"
    data = head + blob
    return base[:33] + png_chunk(ctype, data) + base[33:]  # right after IHDR


def sof_bomb_jpeg(base: bytes) -> bytes:
    """``base`` JPEG whose SOF declares 65000 x 65000 pixels (the scan data stays small)."""
    data = bytearray(base)
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        seg = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5:i + 9] = struct.pack(">HH", 65000, 65000)
            return bytes(data)
        i += 2 + seg
    raise ValueError("no SOF marker found")



# --- file attacks: fuzz mutations -----------------------------------------------------------------------
# Four-character codes of chunks / boxes / frames whose neighbouring length field the mutator corrupts.
# PNG and ISO-BMFF: big-endian length just before the type; RIFF: little-endian length just after the id.
BE_BEFORE = (b"IHDR", b"iTXt", b"tEXt", b"zTXt", b"eXIf", b"IDAT", b"IEND", b"iCCP", b"ftyp", b"moov",
             b"udta", b"meta", b"ilst", b"keys", b"trak", b"mdat", b"uuid", b"hdlr", b"data", b"mvhd",
             b"free", b"caBX", b"jumb", b"XMP_", b"mean", b"name", b"\xa9too")
LE_AFTER = (b"RIFF", b"WEBP", b"VP8 ", b"VP8L", b"VP8X", b"XMP ", b"EXIF", b"LIST", b"INFO", b"fmt ",
            b"data", b"id3 ", b"ID3 ", b"C2PA", b"iXML", b"AIGC", b"ICMT")
INTERESTING = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF,
               0x80000000, 0xFFFFFFFF)


class Mutator:
    """Seeded, structure-aware byte mutations of real files."""

    def __init__(self, seeds: list[bytes], rng: random.Random) -> None:
        self.seeds, self.rng = seeds, rng

    def offset(self, data: bytes) -> int:
        # Headers and metadata sit near the start: half the offsets fall in the first 4 KiB.
        if self.rng.random() < 0.5:
            return self.rng.randrange(min(len(data), 4096))
        return self.rng.randrange(len(data))

    def bitflip(self, data: bytearray) -> str:
        for _ in range(self.rng.randint(1, 8)):
            i = self.offset(data)
            data[i] ^= 1 << self.rng.randrange(8)
        return "bitflip"

    def interesting(self, data: bytearray) -> str:
        i = self.offset(data)
        width = self.rng.choice((1, 2, 4, 8))
        value = self.rng.choice(INTERESTING + (len(data), len(data) - i, self.rng.randrange(1 << 32)))
        raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, self.rng.choice(("big", "little")))
        data[i:i + width] = raw
        return f"int{width}"

    def length_field(self, data: bytearray) -> str:
        tags = [(t, "be") for t in BE_BEFORE] + [(t, "le") for t in LE_AFTER]
        self.rng.shuffle(tags)
        for tag, how in tags[:12]:
            spots = []
            start = data.find(tag)
            while start != -1 and len(spots) < 16:
                spots.append(start)
                start = data.find(tag, start + 1)
            if not spots:
                continue
            pos = self.rng.choice(spots)
            value = self.rng.choice(INTERESTING + (len(data), len(data) - pos, 1 << 31, 9, 12, 16))
            if how == "be" and pos >= 4:
                data[pos - 4:pos] = (value & 0xFFFFFFFF).to_bytes(4, "big")
            elif how == "le":
                data[pos + 4:pos + 8] = (value & 0xFFFFFFFF).to_bytes(4, "little")
            return f"len:{tag.decode('latin-1').strip()}"
        # JPEG segments: FF xx then a 2-byte length.
        spots = [i for i in range(min(len(data) - 4, 1 << 16))
                 if data[i] == 0xFF and 0xC0 <= data[i + 1] <= 0xFE][:64]
        if spots:
            pos = self.rng.choice(spots)
            value = self.rng.choice((0, 1, 2, 3, 0xFFFF, 0x8000, (len(data) - pos) & 0xFFFF))
            data[pos + 2:pos + 4] = value.to_bytes(2, "big")
            return "len:jpeg"
        return self.bitflip(data)

    def truncate(self, data: bytearray) -> str:
        cut = self.offset(data)
        del data[max(cut, 1):]
        return "truncate"

    def splice(self, data: bytearray) -> str:
        other = self.rng.choice(self.seeds)
        a = self.rng.randrange(len(other))
        piece = other[a:a + self.rng.randint(1, 4096)]
        i = self.offset(data)
        if self.rng.random() < 0.5:
            data[i:i] = piece
        else:
            data[i:i + len(piece)] = piece
        return "splice"

    def duplicate(self, data: bytearray) -> str:
        a = self.offset(data)
        piece = data[a:a + self.rng.randint(1, 2048)]
        data[a:a] = piece * self.rng.randint(1, 4)
        return "duplicate"

    def delete(self, data: bytearray) -> str:
        a = self.offset(data)
        del data[a:a + self.rng.randint(1, 512)]
        return "delete"

    def label_text(self, data: bytearray) -> str:
        # Edit inside the label JSON / XMP so the tolerant parser and the judges see odd values.
        for needle in (b'"ProduceID"', b'"Label"', b'"ContentProducer"', b"AIGC", b"<x:xmpmeta"):
            pos = data.find(needle)
            if pos == -1:
                continue
            i = pos + self.rng.randrange(len(needle) + 40)
            edit = self.rng.choice((b'"', b"\\", b"{", b"}", b"\x00", b"&quot;", b"\\u0000", b"\xff\xfe",
                                    b"9" * 400, b'"Label":"1",' * 50, b"<!ENTITY a 'aaaa'>", b"&a;" * 30,
                                    "生成".encode() * 20))
            if self.rng.random() < 0.5:
                data[i:i] = edit
            else:
                data[i:i + len(edit)] = edit
            return "label-text"
        return self.interesting(data)

    def mutate(self, seed: bytes) -> tuple[bytes, str]:
        data = bytearray(seed)
        ops = (self.bitflip, self.interesting, self.length_field, self.length_field, self.truncate,
               self.splice, self.duplicate, self.delete, self.label_text, self.label_text)
        names = []
        for _ in range(self.rng.choice((1, 1, 2, 3))):
            if not data:
                break
            names.append(self.rng.choice(ops)(data))
        return bytes(data), "+".join(names)
