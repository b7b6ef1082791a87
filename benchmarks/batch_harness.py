"""The batch robustness benchmark's harness: the mixed archive, the ``aigc`` runs, the checks.

Used by the parts of ``robustness_batch.py`` (:mod:`batch_parts`, :mod:`batch_fuzz`, :mod:`batch_memory`)
and by ``tests/test_batch_archive.py``. The hostile inputs themselves (bombs, mutations) are in
:mod:`attacks`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attacks import pixel_bomb_png, sof_bomb_jpeg, text_bomb_png

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SAMPLES = ROOT / "samples"
CORPUS = ROOT.parent / "shared" / "corpus"
PRODUCER = "001191110102MACQD9K64010000"
ID_PREFIX = "arc-"
ID_TEMPLATE = ID_PREFIX + "{path_hash}"
JOURNAL = ".aigc-journal.jsonl"  # labeler.batch.LABEL_JOURNAL; spelled out so checks do not trust the code
PARTS = ("archive", "kill", "fuzz", "scaling", "memory")
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# Files above this size get at most two copies in the archive (the corpus's 5.6 MB WAV), so building and
# checksumming it stays a matter of seconds.
BIG_FILE = 2 << 20


def expected_produce_id(rel: str) -> str:
    """The ProduceID ``arc-{path_hash}`` gives ``rel``: 16 hex digits of SHA-256 of the relative path.

    Spelled out from the documented template (``BatchTask.produce_id``), not imported, so the check is
    independent of the code under test.
    """
    return ID_PREFIX + hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest()[:16]


# -- the media the archive is made of --------------------------------------------------------------------
def ffmpeg() -> str:
    from labeler.media.ffmpeg import ffmpeg_exe

    return ffmpeg_exe()


def make_bases(scratch: Path, corpus: Path | None) -> list[Path]:
    """Good media of every supported format: samples/, formats converted from them, the corpus media.

    Parameters
    ----------
    scratch : Path
        Folder for the converted files (WebP, TIFF, GIF, M4A, MOV), created if needed.
    corpus : Path or None
        ``../shared/corpus``; None or missing: samples only.
    """
    from PIL import Image

    scratch.mkdir(parents=True, exist_ok=True)
    bases = [SAMPLES / n for n in ("photo.jpg", "photo.png", "speech.wav", "speech.mp3", "speech.flac",
                                   "clip.mp4")]
    with Image.open(SAMPLES / "photo.png") as im:
        im.save(scratch / "photo.webp", quality=80)
        im.save(scratch / "photo.tiff")
        im.convert("P").save(scratch / "photo.gif")
    ff = ffmpeg()
    subprocess.run([ff, "-v", "error", "-y", "-i", str(SAMPLES / "speech.wav"), "-c:a", "aac",
                    str(scratch / "speech.m4a")], check=True)
    subprocess.run([ff, "-v", "error", "-y", "-i", str(SAMPLES / "clip.mp4"), "-c", "copy", "-f", "mov",
                    str(scratch / "clip.mov")], check=True)
    bases += [scratch / n for n in ("photo.webp", "photo.tiff", "photo.gif", "speech.m4a", "clip.mov")]
    if corpus is not None and corpus.is_dir():
        for sub in ("images", "audio", "video"):
            bases += sorted(p for p in (corpus / sub).iterdir() if p.is_file())
    return bases


# -- the archive --------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One thing in the archive and what the batch must make of it.

    ``kind`` is ``good`` (must be labeled and verify ``confirmed``), ``bad`` (must be journaled as an error
    with a one-line reason, no output) or ``hostile`` (either, but cleanly: labeled and verifiable, or an
    error with a reason).
    """

    rel: str
    kind: str
    what: str


@dataclass
class Archive:
    """A built archive: the SRC folder and one :class:`Entry` per journal line expected."""

    src: Path
    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, rel: str, kind: str, what: str) -> Path:
        if rel in self.entries:
            raise ValueError(f"duplicate archive path {rel!r}")
        self.entries[rel] = Entry(rel, kind, what)
        path = self.src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def of_kind(self, *kinds: str) -> set[str]:
        return {rel for rel, e in self.entries.items() if e.kind in kinds}


