"""Which ffmpeg the project runs ($AIGC_FFMPEG, PATH, the wheel's), and `aigc doctor` / `aigc --version`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import pytest
from conftest import SAMPLES, tool_messages

from labeler import __version__
from labeler.errors import LabelerError
from labeler.media.ffmpeg import FFMPEG_ENV, ffmpeg_choice, ffmpeg_exe, probe

BUNDLED = imageio_ffmpeg.get_ffmpeg_exe()


def _stand_in(folder: Path, log: Path) -> Path:
    """An executable named ffmpeg that notes each call in LOG, then runs the wheel's ffmpeg."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / "ffmpeg"
    exe.write_text(f'#!/bin/sh\necho called >> "{log}"\nexec "{BUNDLED}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labeler.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_env_variable_names_the_program_and_every_run_uses_it(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    exe = _stand_in(tmp_path / "bin", log)
    monkeypatch.setenv(FFMPEG_ENV, str(exe))
    assert ffmpeg_choice().path == str(exe) and ffmpeg_choice().source == FFMPEG_ENV
    info = probe(SAMPLES / "clip.mp4")
    assert info.video and log.read_text().count("called") >= 1


def test_bundled_value_picks_the_wheel_binary_over_path(tmp_path, monkeypatch):
    _stand_in(tmp_path / "bin", tmp_path / "calls.log")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv(FFMPEG_ENV, "bundled")
    assert ffmpeg_choice().path == BUNDLED and ffmpeg_choice().source == "imageio-ffmpeg"


def test_path_comes_before_the_wheel_and_the_wheel_is_the_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv(FFMPEG_ENV, raising=False)
    exe = _stand_in(tmp_path / "bin", tmp_path / "calls.log")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert ffmpeg_choice().path == str(exe) and ffmpeg_choice().source == "PATH"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert ffmpeg_exe() == BUNDLED and ffmpeg_choice().source == "imageio-ffmpeg"


def test_a_name_that_is_no_program_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv(FFMPEG_ENV, str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(LabelerError, match="AIGC_FFMPEG=.*is not an executable program"):
        ffmpeg_exe()
    out = tmp_path / "out.mp4"
    args = ("label", str(SAMPLES / "clip.mp4"), str(out), "--producer", "p", "--produce-id", "x")
    proc = _cli(*args, "--layers", "visible", env={FFMPEG_ENV: str(tmp_path / "no-such-ffmpeg")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "AIGC_FFMPEG" in proc.stderr
    assert not (tmp_path / "out.mp4").exists()


def test_doctor_reports_the_program_its_encoders_and_c2pa(tmp_path):
    exe = _stand_in(tmp_path / "bin", tmp_path / "calls.log")
    proc = _cli("doctor", "--json", env={FFMPEG_ENV: str(exe)})
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)
    assert env["aigc"] == __version__ and env["problems"] == []
    assert env["ffmpeg"]["path"] == str(exe) and env["ffmpeg"]["source"] == FFMPEG_ENV
    assert env["ffmpeg"]["version"] and env["ffmpeg"]["encoders"]["libx264"] is True
    assert env["c2pa"]["c2pa-python"] and env["c2pa"]["c2pa-rs"]
    text = _cli("doctor", env={FFMPEG_ENV: "bundled"}).stdout
    # the choice and why (README): the wheel's program, chosen by the variable, not a fallback
    assert f"at {BUNDLED} (from imageio-ffmpeg, chosen by AIGC_FFMPEG=bundled)" in text
    assert "problems: none" in text


def test_doctor_fails_when_ffmpeg_is_missing(tmp_path):
    proc = _cli("doctor", env={FFMPEG_ENV: str(tmp_path / "gone")})
    assert proc.returncode == 2
    assert "problem: ffmpeg: AIGC_FFMPEG=" in proc.stdout and "Traceback" not in proc.stderr


def test_version_names_ffmpeg_and_c2pa():
    lines = _cli("--version", env={FFMPEG_ENV: "bundled"}).stdout.splitlines()
    assert lines[0] == f"aigc {__version__}"
    assert lines[1].startswith("ffmpeg: ") and BUNDLED in lines[1]
    assert lines[2].startswith("c2pa: c2pa-python ")


def test_tool_messages_compare_what_was_said_not_where():
    # The same warning from two processes on two files (ffmpeg 9 prints the decoder's address).
    a = "[aist#0:0/pcm_s16le @ 0x55f1b5bc25c0] Guessed Channel Layout: mono\n"
    b = "[aist#0:0/pcm_s16le @ 0x7f00aa11] Guessed Channel Layout: mono\n"
    assert tool_messages(a) == tool_messages(b) == ["[aist#0:0/pcm_s16le] Guessed Channel Layout: mono"]
    on_a = tool_messages("x: /tmp/a.wav: bad\n", "/tmp/a.wav")
    assert on_a == tool_messages("x: /tmp/b.wav: bad", "/tmp/b.wav") == ["x: FILE: bad"]
    assert tool_messages(a) != tool_messages("[aist#0:0/pcm_s16le @ 0x1] Guessed Channel Layout: stereo")


def test_the_command_runs_numpy_with_one_blas_thread_unless_the_user_says_otherwise():
    """`aigc` sets OPENBLAS_NUM_THREADS / MKL_NUM_THREADS to 1 before NumPy loads (extra BLAS threads only
    spin on our small products: a WAV's watermark verify took 1.5x the CPU with them), in its own process
    and so in batch workers; a user's own value is kept."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-m", "labeler.cli", "doctor", "--json"], capture_output=True,
                          text=True, timeout=120, env={**clean, FFMPEG_ENV: "bundled"})
    assert json.loads(proc.stdout)["threads"] == {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    mine = _cli("doctor", "--json", env={FFMPEG_ENV: "bundled", "OPENBLAS_NUM_THREADS": "3"})
    assert json.loads(mine.stdout)["threads"]["OPENBLAS_NUM_THREADS"] == "3"
    assert "threads: OPENBLAS_NUM_THREADS=" in _cli("doctor", env={FFMPEG_ENV: "bundled"}).stdout
    # the variables only reach NumPy if it is not loaded before main() runs
    loaded = subprocess.run([sys.executable, "-c", "import sys, labeler.cli; print('numpy' in sys.modules)"],
                            capture_output=True, text=True, timeout=60, env=clean)
    assert loaded.stdout.strip() == "False", loaded.stderr
