"""What one ``verify`` costs, per medium, as ratios that hold on any machine (issue #17).

Run: ``.venv/bin/python benchmarks/verify_throughput.py [--quick] [--write] [--label before|after]``.

One core (the process pins itself to CPU 0 and sets the BLAS/OpenMP/OpenCV threads to 1), CPU time
of the process and its ffmpeg children (the machine is shared), ratios taken within one run:

* image (a corpus photo resized to 1920x1080 and 2560x1440, JPEG q90; labeled = watermark + visible +
  metadata, clean = as is): ``verify`` with the key, all layers, over one decode of the same file
  (``labeler.media.read_image``, the RGB array); ``--quick`` verify (metadata, C2PA, watermark) too where
  it exists; the decode and the verifies are timed in turn (see :func:`_interleaved_times`), and their
  milliseconds are listed too; a clean image is verified with :data:`CLEAN_KEYS` keys (its cost depends
  on the key) and its rows give their mean and worst; a clean 1920x1080 picture of dense grain
  (:func:`make_textured_image`) too, where the image detector's rescale / rotation search always runs;
  and generated art (:func:`make_art_images`: flat / illustration, gradient / AI-look and text / UI
  pictures of ``content_corpus``, 1920-2560 px, JPEG q90), clean and labeled, mean and worst over the
  pictures: on such content the key-free lattice gate often sees a lattice (edges, text lines), so a
  clean picture gets the rescale / rotation search;
* video (10 s 1920x1080 25 fps H.264, ``testsrc2``; labeled = visible at start, middle, end + metadata):
  ``verify`` CPU time over the clip's duration; the same re-encoded with a keyframe every 2 s; a 120 s
  and a 1-hour clip (a 60 s 1080p clip, keyframe every 2 s, looped by stream copy: real H.264 packets,
  made in seconds), CPU seconds and the peak memory of the process and its ffmpeg children;
  ``--video-only`` measures just these (and leaves RESULTS.md alone), ``--image-only`` the images
  (``--save-images`` keeps them as those of ``--label`` in the saved JSON, e.g. a re-measured "before");
* audio (32 s 44.1 kHz stereo, the corpus piano looped; labeled = rhythm cue + voice prompt at start
  and end): audio duration over ``verify`` CPU time, "x real time"; a 1-hour WAV of the same (labeled:
  the cue at start and end and the audio watermark), streamed by ``verify``: x real time without and
  with the key (clean with the key: every watermark window read) and the peak memory (fresh process);
  ``--audio-only`` measures just these (printed);
* ``aigc batch verify`` over a folder of images (half labeled), files per second on 1 and 2 workers
  (not pinned: the workers need their own cores).

``--label before`` measures another checkout: run it with that checkout's code first on
``PYTHONPATH`` (``git worktree add /tmp/before <commit>``; ``PYTHONPATH=/tmp/before python
benchmarks/verify_throughput.py --label before``); its numbers are kept in a JSON file beside
``RESULTS.md`` and shown as the "before" column when ``--label after --write`` runs. A run labelled
"after" (the default) saves its numbers there only with ``--write``.
"""

from __future__ import annotations

import os

# One core: set before NumPy/OpenCV load their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
SAVED = Path(__file__).resolve().parent / "verify_throughput.json"
PRODUCER = "001191110102MACQD9K64010000"