FOLDERS = ("", "photos", "photos/2025/11/23", "中文目录/子 目录", "with space/and  two", "emoji 🎨 art",
           "Ünïcödé/ñandú", "a/b/c/d/e/f/g/h/i/j", "-dash folder", "#hash %20 & amp", "مجلد RTL",
           "dots.in.the.folder")
STEMS = ("{b} {i}", "{b} copy ({i})", "照片_{i}", "файл {i}", "ملف {i}", "e\u0301te\u0301 NFD {i}",
         "\u00e9t\u00e9 NFC {i}", "quote ' and \" {i}", "semi;colon&amp=1 {i}", " leading space {i}",
         "tab\there {i}", "très long " * 20 + "{i}", "{i}", "{b}.tar.{i}")


def good_name(i: int, base: Path) -> str:
    folder = FOLDERS[i % len(FOLDERS)]
    stem = STEMS[(i // len(FOLDERS)) % len(STEMS)].format(b=base.stem, i=i)
    ext = base.suffix.upper() if i % 7 == 3 else base.suffix  # DSC0001.JPG-style upper-case extensions
    return f"{folder}/{stem}{ext}".lstrip("/")

def build_archive(root: Path, bases: list[Path], n_good: int, corpus: Path | None) -> Archive:
    """Build the mixed archive under ``root / "src"``.

    Parameters
    ----------
    root : Path
        Work folder (``src`` is created in it).
    bases : list of Path
        Good media to copy (see :func:`make_bases`).
    n_good : int
        Number of good copies with varied names (the bad and hostile files come on top: ~70).
    corpus : Path or None
        Adds ``corpus/provenance`` hostile fixtures when present.
    """
    arc = Archive(root / "src")
    arc.src.mkdir(parents=True)
    by_format = {p.suffix.lower(): p for p in reversed(bases)}  # first (samples) wins
    _add_good_copies(arc, bases, n_good)
    _add_good_special(arc, bases, by_format)
    _add_bad_files(arc, by_format)
    _add_bad_links(arc, by_format)
    _add_hostile(arc, by_format, corpus)
    return arc


def _add_good_copies(arc: Archive, bases: list[Path], n_good: int) -> None:
    """Good copies, round robin over the bases; big files only twice."""
    copies: Counter[Path] = Counter()
    i = k = 0
    while i < n_good:
        base = bases[k % len(bases)]
        k += 1
        if base.stat().st_size > BIG_FILE and copies[base] >= 2:
            continue
        copies[base] += 1
        shutil.copyfile(base, arc.add(good_name(i, base), "good", f"copy of {base.name}"))
        i += 1


def _add_good_special(arc: Archive, bases: list[Path], by_format: dict[str, Path]) -> None:
    """Good special cases: no extension, hidden, odd names, read-only, hard and symbolic links, folders."""
    jpg, png, wav = by_format[".jpg"], by_format[".png"], by_format[".wav"]
    shutil.copyfile(jpg, arc.add("special/no extension", "good", "JPEG without an extension"))
    shutil.copyfile(png, arc.add("special/.hidden.png", "good", "hidden file"))
    shutil.copyfile(wav, arc.add("special/new\nline.wav", "good", "newline in the name"))
    odd = os.fsdecode(b"special/latin1 caf\xe9.jpg")  # not UTF-8: a surrogate-escaped name
    shutil.copyfile(jpg, arc.add(odd, "good", "non-UTF-8 file name"))
    ro = arc.add("special/read-only.png", "good", "read-only input (0444)")
    shutil.copyfile(png, ro)
    ro.chmod(0o444)
    flac = arc.add("special/flac original.flac", "good", "copy of a FLAC with a hard link beside it")
    shutil.copyfile(by_format[".flac"], flac)
    os.link(flac, arc.add("special/hard link.flac", "good", "hard link to another input"))
    target = arc.src / good_name(0, bases[0])
    os.symlink(os.path.relpath(target, arc.src / "special"),
               arc.add("special/link to a file.jpg", "good", "symlink to a file in the archive"))
    (arc.src / "special/empty folder").mkdir()
    (arc.src / "special/folder.jpg").mkdir()  # a folder named like a file: walked, not labeled


def _add_bad_files(arc: Archive, by_format: dict[str, Path]) -> None:
    """Bad: zero-byte, header-only and truncated files, wrong extensions, things that are not media."""
    jpg, png, wav = by_format[".jpg"], by_format[".png"], by_format[".wav"]
    # Zero bytes and header-only files of every format; structural truncations.
    for n, (ext, base) in enumerate(sorted(by_format.items())):
        folder = FOLDERS[n % len(FOLDERS)]
        arc.add(f"{folder}/zero bytes{ext}".lstrip("/"), "bad", "zero-byte file").write_bytes(b"")
        data = base.read_bytes()
        arc.add(f"bad/header only {n}{ext}", "bad", f"first 16 bytes of {base.name}").write_bytes(data[:16])
    truncations = {".png": 0.5, ".webp": 0.5, ".gif": 0.5, ".mp4": 0.5, ".mov": 0.5, ".m4a": 0.5}
    for ext, frac in truncations.items():
        data = by_format[ext].read_bytes()
        arc.add(f"bad/truncated/half{ext}", "bad", f"{by_format[ext].name} cut in half").write_bytes(
            data[: int(len(data) * frac)])
    arc.add("bad/truncated/jpeg 100 bytes.jpg", "bad", "JPEG cut inside APP1").write_bytes(
        jpg.read_bytes()[:100])
    arc.add("bad/truncated/tiff 100 bytes.tiff", "bad", "TIFF cut inside its IFD").write_bytes(
        by_format[".tiff"].read_bytes()[:100])
    # Wrong extensions and things that are not media at all.
    wrong = {"png as.jpg": png, "mp3 as.wav": by_format[".mp3"], "jpeg as.mp4": jpg, "flac as.mp3":
             by_format[".flac"], "wav as.webp": wav}
    for name, base in wrong.items():
        what = f"{base.suffix} content, other name"
        shutil.copyfile(base, arc.add(f"bad/wrong extension/{name}", "bad", what))
    arc.add("bad/text.jpg", "bad", "text named .jpg").write_text("this is text, not a JPEG\n")
    arc.add("bad/page.png", "bad", "HTML named .png").write_text("<!doctype html><p>not an image</p>\n")
    arc.add("bad/doc.pdf", "bad", "PDF header").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    arc.add("bad/noise.mp3", "bad", "random bytes").write_bytes(b"\0" + random.Random(6).randbytes(4095))
    arc.add("README.txt", "bad", "plain text file").write_text("archive notes\n")


def _add_bad_links(arc: Archive, by_format: dict[str, Path]) -> None:
    """Bad: symlink loops and cycles, a dangling link, a FIFO, an unreadable file (not as root)."""
    os.symlink("..", arc.add("a/b/loop", "bad", "symlink loop to a parent folder"))
    os.symlink("../../..", arc.add("photos/2025/11/up to root", "bad", "symlink loop to SRC"))
    os.symlink("self.jpg", arc.add("bad/links/self.jpg", "bad", "symlink to itself (ELOOP)"))
    os.symlink("ping.jpg", arc.add("bad/links/pong.jpg", "bad", "two-link cycle"))
    os.symlink("pong.jpg", arc.add("bad/links/ping.jpg", "bad", "two-link cycle"))
    os.symlink("gone.png", arc.add("bad/links/dangling.png", "bad", "dangling symlink"))
    os.mkfifo(arc.add("bad/pipe.wav", "bad", "FIFO"))
    if not AS_ROOT:  # root reads through mode 000, so the case only exists for other users
        locked = arc.add("bad/unreadable.mp3", "bad", "mode 000")
        shutil.copyfile(by_format[".mp3"], locked)
        locked.chmod(0)


def _add_hostile(arc: Archive, by_format: dict[str, Path], corpus: Path | None) -> None:
    """Hostile: bombs and damage that a metadata-only labeler may legitimately accept; corpus fixtures."""
    jpg, png = by_format[".jpg"], by_format[".png"]
    arc.add("hostile/pixel bomb 20000x20000.png", "hostile", "400 MP PNG, 390 KB").write_bytes(
        pixel_bomb_png())
    arc.add("hostile/sof bomb 65000x65000.jpg", "hostile", "JPEG SOF declares 4.2 GP").write_bytes(
        sof_bomb_jpeg(jpg.read_bytes()))
    png_bytes = png.read_bytes()
    arc.add("hostile/ztxt bomb.png", "hostile", "zTXt AIGC inflating to 64 MB").write_bytes(
        text_bomb_png(png_bytes, b"zTXt"))
    arc.add("hostile/itxt xmp bomb.png", "hostile", "iTXt XMP inflating to 64 MB").write_bytes(
        text_bomb_png(png_bytes, b"iTXt"))
    for ext in (".jpg", ".wav", ".mp3", ".flac", ".tiff"):
        data = by_format[ext].read_bytes()
        arc.add(f"hostile/payload cut{ext}", "hostile", "cut in the media payload").write_bytes(
            data[: len(data) // 2])
    if corpus is not None and (corpus / "provenance").is_dir():
        for n, p in enumerate(sorted((corpus / "provenance").iterdir())):
            if p.suffix.lower() in (".tsv", ".md"):
                continue
            rel = f"provenance/{p.name}" if n % 2 else f"中文目录/provenance copy/{p.name}"
            shutil.copyfile(p, arc.add(rel, "hostile", f"corpus provenance/{p.name}"))


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def fingerprint(root: Path) -> dict[str, tuple[str, int, int]]:
    """(SHA-256, mode, mtime_ns) of every regular file under ``root``, links and FIFOs not followed/opened."""
    out: dict[str, tuple[str, int, int]] = {}
    for folder, dirs, files in os.walk(root):  # os.walk does not follow folder links: loops are harmless
        for name in files + dirs:
            path = Path(folder) / name
            if not _is_regular(path):
                continue
            st = os.lstat(path)
            digest = hashlib.sha256()
            if st.st_mode & 0o444 == 0:
                digest.update(b"unreadable")  # only reached when not root; content checked by mode+mtime
            else:
                with open(path, "rb") as handle:
                    for block in iter(lambda h=handle: h.read(1 << 20), b""):
                        digest.update(block)
            out[path.relative_to(root).as_posix()] = (digest.hexdigest(), st.st_mode, st.st_mtime_ns)
    return out


# -- running the CLI ------------------------------------------------------------------------------------
def aigc_cmd() -> list[str]:
    """The ``aigc`` console script beside this interpreter, else ``python -m labeler.cli``."""
    script = Path(sys.executable).parent / "aigc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "labeler.cli"]


def label_cmd(src: Path, dst: Path, workers: int, layers: str = "metadata",
              extra: Iterable[str] = ()) -> list[str]:
    return [*aigc_cmd(), "batch", "label", str(src), str(dst), "--producer", PRODUCER, "--produce-id",
            ID_TEMPLATE, "--layers", layers, "--workers", str(workers), "--no-progress", *extra]


def verify_cmd(src: Path, report: Path, workers: int, visible: bool = False,
               extra: Iterable[str] = ()) -> list[str]:
    return [*aigc_cmd(), "batch", "verify", str(src), "--report", str(report), "--workers", str(workers),
            "--no-progress", *([] if visible else ["--no-visible"]), *extra]


def run(cmd: list[str], timeout: float = 1800) -> tuple[int, str, float]:
    """Run a command; (exit status, stderr, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc.returncode, proc.stderr, time.perf_counter() - t0


def last_line(stderr: str) -> str:
    """The CLI's summary line without its journal path (a temporary folder): for the results table."""
    lines = stderr.strip().splitlines()
    return re.sub(r"; journal .*$", "", lines[-1])[:200] if lines else ""


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of a JSON Lines file, and the problems: lines that do not parse, a missing final newline."""
    records, problems = [], []
    data = path.read_bytes() if path.exists() else b""
    if data and not data.endswith(b"\n"):
        problems.append("last line has no newline (torn)")
    for n, line in enumerate(data.splitlines(), 1):
        try:
            rec = json.loads(line)
        except ValueError as exc:
            problems.append(f"line {n} is not JSON: {exc}")
            continue
        if not isinstance(rec, dict):
            problems.append(f"line {n} is not an object")
            continue
        records.append(rec)
    return records, problems


class Checks:
    """Named pass/fail checks with a detail line each; ``ok`` is False once any fails."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.rows: list[tuple[str, bool, str]] = []
        self.summary = ""  # the part's numbers, for RESULTS.md
        self.hostile: dict[str, str] = {}  # archive: what became of each hostile file
        self.targets: dict[str, float] = {}  # scaling: the speed figures the issue sets targets for

    def __call__(self, name: str, passed: bool, detail: Any = "") -> bool:
        self.rows.append((name, bool(passed), str(detail)))
        return bool(passed)

    @property
    def ok(self) -> bool:
        return all(p for _, p, _ in self.rows)

    def table(self) -> str:
        lines = ["| check | result | detail |", "|---|---|---|"]
        for name, passed, detail in self.rows:
            detail = detail.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {name} | {'pass' if passed else '**FAIL**'} | {detail[:300]} |")
        return "\n".join(lines)


def produce_id_of(report: dict[str, Any]) -> str | None:
    """The ProduceID a verify report line found in the metadata layer."""
    fields = ((report.get("layers") or {}).get("metadata") or {}).get("fields") or {}
    return fields.get("ProduceID")


def leftovers(dst: Path) -> list[str]:
    """Temporary outputs (``.NAME.HEX.part``, ``.aigc-*``) anywhere under DST."""
    found = []
    for folder, dirs, files in os.walk(dst):
        for name in dirs + files:
            if name.endswith(".part") or (name.startswith(".aigc-") and name != JOURNAL):
                found.append(os.path.relpath(os.path.join(folder, name), dst))
    return found


def outputs(dst: Path) -> set[str]:
    return {p.relative_to(dst).as_posix() for p in dst.rglob("*")
            if _is_regular(p) and p.name != JOURNAL}


def check_label_journal(checks: Checks, arc: Archive, dst: Path, tag: str = "") -> dict[str, dict[str, Any]]:
    """The checks every finished label batch over ``arc`` must pass; returns the records by path."""
    records, problems = read_jsonl(dst / JOURNAL)
    checks(f"{tag}journal is valid JSON Lines", not problems,
           "; ".join(problems[:3]) or f"{len(records)} lines")
    paths = [r.get("path") for r in records]
    dupes = [p for p, c in Counter(paths).items() if c > 1]
    missing, unexpected = sorted(set(arc.entries) - set(paths)), sorted(set(paths) - set(arc.entries))
    checks(f"{tag}one journal line per file", not dupes and not missing and not unexpected,
           f"{len(records)} lines for {len(arc.entries)} files; duplicates {dupes[:3]}; missing "
           f"{missing[:3]}; unexpected {unexpected[:3]}")
    by_path = {r.get("path"): r for r in records}
    good_fail = [(rel, by_path.get(rel, {}).get("error")) for rel in arc.of_kind("good")
                 if by_path.get(rel, {}).get("status") not in ("ok", "kept")]
    n_good = len(arc.of_kind("good"))
    checks(f"{tag}every good file labeled", not good_fail,
           f"{n_good - len(good_fail)}/{n_good}; first failures {good_fail[:2]}")
    bad_wrong = [rel for rel in arc.of_kind("bad") if by_path.get(rel, {}).get("status") != "error"
                 or not by_path.get(rel, {}).get("error") or "\n" in by_path[rel]["error"]]
    checks(f"{tag}every bad file journaled with a one-line reason", not bad_wrong,
           f"{len(arc.of_kind('bad')) - len(bad_wrong)}/{len(arc.of_kind('bad'))}; wrong {bad_wrong[:3]}")
    hostile_wrong = [rel for rel in arc.of_kind("hostile")
                     if by_path.get(rel, {}).get("status") not in ("ok", "kept", "error")
                     or (by_path[rel]["status"] == "error" and not by_path[rel]["error"])]
    checks(f"{tag}every hostile file handled (labeled, or error with reason)", not hostile_wrong,
           f"{len(arc.of_kind('hostile'))} hostile; wrong {hostile_wrong[:3]}")
    internal = [(r.get("path"), r.get("error")) for r in records if "internal error" in str(r.get("error"))]
    checks(f"{tag}no internal errors", not internal, internal[:2])
    labeled = {rel for rel, r in by_path.items() if r.get("status") in ("ok", "kept")}
    made = outputs(dst)
    checks(f"{tag}outputs = labeled files, nothing for failures", made == labeled,
           f"{len(made)} outputs; extra {sorted(made - labeled)[:3]}; missing {sorted(labeled - made)[:3]}")
    left = leftovers(dst)
    checks(f"{tag}no .part / .aigc-* leftovers", not left, left[:3])
    return by_path

