"""QA findings on the ``aigc`` commands as a script author drives them: JSON that is valid UTF-8 on every
command, one line per result on every command, an empty path argument (an unset shell variable), and
``--quick`` meaning one thing on ``verify``, ``--layers quick`` and ``batch verify``. Each test fails on
the code before its fix."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, seeded_key_file

CLI = [sys.executable, "-m", "labeler.cli"]
RECORD = ["--producer", PRODUCER, "--produce-id", "s33-1"]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``aigc ARGS`` in ``cwd``, bytes out (a non-UTF-8 name must reach the test as the bytes written)."""
    return subprocess.run([*CLI, *args], capture_output=True, timeout=120, cwd=cwd,
                          env={**os.environ, **(env or {})})


def _usage_error(proc: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aigc: error: "), lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- 1. label / propagate / doctor --json: valid UTF-8 JSON, as verify --json ------------------------


def test_label_and_propagate_json_are_valid_utf8_for_undecodable_names(tmp_path: Path) -> None:
    labeled = os.fsdecode(b"caf\xe9.jpg")  # a name from an old archive, not valid UTF-8
    proc = _run(["label", str(SAMPLES / "photo.jpg"), labeled, *RECORD, "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.decode("utf-8"))  # raised UnicodeDecodeError: a raw 0xE9 byte
    assert os.fsencode(result["dst"]) == b"caf\xe9.jpg"

    published = os.fsdecode(b"pub\xe9.jpg")
    proc = _run(["propagate", labeled, published, "--propagator", "platformX", "--propagate-id", "p-1",
                 "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.decode("utf-8"))
    assert (os.fsencode(result["src"]), os.fsencode(result["dst"])) == (b"caf\xe9.jpg", b"pub\xe9.jpg")


def test_doctor_json_is_valid_utf8_for_an_undecodable_ffmpeg_path(tmp_path: Path) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("no ffmpeg on PATH to link to")
    link = tmp_path / os.fsdecode(b"ff\xe9mpeg")
    link.symlink_to(ffmpeg)
    proc = _run(["doctor", "--json"], tmp_path, {"AIGC_FFMPEG": str(link)})
    report = json.loads(proc.stdout.decode("utf-8"))  # raised UnicodeDecodeError: a raw 0xE9 byte
    assert os.fsencode(report["ffmpeg"]["path"]) == os.fsencode(link)


# -- 2. one result line per file on every command -------------------------------------------------


def test_propagate_and_keygen_print_one_line_whatever_the_names(tmp_path: Path) -> None:
    src = tmp_path / "in\nput.jpg"
    shutil.copy(SAMPLES / "photo.jpg", src)
    proc = _run(["propagate", src.name, "out\nput.jpg", "--propagator", "platformX", "--propagate-id", "p-1",
                 "--declared-ai"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == ["out\\nput.jpg: labeled (input verdict none)"]

    proc = _run(["keygen", "k\x1b[31m\ney"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("k\\x1b[31m\\ney: watermark key "), lines


# -- 3. an empty path (an unset shell variable) is refused, never taken as the current folder -------


def test_empty_path_arguments_are_refused(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "photo.jpg", tmp_path / "photo.jpg")
    before = sorted(p.name for p in tmp_path.iterdir())
    (tmp_path / "out").mkdir()
    calls = [
        ["batch", "verify", "", "--report", "report.jsonl", "--no-progress"],  # verified the whole cwd
        ["batch", "label", "", "out", *RECORD, "--no-progress"],  # labeled the whole cwd into out/
        ["keys", "init", ""],  # wrote a test PKI into the cwd
        ["keygen", ""],  # ". exists; refusing to overwrite a key"
        ["label", "photo.jpg", "", *RECORD],  # "output . is a folder"
        ["label", "", "x.jpg", *RECORD],  # ": not a regular file"
        ["verify", "photo.jpg", "--key-file", ""],  # "key file .: Is a directory"
    ]
    for args in calls:
        _usage_error(_run(args, tmp_path), "empty path")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, "out"])
    assert list((tmp_path / "out").iterdir()) == []


def test_a_dash_is_refused_not_made_a_file_named_dash(tmp_path: Path) -> None:
    # no command streams: `aigc label in.jpg - | upload` wrote ./- and piped the "labeled" line on
    shutil.copy(SAMPLES / "photo.jpg", tmp_path / "photo.jpg")
    for args in (["label", "photo.jpg", "-", *RECORD], ["keygen", "-"], ["keys", "init", "-"],
                 ["propagate", "photo.jpg", "-", "--propagator", "platformX", "--propagate-id", "p-1"]):
        _usage_error(_run(args, tmp_path), "'-' (standard input or output) is not supported")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.jpg"]
    proc = _run(["label", "photo.jpg", "./-", *RECORD], tmp_path)  # a file named - is still possible
    assert proc.returncode == 0, proc.stderr


# -- 4. --quick is one thing: verify --quick, verify --layers quick, batch verify --quick ----------


def test_layers_quick_is_the_quick_flag(tmp_path: Path) -> None:
    photo = str(SAMPLES / "photo.jpg")
    quick = _run(["verify", "--json", "--quick", photo], tmp_path)
    named = _run(["verify", "--json", "--layers", "quick", photo], tmp_path)  # "needs --key-file"
    assert (quick.returncode, named.returncode) == (0, 0), named.stderr
    examined = json.loads(named.stdout)["examined"]
    assert examined == json.loads(quick.stdout)["examined"] == ["metadata", "c2pa"]


def test_batch_verify_quick_reads_the_watermark_as_verify_quick_does(tmp_path: Path) -> None:
    from PIL import Image

    key = seeded_key_file(tmp_path / "wm.key", "s33-quick")
    marked = tmp_path / "marked.png"
    _run(["label", str(SAMPLES / "photo.png"), str(marked), *RECORD, "--layers", "watermark",
          "--key-file", str(key)], tmp_path).check_returncode()
    files = tmp_path / "files"
    files.mkdir()
    with Image.open(marked) as image:  # a rescaled copy: only the full search (not --quick) finds it
        image.resize((image.width * 3 // 4, image.height * 3 // 4)).save(files / "scaled.png")
    one = _run(["verify", "--json", "--quick", "--key-file", str(key), str(files / "scaled.png")], tmp_path)
    assert one.returncode == 0, one.stderr
    report = tmp_path / "report.jsonl"
    batch = _run(["batch", "verify", str(files), "--quick", "--key-file", str(key), "--report", str(report),
                  "--no-progress", "--workers", "1"], tmp_path)
    assert batch.returncode == 0, batch.stderr
    single, batched = json.loads(one.stdout), json.loads(report.read_text().splitlines()[0])
    assert batched["layers"]["watermark"] == single["layers"]["watermark"]
    assert (batched["verdict"], batched["examined"]) == (single["verdict"], single["examined"])


# -- 5. an output encoding that is not UTF-8 (a Windows code page, a Latin-1 locale) -----------------


def test_verify_and_label_survive_an_output_encoding_without_chinese(tmp_path: Path) -> None:
    shown = tmp_path / "shown.png"  # the default visible wording, AI生成, is in every report of it
    env = {"PYTHONIOENCODING": "latin-1"}
    proc = _run(["label", str(SAMPLES / "photo.png"), str(shown), *RECORD, "--layers", "visible,metadata"],
                tmp_path, env)
    assert proc.returncode == 0, proc.stderr  # was 1: "internal error (UnicodeEncodeError ...)"
    assert proc.stderr == b""
    assert proc.stdout.decode("latin-1").startswith(f"{shown}: labeled png - visible 'AI\\u751f\\u6210' at")
    proc = _run(["verify", "--json", str(shown)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    # docs/report.md: the JSON report is UTF-8 whatever the locale
    assert json.loads(proc.stdout.decode("utf-8"))["layers"]["visible"]["text"] == "AI生成"
    proc = _run(["label", str(SAMPLES / "photo.png"), str(tmp_path / "again.png"), *RECORD, "--json",
                 "--layers", "visible,metadata"], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.decode("utf-8"))["layers"]["visible"]["text"] == "AI生成"
    proc = _run(["verify", str(shown)], tmp_path, env)
    assert proc.returncode == 0, proc.stderr
    assert "visible 'AI\\u751f\\u6210' at bottom-right" in proc.stdout.decode("latin-1")
