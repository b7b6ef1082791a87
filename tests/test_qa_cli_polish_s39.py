"""QA of the command line's wording (session 39): a fresh-user walkthrough and a video pass.

* ``aigc label FOLDER out`` said click's "Invalid value for 'SRC': File 'FOLDER' is a directory.",
  not the tool's words, nor what to do (``aigc batch label``).
* ``label_file`` / ``labeler.label`` on a missing input raised "no such file" without the path.
* An interrupted batch's summary did not say how to resume; a batch with nothing new printed
  "0.0 files/s".
* ``aigc doctor`` with ``AIGC_FFMPEG=bundled`` said "(from imageio-ffmpeg)", not that the variable chose it.
* ``aigc label --help``: ``--watermark-method`` had no help, the visible layer's re-encode was not said,
  and the ``--position`` line was 98 columns.
* A JPEG named ``fake.png`` labeled to ``fake.l.png`` was told ".png does not fit jpeg", not that the
  input's own name is the wrong one.
* ``aigc verify``'s summary said "watermark not decided" for a video read that stopped part-way, whose
  layer was checked (the frames read hold no mark).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest

from labeler import AIGCLabel, label, label_file
from labeler.errors import InvalidArgument, LabelerError
from tests.conftest import PRODUCER, SAMPLES, run_ffmpeg

RECORD = ("--producer", PRODUCER, "--produce-id", "qa-s39-cli")
LABEL = AIGCLabel(content_producer=PRODUCER, produce_id="qa-s39-cli")


def _aigc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labeler.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a refused command (exit 2, no traceback)."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aigc: error: "), proc.stderr
    return lines[0]


# -- 1. a folder as `aigc label`'s SRC or DST ------------------------------------------------------------


def test_label_of_a_folder_says_so_and_names_batch_label(tmp_path: Path) -> None:
    folder = tmp_path / "some_folder"
    folder.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", folder / "photo.jpg")
    line = _error_line(_aigc("label", str(folder), str(tmp_path / "out.jpg"), *RECORD))
    assert line == (f"aigc: error: {folder}: is a folder, not a file; to label every file in it use "
                    "aigc batch label SRC DST")
    # a folder named as the output: the same words, and what to give instead
    line = _error_line(_aigc("label", str(folder / "photo.jpg"), str(folder), *RECORD))
    assert line.startswith(f"aigc: error: {folder}: is a folder, not a file; ")
    assert "Invalid value" not in line
    assert sorted(p.name for p in folder.iterdir()) == ["photo.jpg"]


# -- 2. a missing input named by the library, once by the CLI -------------------------------------------


def test_a_missing_input_is_named_by_the_library_and_once_by_the_cli(tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.png"
    for call in (lambda: label(str(missing), LABEL, dst=tmp_path / "o.png"),
                 lambda: label_file(missing, tmp_path / "o.png", LABEL)):
        with pytest.raises(LabelerError) as info:
            call()
        assert str(missing) in str(info.value) and "no such file" in str(info.value)
    line = _error_line(_aigc("label", str(missing), str(tmp_path / "o.png"), *RECORD))
    assert line == f"aigc: error: {missing}: no such file"
    assert not (tmp_path / "o.png").exists()


# -- 3, 4. the batch summary: how to resume; no rate when nothing was done ------------------------------


def test_interrupted_batch_says_how_to_resume() -> None:
    """The summary of a batch stopped by Ctrl-C ends with how to resume (README: the same command picks up
    where it stopped); a finished one does not. (Checked on the summary itself: a real Ctrl-C landing
    mid-run is a race with a fast batch; ``tests/test_batch.py`` interrupts real runs.)"""
    from labeler.batch.summary import BatchSummary

    stopped = BatchSummary("label", done=3, skipped=0, counts={"ok": 3}, seconds=1.0, interrupted=True,
                           journal="j.jsonl")
    line = stopped.line()
    assert line.startswith("label interrupted after 3 done") and line.endswith(
        "; run the same command again to resume"), line
    finished = BatchSummary("label", done=3, skipped=0, counts={"ok": 3}, seconds=1.0, journal="j.jsonl")
    assert "resume" not in finished.line()


def test_a_batch_with_nothing_new_gives_no_rate(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.png", src / "p.png")
    args = ("batch", "label", str(src), str(dst), "--producer", PRODUCER, "--workers", "1", "--no-progress")
    first = _aigc(*args)
    assert first.returncode == 0 and " files/s in " in first.stderr.splitlines()[-1], first.stderr
    again = _aigc(*args)
    last = again.stderr.splitlines()[-1]
    assert again.returncode == 0 and "0 done (nothing new), 1 skipped in " in last, again.stderr
    assert "files/s" not in last


# -- 5. doctor says why this ffmpeg ----------------------------------------------------------------------


def test_doctor_says_the_environment_variable_chose_the_program() -> None:
    bundled = imageio_ffmpeg.get_ffmpeg_exe()
    proc = _aigc("doctor", env={"AIGC_FFMPEG": "bundled"})
    line = next(x for x in proc.stdout.splitlines() if x.startswith("ffmpeg: "))
    assert line.endswith(f"at {bundled} (from imageio-ffmpeg, chosen by AIGC_FFMPEG=bundled)"), line
    proc = _aigc("doctor", env={"AIGC_FFMPEG": bundled})
    line = next(x for x in proc.stdout.splitlines() if x.startswith("ffmpeg: "))
    assert line.endswith(f"at {bundled} (from AIGC_FFMPEG={bundled})"), line


# -- 6. aigc label --help ---------------------------------------------------------------------------------


def test_label_help_explains_the_method_the_re_encode_and_fits_78_columns() -> None:
    proc = _aigc("label", "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "--watermark-method [dct|dwt] Image watermark domain: dct" in text
    assert "the watermark and visible layers re-encode it once" in text
    assert "Where the visible label goes: bottom-right, bottom-left" in text
    too_wide = [line for line in proc.stdout.splitlines() if len(line) > 78]
    assert too_wide == []


# -- 7. a misnamed input ----------------------------------------------------------------------------------


def test_a_jpeg_named_png_is_told_its_own_name_is_the_wrong_one(tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    shutil.copy(SAMPLES / "photo.jpg", fake)
    words = ("the input's own extension '.png' does not fit its content (jpeg); use '.jpg' for it and its "
             "output: labeling never converts formats")
    with pytest.raises(InvalidArgument) as info:
        label_file(fake, tmp_path / "fake.l.png", LABEL)
    assert str(info.value) == words
    assert _error_line(_aigc("label", str(fake), str(tmp_path / "fake.l.png"), *RECORD)) == \
        f"aigc: error: {fake}: {words}"
    # a rightly named JPEG keeps the plain words (only the output's name is wrong there)
    with pytest.raises(InvalidArgument, match=r"output extension '\.png' does not fit the input's format"):
        label_file(SAMPLES / "photo.jpg", tmp_path / "photo.l.png", LABEL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.png"]


# -- 8. verify's summary for a video read that stopped part-way -----------------------------------------


def test_a_video_read_stopped_part_way_is_not_called_undecided(tmp_path: Path) -> None:
    whole = run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=256x192:rate=25:duration=1", "-c:v", "ffv1",
                       tmp_path / "plain.mkv")
    data = whole.read_bytes()
    cut = tmp_path / "plain_cut.mkv"
    cut.write_bytes(data[:int(len(data) * 0.88)])
    key = tmp_path / "k.key"
    assert _aigc("keygen", str(key)).returncode == 0
    proc = _aigc("verify", str(cut), "--key-file", str(key), "--layers", "watermark")
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.splitlines()[0]
    assert "watermark not decided" not in summary
    assert "watermark not found in the " in summary, summary
    assert " frames read (the video's frames stopped after frame " in summary, summary
    assert "examined only in part" in proc.stdout  # the warning line is kept
