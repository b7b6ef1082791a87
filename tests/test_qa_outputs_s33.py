"""QA s33: user-named outputs that are not regular files (devices, FIFOs, links to them), batch journals
and reports that are not journals, key files written atomically, propagate's output extension and
``aigc serve --port 0``.

Every special file here is made under ``tmp_path``: a FIFO always, a character device only where mknod is
allowed there (the test is skipped otherwise). Nothing touches /dev.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import PRODUCER, SAMPLES, run_cli, seeded_key

from labeler.errors import LabelerError

LABEL = ("--producer", PRODUCER, "--produce-id", "qa-s33", "--layers", "metadata")


def _char_device(path: Path) -> Path:
    """A character device node (1, 3: what /dev/null is) at ``path``, inside the test's folder."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path


def _specials(tmp_path: Path, with_device: bool) -> dict[str, Path]:
    """Outputs that are not regular files: a FIFO, a link to it, and (when allowed) a device and a link
    to it. Returns name -> path."""
    out: dict[str, Path] = {}
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out["fifo"] = fifo
    (tmp_path / "link-to-fifo.jpg").symlink_to("fifo")
    out["link to a fifo"] = tmp_path / "link-to-fifo.jpg"
    if with_device:
        _char_device(tmp_path / "null")
        out["device"] = tmp_path / "null"
        (tmp_path / "link-to-device.jpg").symlink_to("null")
        out["link to a device"] = tmp_path / "link-to-device.jpg"
    return out


def _kind(path: Path) -> int:
    """The file type bits of what ``path`` is, itself (a link is a link)."""
    return stat.S_IFMT(os.lstat(path).st_mode)


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("aigc: error:"), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


# --- D1: label / propagate --overwrite onto a device, a FIFO or a link to one --------------------------


@pytest.mark.parametrize("with_device", [False, True], ids=["fifo", "device"])
def test_label_overwrite_refuses_outputs_that_are_not_regular_files(tmp_path, with_device):
    """``aigc label photo.jpg /dev/null --overwrite`` replaced /dev/null with a regular file: an existing
    output that is not a regular file (after following links) is refused, and left as it was."""
    for name, dst in _specials(tmp_path, with_device).items():
        before = _kind(dst)
        proc = run_cli("label", str(SAMPLES / "photo.jpg"), str(dst), "--overwrite", *LABEL)
        assert "not a regular file" in _one_line_error(proc), name
        assert _kind(dst) == before, f"{name} was replaced"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part") or p.name.startswith(".aigc-")]


def test_label_overwrite_through_a_link_to_a_regular_file_replaces_the_link(tmp_path):
    """What --overwrite has always done with a link to a regular file, kept: the link is replaced by the
    output; the file it pointed to is not written through."""
    target = tmp_path / "old.jpg"
    shutil.copyfile(SAMPLES / "photo.jpg", target)
    link = tmp_path / "out.jpg"
    link.symlink_to("old.jpg")
    run_cli("label", str(SAMPLES / "photo.jpg"), str(link), "--overwrite", *LABEL, check=True)
    assert not link.is_symlink() and link.is_file()
    assert target.read_bytes() == (SAMPLES / "photo.jpg").read_bytes()


def test_library_writers_refuse_a_fifo_as_the_output(tmp_path):
    """Every writer of a user-named output goes through the same check: label, propagate, write_label
    (check_output) and the plain atomic writers (write_image)."""
    import numpy as np

    from labeler import label
    from labeler.media.image_write import write_image
    from labeler.metadata import write_label
    from labeler.propagate import propagate_file
    from labeler.record import AIGCLabel

    fifo = tmp_path / "out.jpg"
    os.mkfifo(fifo)
    record = AIGCLabel(content_producer=PRODUCER, produce_id="qa-s33")
    calls = {
        "label": lambda: label(SAMPLES / "photo.jpg", record, dst=fifo, layers=["metadata"], overwrite=True),
        "propagate_file": lambda: propagate_file(SAMPLES / "photo.jpg", fifo, propagator=PRODUCER,
                                                 propagate_id="p1", declared_ai=True, overwrite=True),
        "write_label": lambda: write_label(SAMPLES / "photo.jpg", fifo, record.to_json()),
        "write_image": lambda: write_image(fifo, np.zeros((8, 8, 3), np.uint8), format="jpeg"),
    }
    for name, call in calls.items():
        with pytest.raises(LabelerError, match="not a regular file"):
            call()
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode), f"{name} replaced the FIFO"


# --- D2: a batch journal / report that is not one ----------------------------------------------------


def _src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(SAMPLES / "photo.jpg", src / "photo.jpg")
    shutil.copyfile(SAMPLES / "photo.png", src / "photo.png")
    return src


