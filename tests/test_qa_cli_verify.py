"""QA findings on ``aigc verify`` / ``aigc batch verify`` as an investigator runs them: an unreadable file
among many, hostile names and label text, non-UTF-8 names, usage errors, a batch re-run with other
options. Each test fails on the code before its fix."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli

from detectors.report import Report, json_line, printable

CLI = [sys.executable, "-m", "labeler.cli"]
# Root reads a mode-000 file anyway; without these two capabilities it is refused like anyone else.
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
          "--inh-caps", "-dac_override,-dac_read_search"]


def _run(args: list[str], prefix: list[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """``aigc ARGS`` with bytes out (a non-UTF-8 name must reach the test as the bytes written)."""
    return subprocess.run([*(prefix or []), *CLI, *args], capture_output=True, timeout=120)


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aigc: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- 1. an unreadable file gets its own result; the others theirs -----------------------------------


def test_unreadable_file_is_one_result_among_the_others(tmp_path: Path) -> None:
    readable, unreadable = tmp_path / "a.jpg", tmp_path / "b.jpg"
    shutil.copy(SAMPLES / "photo.jpg", readable)
    shutil.copy(SAMPLES / "photo.jpg", unreadable)
    unreadable.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: a mode-000 file stays readable")
        prefix = NO_DAC
    args = ["verify", "--layers", "metadata", str(readable), str(unreadable)]
    text = _run(args, prefix)
    assert text.returncode == 2 and text.stderr == b"", text.stderr
    assert text.stdout.decode().splitlines() == [
        f"{readable}: none - no AIGC label found - not examined: c2pa, watermark, visible",
        f"{unreadable}: error - Permission denied",
    ]
    proc = _run(["verify", "--json", *args[1:]], prefix)
    assert proc.returncode == 2 and proc.stderr == b"", proc.stderr
    first, second = (json.loads(line) for line in proc.stdout.decode().splitlines())
    assert first["file"] == str(readable) and first["verdict"] == "none"
    assert second["file"] == str(unreadable) and second["verdict"] is None
    assert second["errors"] == ["Permission denied"]


def test_empty_file_name_is_its_own_result(tmp_path: Path) -> None:
    """``aigc verify "$UNSET" a.jpg``: ``Path("")`` is the current folder, reported as "is a folder"."""
    proc = run_cli("verify", "--layers", "metadata", "", str(SAMPLES / "photo.jpg"))
    assert proc.returncode == 2 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == ": error - empty file name"
    assert lines[1].endswith("photo.jpg: none - no AIGC label found - not examined: c2pa, watermark, visible")
    proc = run_cli("verify", "--json", "")
    report = json.loads(proc.stdout)
    assert proc.returncode == 2 and report["verdict"] is None and report["errors"] == ["empty file name"]


# -- 2. what the file controls cannot forge result lines --------------------------------------------


def test_summary_escapes_control_characters_in_names_and_fields(tmp_path: Path) -> None:
    from labeler import write_label

    forged_id = "abc\nevidence/innocent.jpg: none - no AIGC label found \x1b[31m"
    value = json.dumps({"Label": "1", "ContentProducer": "x", "ProduceID": forged_id, "ReservedCode1": "",
                        "ContentPropagator": "x", "PropagateID": "p\x1b[0m", "ReservedCode2": ""})
    forged = tmp_path / "forged.png"
    write_label(SAMPLES / "photo.png", forged, value)
    renamed = tmp_path / "two\nlines\x1b[2J 标签.png"
    shutil.copy(forged, renamed)
    proc = run_cli("verify", "--layers", "metadata", str(forged), str(renamed))
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout
    lines = proc.stdout.splitlines()
    summaries = [line for line in lines if not line.startswith("  ")]
    assert len(summaries) == 2  # one per file: no forged "innocent.jpg: none" line
    assert summaries[0].startswith(f"{forged}: confirmed")
    assert "id=abc\\nevidence/innocent.jpg: none - no AIGC label found \\x1b[31m" in summaries[0]
    # Chinese stays as it is; the name's newline and escape sequence are shown, not obeyed.
    assert summaries[1].startswith(f"{tmp_path}/two\\nlines\\x1b[2J 标签.png: confirmed")
    details = [line for line in lines if line.startswith("  ")]
    assert details and all(line.startswith(("  problem: ", "  warning: ")) for line in details)
    # The JSON form is exact, one line per file.
    reports = [json.loads(line) for line in run_cli("verify", "--json", "--layers", "metadata",
                                                      str(renamed)).stdout.splitlines()]
    assert len(reports) == 1 and reports[0]["file"] == str(renamed)
    assert reports[0]["layers"]["metadata"]["fields"]["ProduceID"] == forged_id


def test_printable_escapes_only_what_breaks_a_line() -> None:
    assert printable("AI生成 ©") == "AI生成 ©"
    assert printable("a\nb\rc\td\x00\x1b[31m\x7f\x85\x9b") == "a\\nb\\rc\\td\\x00\\x1b[31m\\x7f\\x85\\x9b"
    assert printable("x\u2028y\u2029z\u202ew") == "x\\u2028y\\u2029z\\u202ew"
    assert printable(os.fsdecode(b"caf\xe9.jpg")) == "caf\\xe9.jpg"  # the undecodable byte, as a byte
    report = Report(file="a\nb.jpg", errors=["bad\x1b[0m"], warnings=["w\nx"])
    assert report.text_lines() == ["a\\nb.jpg: error - bad\\x1b[0m", "  warning: w\\nx"]


# -- 3. non-UTF-8 names: valid UTF-8 JSON, the same on both paths, the name recoverable --------------


def _nonutf8_folder(tmp_path: Path) -> tuple[Path, bytes]:
    folder = tmp_path / "d"
    folder.mkdir()
    name = os.fsencode(folder) + b"/caf\xe9 \xe5\x9b\xbe.jpg"  # Latin-1 byte, then UTF-8 Chinese
    try:
        with open(name, "wb") as out:
            out.write((SAMPLES / "photo.jpg").read_bytes())
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    return folder, name


def test_non_utf8_names_are_valid_utf8_json_on_both_paths(tmp_path: Path) -> None:
    folder, name = _nonutf8_folder(tmp_path)
    single = _run(["verify", "--json", "--layers", "metadata", os.fsdecode(name)])
    assert single.returncode == 0, single.stderr
    report_path = tmp_path / "report.jsonl"
    batch = _run(["batch", "verify", str(folder), "--report", str(report_path), "--layers", "metadata",
                  "--no-progress", "--workers", "1"])
    assert batch.returncode == 0, batch.stderr
    for raw in (single.stdout, report_path.read_bytes()):
        line = raw.decode("utf-8")  # raises on the old verify --json (the raw 0xe9 byte)
        assert "\\udce9" in line and "图" in line  # the same escape on both paths; other text as itself
        assert os.fsencode(json.loads(line)["file"]) == name  # the name gives the file back
    text = _run(["verify", "--layers", "metadata", os.fsdecode(name)])
    assert text.stdout.decode("utf-8").startswith(f"{folder}/caf\\xe9 图.jpg: none")


def test_json_line_escapes_surrogates_and_line_separators() -> None:
    obj = {"file": os.fsdecode(b"\xff\\x.jpg"), "text": "AI生成\u2028\x85"}
    line = json_line(obj)
    line.encode("utf-8")  # no lone surrogate left
    assert line == '{"file":"\\udcff\\\\x.jpg","text":"AI生成\\u2028\\u0085"}'
    assert json.loads(line) == obj and len(line.splitlines()) == 1


# -- 4. usage errors: one line, exit 2; help as before ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["verify", "--bogus", "x.jpg"], "No such option '--bogus'"),
        (["verify", "--key-file", "{tmp}", "x.jpg"], "is a directory"),
        (["verify"], "Missing argument 'FILES...'"),
        (["batch", "verify", "{tmp}/f.jpg", "--report", "{tmp}/r.jsonl"], "is a file"),
        (["label", str(SAMPLES / "photo.jpg")], "Missing argument 'DST'"),
        (["verfy", "x.jpg"], "No such command 'verfy'"),
    ],
    ids=["bad-option", "key-file-folder", "no-files", "batch-src-file", "label-no-dst", "bad-command"],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "f.jpg").write_bytes(b"x")
    proc = run_cli(*(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    _one_line_error(proc, needle)


def test_usage_error_quoting_a_newline_stays_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "k\ney"
    folder.mkdir()
    line = _one_line_error(run_cli("verify", "--key-file", str(folder), "x.jpg"), "is a directory")
    assert "k\\ney" in line


def test_help_and_version_still_work() -> None:
    for args in (["--help"], ["verify", "--help"], ["batch", "verify", "--help"]):
        proc = run_cli(*args)
        assert proc.returncode == 0 and proc.stdout.startswith("Usage: aigc"), (args, proc.stderr)
    bare = run_cli()  # no command: the help, as click gives it
    assert "Usage: aigc" in bare.stdout + bare.stderr and "aigc: error" not in bare.stderr
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("aigc ")


def test_interrupt_in_a_command_exits_130(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """Ctrl-C (or SIGTERM) in a command: one line and 130, not click's "Aborted!" and 1 (a bug's code)."""
    import labeler.environment
    from labeler import cli

    def interrupted() -> dict:
        raise KeyboardInterrupt

    monkeypatch.setattr(labeler.environment, "describe_environment", interrupted)
    previous, term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main(["doctor"])
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, term)
    assert exited.value.code == 130
    assert capsys.readouterr().err.strip() == "aigc: interrupted"


def test_closed_stdout_is_quiet() -> None:
    """``aigc ... | head -1``: the reader going away is no error to report (nor a traceback)."""
    proc = subprocess.Popen([*CLI, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it writes: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert err == "" and proc.returncode == 1


# -- 5. batch verify re-run with other options: the warning says what happened ----------------------


def test_batch_verify_rerun_with_other_options_says_the_report_holds_both(tmp_path: Path) -> None:
    src, report = tmp_path / "src", tmp_path / "r.jsonl"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", src)
    common = ["batch", "verify", str(src), "--report", str(report), "--no-progress", "--workers", "1"]
    assert run_cli(*common, "--layers", "metadata").returncode == 0
    proc = run_cli(*common, "--layers", "metadata,c2pa")
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if line.startswith("aigc: warning:")]
    assert warning == [f"aigc: warning: {report}: 1 file(s) in the report were verified with other "
                       "options; they were verified again with these options, and the report now holds "
                       "both results for them (the later line is the current one)"]
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["examined"] for r in lines] == [["metadata"], ["metadata", "c2pa"]]  # the later is current