def _steady_allocator(steady: bool = True) -> None:
    """Fix glibc's mmap and trim thresholds (256 / 512 MiB), so freed arrays are reused, not re-faulted;
    with ``steady`` False, back to glibc's initial 128 KiB (large blocks mmapped and returned at once),
    the free heap released.

    By default glibc moves its mmap threshold with what was freed last, so whether a decode's 6 MB
    arrays come from reused heap or from fresh, page-faulted mmaps depends on what ran before: the
    same 1080p ``read_image`` then costs 11 or 30 ms in one process. Fixed thresholds are the steady
    state of a long-running worker, the same for the decode and the verify it is compared with. The
    image and audio rows use it; the video rows do not: kept on, freed video frames would stay resident
    and inflate their peak memory.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return
    libc.mallopt(-3, 256 << 20 if steady else 128 << 10)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 512 << 20 if steady else 128 << 10)  # M_TRIM_THRESHOLD
    if not steady and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def _pin() -> None:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def _cpu() -> float:
    """CPU seconds of this process (high resolution) plus its finished children (ffmpeg; clock ticks)."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median CPU time (s) of ``fn`` after one warm-up call (templates, FFT plans, imports).

    CPU rather than wall time: the machine is shared, and another process's load inflates wall times
    (not CPU times) of the decode and the verify differently.
    """
    fn()
    times = []
    for _ in range(repeats):
        t0 = _cpu()
        fn()
        times.append(_cpu() - t0)
    return statistics.median(times)


def _interleaved_times(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median CPU time (s) of each of ``fns``, called in turn (A, B, C, A, B, C, ...) after a warm-up.

    In turn, not one after the other: an RGB decode's cost depends on the allocator's state (a fresh
    process page-faults its 6 MB arrays in, ~30 ms for a 1080p JPEG; after a verify has freed large
    arrays the same decode takes ~12 ms), so the decode and the verify it is compared with are
    measured in the same conditions.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = _cpu()
            fn()
            times[name].append(_cpu() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def make_video_media(folder: Path, files: dict[str, Path]) -> None:
    """The 10 s clips (clean, labeled, 2 s keyframes), the 120 s and the 1-hour clip, into ``files``."""
    from labeler import AIGCLabel, label_file
    from labeler.media import ffmpeg as ff

    exe = ff.ffmpeg_exe()
    clip = folder / "clean.mp4"
    subprocess.run([exe, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=1920x1080:rate=25:duration=10", "-f", "lavfi", "-i",
                    "sine=f=440:duration=10", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip)], check=True)
    files["video-clean"], files["video-labeled"] = clip, folder / "labeled.mp4"
    label_file(clip, files["video-labeled"], AIGCLabel(PRODUCER, "bench-1"), layers=("visible", "metadata"),
               visible_seconds=2.0, video_at=("start", "middle", "end"))
    # Both clips re-encoded with a keyframe every 2 s, as a platform's transcode leaves them (the
    # labeler's re-encode keeps x264's default of one per 10 s, so reaching the middle and the end of
    # the clips above means decoding from their first frame).
    for state in ("clean", "labeled"):
        gop = folder / f"{state}-gop2s.mp4"
        subprocess.run([exe, "-y", "-loglevel", "error", "-i", str(files[f"video-{state}"]), "-c:v",
                        "libx264", "-preset", "veryfast", "-crf", "23", "-g", "50", "-c:a", "copy", str(gop)],
                       check=True)
        files[f"video2s-{state}"] = gop
    # Long ones (the cost must not grow with the duration): 60 s of 1080p, keyframe every 2 s, looped by
    # stream copy to 120 s and to 1 hour.
    minute = folder / "clean-60s.mp4"
    subprocess.run([exe, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=1920x1080:rate=25:duration=60", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "30", "-g", "50", "-pix_fmt", "yuv420p", str(minute)], check=True)
    for seconds in (120, 3600):
        files[f"video{seconds}-clean"] = folder / f"clean-{seconds}s.mp4"
        subprocess.run([exe, "-y", "-loglevel", "error", "-stream_loop", str(seconds // 60 - 1), "-i",
                        str(minute), "-c", "copy", str(files[f"video{seconds}-clean"])], check=True)


def make_image_media(folder: Path) -> dict[str, Path]:
    """The key and the clean and labeled JPEGs (1920 and 2560 px) in ``folder``."""
    from labeler import AIGCLabel, label_file
    from labeler.media import read_image
    from labeler.watermark.keyfile import generate_key, read_key_file, write_key_file

    photo = CORPUS / "images" / "mate-Garden.jpg"
    src = read_image(photo if photo.exists() else ROOT / "samples" / "photo.jpg").pixels
    key = folder / "key.txt"
    write_key_file(key, generate_key())
    files: dict[str, Path] = {"key": key}
    rec = AIGCLabel(PRODUCER, "bench-1")
    for w, h in ((1920, 1080), (2560, 1440)):
        img = cv2.resize(src, (w, h), interpolation=cv2.INTER_CUBIC)
        clean = folder / f"clean{w}.jpg"
        cv2.imwrite(str(clean), np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
        files[f"image{w}-clean"] = clean
        files[f"image{w}-labeled"] = folder / f"labeled{w}.jpg"
        label_file(clean, files[f"image{w}-labeled"], rec, layers=("watermark", "visible", "metadata"),
                   key=read_key_file(key), quality=90)
    files["image1920-textured"] = make_textured_image(folder)
    files |= make_art_images(folder, key)
    return files


def make_textured_image(folder: Path) -> Path:
    """A clean 1920 x 1080 JPEG (q90) of dense grain: blurred Gaussian noise, RMS 40 levels, no flat area.
    The image detector's lattice gate cannot rule a rescaled mark out there, so its rescale / rotation
    search runs (``detectors.watermark_gate.GATE_DENSE_SHARE``): the costliest clean image for a full
    verify."""
    path = folder / "textured1920.jpg"
    rng = np.random.default_rng(20261206)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (1080, 1920)).astype(np.float32), (0, 0), 1.0)
    grey = np.clip(128 + 40 * grain / grain.std(), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.merge([grey, grey, grey]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


#: Generated art per class of ``content_corpus`` in the art rows (its held-out seeds: never tuned on).
ART_PER_CLASS = 3
ART_SEEDS = range(12, 12 + ART_PER_CLASS)


def make_art_images(folder: Path, key_file: Path) -> dict[str, Path]:
    """Generated art (``content_corpus``: flat / illustration, gradient / AI-look, text / UI), each
    picture as a clean JPEG (q90) and labeled like the photo (watermark with the key of ``key_file``,
    visible mark, metadata): keys ``art-clean-<name>`` and ``art-labeled-<name>``."""
    from content_corpus import CLASSES, load

    from labeler import AIGCLabel, label_file
    from labeler.watermark.keyfile import read_key_file

    key = read_key_file(key_file)
    files: dict[str, Path] = {}
    for cls in CLASSES:
        for seed in ART_SEEDS:
            name = f"{cls}-{seed:03d}"
            clean = folder / f"art-{name}.jpg"
            cv2.imwrite(str(clean), np.ascontiguousarray(load(cls, seed)[..., ::-1]),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
            labeled = folder / f"art-{name}-labeled.jpg"
            label_file(clean, labeled, AIGCLabel(PRODUCER, f"bench-{name}"),
                       layers=("watermark", "visible", "metadata"), key=key, quality=90)
            files[f"art-clean-{name}"], files[f"art-labeled-{name}"] = clean, labeled
    return files


def _with_textured(files: dict[str, Path], folder: Path, index: Path) -> dict[str, Path]:
    """``files`` with the textured image and the art (made and added to ``index`` for media made before
    they existed)."""
    if "image1920-textured" not in files:
        files["image1920-textured"] = make_textured_image(folder)
    if not any(k.startswith("art-") for k in files):
        files |= make_art_images(folder, files["key"])
    index.write_text(json.dumps({k: str(v) for k, v in files.items()}))
    return files


#: The image rows: (width, state) pairs; "textured" is a clean picture of dense grain (1920 px only).
IMAGE_ROWS = ((1920, "labeled"), (1920, "clean"), (1920, "textured"), (2560, "labeled"), (2560, "clean"))


def make_media(folder: Path) -> dict[str, Path]:
    """The clean and labeled files of every medium in ``folder``."""
    files = make_image_media(folder)
    make_video_media(folder, files)
    make_audio_media(folder, files)
    return files


def make_audio_media(folder: Path, files: dict[str, Path]) -> None:
    """The 32 s WAVs and the 1-hour ones (44.1 kHz stereo 16-bit, the short clean one looped; labeled
    with the cue at start and end and the audio watermark of ``files["key"]``) into ``files``."""
    from labeler import AIGCLabel, label_file
    from labeler.media import ffmpeg as ff
    from labeler.watermark.keyfile import read_key_file

    exe = ff.ffmpeg_exe()
    piano = CORPUS / "audio" / "music-piano.wav"
    wav = folder / "clean.wav"
    subprocess.run([exe, "-y", "-loglevel", "error", "-stream_loop", "-1", "-i",
                    str(piano if piano.exists() else ROOT / "samples" / "speech.wav"), "-t", "32", "-ac", "2",
                    "-ar", "44100", str(wav)], check=True)
    files["audio-clean"], files["audio-labeled"] = wav, folder / "labeled.wav"
    label_file(wav, files["audio-labeled"], AIGCLabel(PRODUCER, "bench-1"), layers=("visible", "metadata"),
               audio_label="both", cue_positions=("start", "end"))
    hour = folder / "clean-3600s.wav"
    subprocess.run([exe, "-y", "-loglevel", "error", "-stream_loop", "-1", "-i", str(wav), "-t", "3600",
                    "-c:a", "pcm_s16le", str(hour)], check=True)
    files["audio3600-clean"], files["audio3600-labeled"] = hour, folder / "labeled-3600s.wav"
    label_file(hour, files["audio3600-labeled"], AIGCLabel(PRODUCER, "bench-hour"),
               layers=("watermark", "visible", "metadata"), key=read_key_file(files["key"]),
               cue_positions=("start", "end"))


def _has_layers() -> bool:
    from detectors import verify

    return "layers" in inspect.signature(verify).parameters


def measure(files: dict[str, Path], repeats: int) -> dict[str, float]:
    """Ratios per medium and state (see the module docstring)."""
    from labeler.watermark.keyfile import read_key_file

    key = read_key_file(files["key"])
    # Images and audio in a long-running worker's steady allocator state (see _steady_allocator): with
    # glibc's initial 128 KiB thresholds fixed, the audio verify paid ~70 % of its time in page faults of
    # fresh temporaries (665x instead of ~1600x real time on the same code). Video after, back at the
    # initial thresholds, so that freed frames do not count in its peak memory.
    _steady_allocator()
    out = measure_images(files, repeats, key)
    out |= _measure_audio(files, repeats, key)
    _steady_allocator(False)
    out |= measure_video(files, repeats, key)
    return out


def _measure_audio(files: dict[str, Path], repeats: int, key: bytes) -> dict[str, float]:
    """Audio: x real time of verify without and with the key."""
    from detectors import verify
    from labeler.media.audio import read_audio

    out: dict[str, float] = {}
    for state in ("labeled", "clean"):
        path = files[f"audio-{state}"]
        seconds = _median_time(lambda p=path: verify(p), repeats)
        audio = read_audio(path)
        duration = audio.samples.shape[0] / audio.sample_rate
        out[f"audio-{state}"] = duration / seconds
        out[f"audio-{state}-key"] = duration / _median_time(lambda p=path: verify(p, key=key), 1)
        print(f"audio {state}: verify {1000 * seconds:.0f} ms for {duration:.0f} s "
              f"({duration / seconds:.0f}x real time)", flush=True)
    return out | measure_long_audio(files, key)


def measure_long_audio(files: dict[str, Path], key: bytes) -> dict[str, float]:
    """The 1-hour WAVs: x real time without and with the key (one run each: minutes of audio), and the
    peak memory of a verify without the key in a fresh process (:func:`_fresh_peak_kib`)."""
    from detectors import verify

    out: dict[str, float] = {}
    for state in ("labeled", "clean"):
        path = files.get(f"audio3600-{state}")
        if path is None:
            continue
        k = f"audio3600-{state}"
        for suffix, kwargs in (("", {}), ("-key", {"key": key})):
            t0 = _cpu()
            verify(path, **kwargs)
            out[k + suffix] = 3600.0 / (_cpu() - t0)
        out[k + "-mib"] = _fresh_peak_kib(path) / 1024
        print(f"audio 1 hour {state}: {out[k]:.0f}x real time, with key {out[k + '-key']:.0f}x, peak "
              f"{out[k + '-mib']:.0f} MiB", flush=True)
    return out


#: Keys a clean image is verified with. An unmarked image's cost depends on the key: the full-resolution
#: read is made when a half-resolution pilot reaches ``FULL_READ_MIN_Z``, which half of unmarked images do
#: for a given key (``detectors.watermark``), so one key's row is a coin flip; the rows average these keys
#: (the file's own key and derived ones) and the table also gives the worst.
CLEAN_KEYS = 4


def _clean_keys(key: bytes) -> list[bytes]:
    import hashlib

    return [key] + [hashlib.sha256(key + bytes([i])).digest() for i in range(1, CLEAN_KEYS)]


def _image_times(path: Path, keys: list[bytes], repeats: int) -> tuple[float, dict[str, list[float]]]:
    """The RGB decode of ``path`` and its verifies with each of ``keys`` (seconds of CPU), timed in
    turn: (decode, {"": full verifies, "-quick": ``--quick`` verifies, empty where it does not exist})."""
    from detectors import verify
    from labeler.media import read_image

    fns: dict[str, Callable[[], Any]] = {"decode": lambda: read_image(path)}
    for i, k in enumerate(keys):
        fns[f"full{i}"] = lambda k=k: verify(path, key=k)
        if _has_layers():
            fns[f"quick{i}"] = lambda k=k: verify(path, key=k, layers="quick")
    t = _interleaved_times(fns, repeats)
    return t["decode"], {suffix: [t[f"{kind}{i}"] for i in range(len(keys)) if f"{kind}{i}" in t]
                         for kind, suffix in (("full", ""), ("quick", "-quick"))}


def measure_images(files: dict[str, Path], repeats: int, key: bytes) -> dict[str, float]:
    """Images: verify (all layers, key) and ``--quick`` verify over the RGB decode, and their ms.

    Labeled files are verified with their key; clean ones with :data:`CLEAN_KEYS` keys (mean, and the
    worst under ``-worst``).
    """
    import resource

    out: dict[str, float] = {}
    for w, state in IMAGE_ROWS:
        keys = [key] if state == "labeled" else _clean_keys(key)
        decode, verifies = _image_times(files[f"image{w}-{state}"], keys, repeats)
        out[f"image{w}-{state}-decode-ms"] = 1000 * decode
        for name, times in verifies.items():
            if times:
                out[f"image{w}-{state}{name}"] = statistics.mean(times) / decode
                out[f"image{w}-{state}{name}-worst"] = max(times) / decode
                out[f"image{w}-{state}{name}-ms"] = 1000 * statistics.mean(times)
        print(f"image {w} {state}: decode {1000 * decode:.1f} ms, verify "
              f"{out[f'image{w}-{state}-ms']:.1f} ms ({out[f'image{w}-{state}']:.2f}x, worst "
              f"{out[f'image{w}-{state}-worst']:.2f}x), quick "
              f"{out.get(f'image{w}-{state}-quick-ms', float('nan')):.1f} ms "
              f"({out.get(f'image{w}-{state}-quick', float('nan')):.2f}x, worst "
              f"{out.get(f'image{w}-{state}-quick-worst', float('nan')):.2f}x) over {len(keys)} key(s)",
              flush=True)
    out |= measure_art(files, repeats, key)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory after the images: {peak:.0f} MiB", flush=True)
    return out


def measure_art(files: dict[str, Path], repeats: int, key: bytes) -> dict[str, float]:
    """The art rows: per picture, verify (all layers, key) and ``--quick`` over its decode, as the photo
    rows measure them (a clean picture with :data:`CLEAN_KEYS` keys); then the mean over the pictures
    and the worst picture (``art-<state>[-quick]`` and ``-worst``), and the mean milliseconds."""
    out: dict[str, float] = {}
    for state in ("labeled", "clean"):
        names = sorted(k for k in files if k.startswith(f"art-{state}-"))
        ratios: dict[str, list[float]] = {"": [], "-quick": []}
        ms: dict[str, list[float]] = {"": [], "-quick": [], "-decode": []}
        for name in names:
            keys = [key] if state == "labeled" else _clean_keys(key)
            decode, verifies = _image_times(files[name], keys, repeats)
            ms["-decode"].append(1000 * decode)
            for suffix, times in verifies.items():
                if times:
                    ratios[suffix].append(statistics.mean(times) / decode)
                    ms[suffix].append(1000 * statistics.mean(times))
            quick = ratios["-quick"][-1] if ratios["-quick"] else float("nan")
            print(f"{name}: decode {ms['-decode'][-1]:.1f} ms, verify {ms[''][-1]:.1f} ms "
                  f"({ratios[''][-1]:.2f}x), quick {quick:.2f}x", flush=True)
        for suffix, values in ratios.items():
            if values:
                out[f"art-{state}{suffix}"] = statistics.mean(values)
                out[f"art-{state}{suffix}-worst"] = max(values)
        for suffix, values in ms.items():
            if values:
                out[f"art-{state}{suffix}-ms"] = statistics.mean(values)
    return out


def _fresh_peak_kib(path: Path) -> int:
    """Peak memory (KiB) of ``verify(path)`` in a fresh process: the larger of the process and its largest
    ffmpeg child. Fresh, because this process's own peak holds whatever ran before (the x264 runs that
    made the media, the images). Linux counts a forked child's pages in its peak even after exec, so the
    new process first resets its high-water mark (``/proc/self/clear_refs``) and reads ``VmHWM``."""
    code = ("import resource, sys\n"
            "try:\n    open('/proc/self/clear_refs', 'w').write('5')\nexcept OSError:\n    pass\n"
            "from detectors import verify\nverify(sys.argv[1])\n"
            "hwm = [int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')]\n"
            "own = hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print(max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))")
    # Not run from ROOT: ``python -c`` puts its working folder first on sys.path, ahead of PYTHONPATH, so
    # a "before" checkout given there would be measured with this one's code. ROOT goes last instead.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(ROOT)) if p)
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                          cwd=path.parent, env=env)
    return int(done.stdout.split()[-1])


def measure_video(files: dict[str, Path], repeats: int, key: bytes | None) -> dict[str, float]:
    """Video: verify CPU time / duration, without the key (every layer that exists for video at the
    starting commit) and with it (adds the video watermark detector, newer than issue #17's start);
    the long clips in CPU seconds and peak memory (MiB, the process or its largest ffmpeg child, in a
    fresh process: :func:`_fresh_peak_kib`)."""
    from detectors import verify
    from labeler.media.video import video_info

    out: dict[str, float] = {}
    for state in ("labeled", "clean"):
        path = files[f"video-{state}"]
        seconds = _median_time(lambda p=path: verify(p), max(1, repeats // 3))
        duration = video_info(path).duration
        out[f"video-{state}"] = seconds / duration
        if key is not None:
            out[f"video-{state}-key"] = _median_time(lambda p=path: verify(p, key=key), 1) / duration
        gop = files[f"video2s-{state}"]
        out[f"video2s-{state}"] = _median_time(lambda p=gop: verify(p), max(1, repeats // 3)) / duration
        print(f"video {state}: verify {seconds:.2f} s for {duration:.1f} s ({seconds / duration:.3f}x), "
              f"2 s keyframes {out[f'video2s-{state}']:.3f}x", flush=True)
        report = verify(path).to_dict()
        out[f"video-{state}-found"] = float(bool((report["layers"].get("visible") or {}).get("present")))
    for seconds in (120, 3600):
        long = files.get(f"video{seconds}-clean")
        if long is None:
            continue
        out[f"video{seconds}-clean-s"] = _median_time(lambda p=long: verify(p), 1)
        peak = _fresh_peak_kib(long)
        out[f"video{seconds}-clean-mib"] = peak / 1024
        print(f"video {seconds} s clean: verify {out[f'video{seconds}-clean-s']:.2f} s CPU, peak "
              f"{peak / 1024:.0f} MiB", flush=True)
    return out


def batch_rate(files: dict[str, Path], folder: Path, count: int, workers: int) -> float:
    """Files per second of ``aigc batch verify`` over ``count`` 1080p images, half labeled."""
    src = folder / "batch"
    if not src.exists():
        src.mkdir()
        for i in range(count):
            state = "labeled" if i % 2 else "clean"
            shutil.copy(files[f"image1920-{state}"], src / f"{i:03d}.jpg")
    report = folder / f"batch-{workers}.jsonl"
    report.unlink(missing_ok=True)
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "labeler.cli", "batch", "verify", str(src), "--report", str(report),
           "--key-file", str(files["key"]), "--workers", str(workers), "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return count / (time.perf_counter() - t0)


def table(now: dict[str, float], before: dict[str, float] | None) -> str:
    """Markdown tables: the ratios, and batch files/s."""
    def cell(d: dict[str, float] | None, k: str, fmt: str) -> str:
        return "-" if d is None or k not in d else format(d[k], fmt) + ("x" if fmt == ".2f" else "")

    rows = ["| medium | what | state | before | after | target |", "|---|---|---|---:|---:|---|"]
    for w, state in IMAGE_ROWS:
        k = f"image{w}-{state}"
        what = f"image {w} px JPEG" + (", dense grain" if state == "textured" else "")
        shown = "clean" if state == "textured" else state
        worst = state != "labeled" and k + "-worst" in now
        rows.append(f"| {what} | verify (all layers, key) / decode | {shown} | "
                    f"{cell(before, k, '.2f')} | {cell(now, k, '.2f')}"
                    f"{' (worst ' + cell(now, k + '-worst', '.2f') + ')' if worst else ''} | <= 2x |")
        rows.append(f"| {what} | `--quick` verify / decode | {shown} | "
                    f"{cell(before, k + '-quick', '.2f')} | {cell(now, k + '-quick', '.2f')}"
                    f"{' (worst ' + cell(now, k + '-quick-worst', '.2f') + ')' if worst else ''} | "
                    "<= 1.2x |")
    art = f"generated art ({3 * ART_PER_CLASS} pictures, 1920-2560 px JPEG)"
    for state in ("labeled", "clean"):
        k = f"art-{state}"
        for suffix, what, target in (("", "verify (all layers, key) / decode", "<= 2x"),
                                     ("-quick", "`--quick` verify / decode", "<= 1.2x")):
            rows.append(f"| {art} | {what}, mean (worst picture) | {state} | "
                        f"{cell(before, k + suffix, '.2f')} | {cell(now, k + suffix, '.2f')} "
                        f"(worst {cell(now, k + suffix + '-worst', '.2f')}) | {target} |")
    for state in ("labeled", "clean"):
        k = f"video-{state}"
        rows.append(f"| video 10 s 1080p25 H.264 | verify / duration | {state} | {cell(before, k, '.3f')} | "
                    f"{cell(now, k, '.3f')} | <= 0.1 |")
        rows.append(f"| same, keyframe every 2 s | verify / duration | {state} | "
                    f"{cell(before, 'video2s-' + state, '.3f')} | {cell(now, 'video2s-' + state, '.3f')} "
                    "| <= 0.1 |")
        rows.append(f"| video 10 s 1080p25 H.264 | verify with key (+ video watermark) / duration "
                    f"| {state} | "
                    f"{cell(before, k + '-key', '.3f')} | {cell(now, k + '-key', '.3f')} | - |")
    for seconds, name in ((120, "120 s"), (3600, "1 hour")):
        mib = cell(now, f"video{seconds}-clean-mib", ".0f")
        rows.append(f"| video {name} 1080p25, keyframe every 2 s | verify, seconds of CPU (peak memory) | "
                    f"clean | {cell(before, f'video{seconds}-clean-s', '.1f')} s | "
                    f"{cell(now, f'video{seconds}-clean-s', '.1f')} s ({mib} MiB) | "
                    "1 h <= 30 s, memory bounded |")
    for state in ("labeled", "clean"):
        k = f"audio-{state}"
        rows.append(f"| audio 32 s 44.1 kHz stereo | x real time | {state} | {cell(before, k, '.0f')} | "
                    f"{cell(now, k, '.0f')} | >= 500 |")
        rows.append(f"| audio 32 s 44.1 kHz stereo | x real time, with key (+ audio watermark) | {state} | "
                    f"{cell(before, k + '-key', '.0f')} | {cell(now, k + '-key', '.0f')} | - |")
    for state in ("labeled", "clean"):
        k = f"audio3600-{state}"
        mib = cell(now, k + "-mib", ".0f")
        rows.append(f"| audio 1 hour 44.1 kHz stereo WAV | x real time (peak memory) | {state} | "
                    f"{cell(before, k, '.0f')} | {cell(now, k, '.0f')} ({mib} MiB) | "
                    ">= 500, memory bounded |")
        rows.append(f"| audio 1 hour 44.1 kHz stereo WAV | x real time, with key | {state} | "
                    f"{cell(before, k + '-key', '.0f')} | {cell(now, k + '-key', '.0f')} | - |")
    rows += ["", "| image JPEG | state | decode (ms) | verify (ms) | `--quick` (ms) |",
             "|---|---|---:|---:|---:|"]
    for w, state in IMAGE_ROWS:
        k = f"image{w}-{state}"
        rows.append(f"| {w} px | {'clean, dense grain' if state == 'textured' else state} | "
                    f"{cell(now, k + '-decode-ms', '.1f')} | "
                    f"{cell(now, k + '-ms', '.1f')} | {cell(now, k + '-quick-ms', '.1f')} |")
    for state in ("labeled", "clean"):
        k = f"art-{state}"
        rows.append(f"| generated art, mean | {state} | {cell(now, k + '-decode-ms', '.1f')} | "
                    f"{cell(now, k + '-ms', '.1f')} | {cell(now, k + '-quick-ms', '.1f')} |")
    rows += ["", "| `aigc batch verify`, 1080p JPEGs (half labeled), all layers + key | before | after |",
             "|---|---:|---:|"]
    for workers in (1, 2):
        k = f"batch-{workers}"
        rows.append(f"| files/s, {workers} worker{'s' if workers > 1 else ''} | {cell(before, k, '.1f')} | "
                    f"{cell(now, k, '.1f')} |")
    return "\n".join(rows)


NOTES_HEADING = "Notes kept from earlier runs (their numbers are those of the commits and runs they name):"


def _earlier_notes() -> str:
    """The paragraphs after the tables of the current ``verify:throughput`` section, kept by ``--write``
    (measurements written there by hand from other runs), under :data:`NOTES_HEADING`."""
    import re

    from results import RESULTS

    text = RESULTS.read_text() if RESULTS.exists() else ""
    found = re.search(r"<!-- verify:throughput:start -->(.*?)<!-- verify:throughput:end -->", text, re.S)
    section = found.group(1) if found else ""
    at = section.find("| files/s, 2 workers |")
    if at < 0 or "\n" not in section[at:]:
        return ""
    rest = section[section.index("\n", at) + 1:].strip()
    return rest if not rest or rest.startswith(NOTES_HEADING) else f"{NOTES_HEADING}\n\n{rest}"


def run_image_only(folder: Path, repeats: int, save_as: str | None) -> None:
    """``--image-only``: make (or reuse) the image media, measure, print; with ``save_as`` the image
    numbers replace those of that label in the saved JSON (its other media are kept)."""
    from labeler.watermark.keyfile import read_key_file

    index = folder / "images.json"
    if index.exists():
        files = _with_textured({k: Path(v) for k, v in json.loads(index.read_text()).items()}, folder, index)
    else:
        files = make_image_media(folder)
        index.write_text(json.dumps({k: str(v) for k, v in files.items()}))
    _pin()
    _steady_allocator()
    now = measure_images(files, repeats, read_key_file(files["key"]))
    _steady_allocator(False)
    if save_as:
        saved = json.loads(SAVED.read_text()) if SAVED.exists() else {}
        kept = {k: v for k, v in saved.get(save_as, {}).items() if not k.startswith("image")}
        saved[save_as] = kept | now
        SAVED.write_text(json.dumps(saved, indent=1, sort_keys=True))


def run_video_only(folder: Path, index: Path, repeats: int) -> None:
    """``--video-only``: make (or reuse) the video media, measure, print."""
    files = {k: Path(v) for k, v in json.loads(index.read_text()).items()} if index.exists() else {}
    if "video3600-clean" not in files:
        make_video_media(folder, files)
        index.write_text(json.dumps({k: str(v) for k, v in files.items()}))
    _pin()
    for k, v in measure_video(files, repeats, None).items():
        print(f"{k}: {v:.3f}")


def run_audio_only(folder: Path, repeats: int) -> None:
    """``--audio-only``: make (or reuse) the audio media (a key, the short clips and the 1-hour WAVs),
    measure, print."""
    from labeler.watermark.keyfile import read_key_file, write_key_file

    index = folder / "audio.json"
    if index.exists():
        files = {k: Path(v) for k, v in json.loads(index.read_text()).items()}
    else:
        files = {"key": folder / "audio.key"}
        write_key_file(files["key"])
        make_audio_media(folder, files)
        index.write_text(json.dumps({k: str(v) for k, v in files.items()}))
    _pin()
    _steady_allocator()
    for k, v in _measure_audio(files, repeats, read_key_file(files["key"])).items():
        print(f"{k}: {v:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and batch files")
    parser.add_argument("--write", action="store_true",
                        help="write the section verify:throughput of RESULTS.md")
    parser.add_argument("--label", default="after", help="'before' saves the numbers for a later 'after' run")
    parser.add_argument("--video-only", action="store_true",
                        help="only the video rows (printed; RESULTS.md and the saved numbers are left alone)")
    parser.add_argument("--image-only", action="store_true",
                        help="only the image rows (printed; RESULTS.md and the saved numbers are left alone)")
    parser.add_argument("--save-images", action="store_true",
                        help="with --image-only: keep the image numbers as those of --label in the "
                        "saved JSON "
                        "(e.g. re-measure 'before' with its own code on PYTHONPATH)")
    parser.add_argument("--audio-only", action="store_true",
                        help="only the audio rows (printed; RESULTS.md and the saved numbers are left alone)")
    parser.add_argument("--media", type=Path,
                        help="keep the generated media in this folder (reused when there)")
    args = parser.parse_args()
    repeats, count = (3, 8) if args.quick else (7, 24)
    folder = args.media or Path(tempfile.mkdtemp(prefix="aigc-verify-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "files.json"
    if args.video_only or args.image_only or args.audio_only:
        try:
            if args.video_only:
                run_video_only(folder, index, repeats)
            elif args.audio_only:
                run_audio_only(folder, repeats)
            else:
                run_image_only(folder, repeats, args.label if args.save_images else None)
        finally:
            if args.media is None:  # the 1-hour clip alone is 3.8 GB
                shutil.rmtree(folder, ignore_errors=True)
        return
    if index.exists():
        files = _with_textured({k: Path(v) for k, v in json.loads(index.read_text()).items()}, folder, index)
    else:
        files = make_media(folder)
        index.write_text(json.dumps({k: str(v) for k, v in files.items()}))
    try:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        _pin()
        now = measure(files, repeats)
        # The batch last, on every core again: its worker processes would otherwise count in the video
        # rows' peak memory (RUSAGE_CHILDREN), and pinned they would share one core.
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        rates = {f"batch-{w}": batch_rate(files, folder, count, w) for w in (1, 2)}
        print(f"batch verify: {rates}", flush=True)
        now |= rates
    finally:
        if args.media is None:
            shutil.rmtree(folder, ignore_errors=True)
    saved = json.loads(SAVED.read_text()) if SAVED.exists() else {}
    saved[args.label] = now
    # The JSON is committed beside RESULTS.md: only a run that publishes (--write) or measures another
    # checkout for a later run (a label other than "after") replaces its numbers; a plain or --quick
    # check leaves it alone (it used to overwrite the published "after" numbers on every run).
    if args.write or args.label != "after":
        SAVED.write_text(json.dumps(saved, indent=1, sort_keys=True))
    text = table(now, saved.get("before") if args.label != "before" else None)
    print(text)
    if args.write:
        from results import write_section

        body = ("`benchmarks/verify_throughput.py`" + (" --quick" if args.quick else "")
                + ": one core (CPU 0, 1 thread), median CPU time (process + ffmpeg children) of repeats; "
                "ratios within one run; an image's decode and verifies timed in turn; clean images verified "
                f"with {CLEAN_KEYS} keys (mean, worst in brackets: whether the detector makes its full-"
                "resolution read depends on the key); images and audio with "
                "glibc's mmap threshold fixed high (a long-running worker's steady state: otherwise the "
                "same RGB decode costs 11 or 30 ms depending on what ran before, and the audio verify "
                "pays most of its time in page faults), video at glibc's initial thresholds; "
                "batch files/s are wall time. 'before' = the commit issue #17 started "
                "from (5354ae6), run with its own code; its image rows re-measured with this method "
                "(`--image-only --save-images --label before`, 5354ae6 on PYTHONPATH).\n\n" + text)
        notes = _earlier_notes()
        write_section("verify:throughput", body + (f"\n\n{notes}" if notes else ""))


if __name__ == "__main__":
    main()