@pytest.mark.parametrize("content", [
    None,  # an input inside SRC: a JPEG
    b"my notes\nsecond line\n",
    b'{"some": "other json"}\n{"path": "a.png"}\n',
    b"no newline at all",
    b"[1, 2]\n",
], ids=["jpeg-in-src", "text", "other-json", "no-newline", "json-list"])
def test_batch_verify_refuses_a_report_that_is_not_one(tmp_path, content):
    """``aigc batch verify SRC --report FILE`` with FILE an input (or any file that is not a report) cut it
    after its last newline and appended a JSON line: now one line, exit 2, the file untouched."""
    src = _src(tmp_path)
    if content is None:
        report = src / "photo.jpg"
    else:
        report = tmp_path / "report.jsonl"
        report.write_bytes(content)
    before = report.read_bytes()
    proc = run_cli("batch", "verify", str(src), "--report", str(report), "--quick", "--workers", "1",
                   "--no-progress")
    assert "not a batch" in _one_line_error(proc)
    assert report.read_bytes() == before


def test_batch_label_refuses_a_journal_that_is_not_one(tmp_path):
    """``aigc batch label --journal FILE`` with FILE a JPEG: refused before DST is made, FILE untouched."""
    src = _src(tmp_path)
    journal = tmp_path / "picture.jpg"
    shutil.copyfile(SAMPLES / "photo.jpg", journal)
    proc = run_cli("batch", "label", str(src), str(tmp_path / "dst"), "--journal", str(journal), *LABEL,
                   "--workers", "1", "--no-progress")
    assert "not a batch" in _one_line_error(proc)
    assert journal.read_bytes() == (SAMPLES / "photo.jpg").read_bytes()
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("with_device", [False, True], ids=["fifo", "device"])
def test_batch_refuses_a_report_that_is_not_a_regular_file(tmp_path, with_device):
    """``--report /dev/stdout`` hung (it read the pipe) and a device was appended to: anything that is not a
    regular file is refused at once."""
    src = _src(tmp_path)
    for name, report in _specials(tmp_path, with_device).items():
        before = _kind(report)
        proc = subprocess.run(
            [sys.executable, "-m", "labeler.cli", "batch", "verify", str(src), "--report", str(report),
             "--quick", "--workers", "1", "--no-progress"],
            capture_output=True, text=True, timeout=20)  # the old code blocked on the FIFO
        assert "not a regular file" in _one_line_error(proc), name
        assert _kind(report) == before
        proc = subprocess.run(
            [sys.executable, "-m", "labeler.cli", "batch", "label", str(src), str(tmp_path / "dst"),
             "--journal", str(report), *LABEL, "--workers", "1", "--no-progress"],
            capture_output=True, text=True, timeout=20)
        assert "not a regular file" in _one_line_error(proc), name


def test_read_journal_refuses_a_fifo_without_blocking(tmp_path):
    from labeler.batch import read_journal

    fifo = tmp_path / "journal.jsonl"
    os.mkfifo(fifo)
    raised: list[BaseException] = []

    def read() -> None:
        try:
            read_journal(fifo)
        except BaseException as exc:  # noqa: BLE001 - checked below, in the test's thread
            raised.append(exc)

    # In a daemon thread: the old code blocked in open() for a writer that never comes.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(20)
    assert not reader.is_alive(), "read_journal blocked on a FIFO"
    assert len(raised) == 1 and isinstance(raised[0], LabelerError) and "not a regular file" in str(raised[0])


def test_batch_report_inside_src_is_kept_and_not_verified(tmp_path):
    """A report inside SRC is the batch's own file: it is never verified itself, and a second run (the
    report now non-empty, a journal of ours) resumes from it."""
    src = _src(tmp_path)
    report = src / "report.jsonl"
    args = ("batch", "verify", str(src), "--report", str(report), "--quick", "--workers", "1",
            "--no-progress")
    run_cli(*args, check=True)
    run_cli(*args, check=True)
    paths = [json.loads(line)["batch"]["path"] for line in report.read_text().splitlines()]
    assert sorted(paths) == ["photo.jpg", "photo.png"]


def test_resuming_a_journal_with_a_torn_first_line_still_works(tmp_path):
    """A journal whose only line was torn by a kill (no complete line yet) is still ours: resumed, the torn
    line cut off."""
    src = _src(tmp_path)
    report = tmp_path / "report.jsonl"
    report.write_bytes(b'{"schema":"aigc-verify/1","file":"src/pho')
    run_cli("batch", "verify", str(src), "--report", str(report), "--quick", "--workers", "1",
            "--no-progress", check=True)
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(r["batch"]["path"] for r in lines) == ["photo.jpg", "photo.png"]


# --- D3: aigc keygen --overwrite --------------------------------------------------------------------


def test_keygen_overwrite_replaces_the_file_atomically(tmp_path):
    """The old key file was truncated and rewritten in place: a second name for it (a hard link, a backup
    tool's view) lost the old key. Now a new file is renamed into place, mode 0600."""
    from labeler.watermark.keyfile import read_key_file, write_key_file

    path = tmp_path / "wm.key"
    write_key_file(path, seeded_key("old"))
    os.link(path, tmp_path / "backup.key")
    new = write_key_file(path, seeded_key("new"), overwrite=True)
    assert read_key_file(path) == new == seeded_key("new")
    assert read_key_file(tmp_path / "backup.key") == seeded_key("old")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.key", "wm.key"]


def test_keygen_overwrite_refuses_a_symlink_and_special_files(tmp_path):
    """``aigc keygen --overwrite LINK`` wrote the key through the link (and made its target 0600); a FIFO
    blocked. Refused, one line, nothing changed."""
    target = tmp_path / "notes.txt"
    target.write_text("not a key\n")
    os.chmod(target, 0o644)
    link = tmp_path / "wm.key"
    link.symlink_to("notes.txt")
    proc = run_cli("keygen", str(link), "--overwrite")
    assert "symbolic link" in _one_line_error(proc)
    assert link.is_symlink() and target.read_text() == "not a key\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, "-m", "labeler.cli", "keygen", str(fifo), "--overwrite"],
                          capture_output=True, text=True, timeout=20)
    assert "not a regular file" in _one_line_error(proc)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.key", "notes.txt", "wm.key"]


def test_keygen_without_overwrite_still_refuses_an_existing_file(tmp_path):
    from labeler.watermark.keyfile import read_key_file, write_key_file

    path = tmp_path / "wm.key"
    write_key_file(path, seeded_key("old"))
    with pytest.raises(LabelerError, match="exists"):
        write_key_file(path)
    assert read_key_file(path) == seeded_key("old")


# --- propagate: the output's extension -------------------------------------------------------------


@pytest.mark.parametrize("name", ["x.mp4", "x.wav", "x.png"])
def test_propagate_refuses_an_output_extension_of_another_format(tmp_path, name):
    """A JPEG was written as x.mp4, x.wav or x.png; propagate refuses as label does."""
    dst = tmp_path / name
    proc = run_cli("propagate", str(SAMPLES / "photo.jpg"), str(dst), "--propagator", PRODUCER,
                   "--propagate-id", "p1", "--declared-ai")
    assert "does not fit the input's format (jpeg)" in _one_line_error(proc)
    assert list(tmp_path.iterdir()) == []


# --- aigc serve --port 0 ----------------------------------------------------------------------------


def test_check_port_zero_checks_the_address_and_gives_the_port():
    """``--port 0`` skipped the address check (a bad --host was uvicorn's log and exit 3); it is checked,
    and the port the system picked is returned for the banner and uvicorn."""
    pytest.importorskip("uvicorn")
    from labeler.server.run import check_port

    with pytest.raises(LabelerError, match="cannot listen on"):
        check_port("192.0.2.1", 0)  # TEST-NET-1: not an address of this machine
    port = check_port("127.0.0.1", 0)
    assert isinstance(port, int) and 0 < port < 65536
    with socket.socket() as sock:  # free again: uvicorn binds it next
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_serve_port_zero_with_a_bad_host_is_one_line_exit_2():
    pytest.importorskip("uvicorn")
    proc = run_cli("serve", "--host", "192.0.2.1", "--port", "0")
    assert "cannot listen on 192.0.2.1" in _one_line_error(proc)


def test_serve_port_zero_banner_shows_the_port_it_listens_on():
    """The banner said ``http://127.0.0.1:0/``; it names the port the system picked, where the server
    answers."""
    pytest.importorskip("uvicorn")
    import re
    import selectors
    import time
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "labeler.cli", "serve", "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stderr, selectors.EVENT_READ)
            assert sel.select(timeout=60), "no banner"
            banner = proc.stderr.readline()
        match = re.match(r"aigc serve: http://127\.0\.0\.1:(\d+)/ ", banner)
        assert match and int(match.group(1)) != 0, banner
        url = f"http://127.0.0.1:{match.group(1)}/v1/health"
        for _ in range(120):  # uvicorn starts after the banner
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "the server exited"
                time.sleep(0.25)
        else:
            pytest.fail(f"nothing answered at {url}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def test_keys_init_overwrite_does_not_write_a_private_key_through_a_link(tmp_path):
    """``aigc keys init DIR --overwrite`` truncated each file in place: a signer key path that was a
    symbolic link had the new private key written into the file it pointed to (made 0600)."""
    from labeler.provenance.pki import init_test_pki, pki_paths

    pki = tmp_path / "pki"
    init_test_pki(pki)
    elsewhere = tmp_path / "notes.txt"
    elsewhere.write_text("someone's notes\n")
    os.chmod(elsewhere, 0o644)
    key = pki_paths(pki).signer_key
    key.unlink()
    key.symlink_to(elsewhere)
    with pytest.raises(LabelerError, match="symbolic link"):
        init_test_pki(pki, overwrite=True)
    assert elsewhere.read_text() == "someone's notes\n" and stat.S_IMODE(os.stat(elsewhere).st_mode) == 0o644
    key.unlink()
    init_test_pki(pki, overwrite=True)  # a regular file is replaced whole, private
    assert b"PRIVATE KEY" in key.read_bytes() and stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_ffmpeg_writers_refuse_a_fifo_as_the_output(tmp_path):
    """``write_audio("f.mp3", ...)`` (an ffmpeg writer) replaced a FIFO with its output."""
    import numpy as np

    from labeler.media import write_audio

    fifo = tmp_path / "f.mp3"
    os.mkfifo(fifo)
    with pytest.raises(LabelerError, match="not a regular file"):
        write_audio(fifo, np.zeros((4410, 1), np.float32), 44100)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["f.mp3"]
