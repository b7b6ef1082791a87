"""QA pass (session 34) on `aigc batch propagate`'s ID list: a list as a spreadsheet saves it (Excel's
"CSV UTF-8": byte-order mark, CRLF, quoted cells, trailing empty columns) and file names that start with
``#``, checked on real uploads labeled with `aigc label`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLES, run_cli

from labeler.batch import read_ids
from labeler.errors import LabelerError

PLATFORM = "001191110102MACQD9K64099999"


def _write(path: Path, rows: list[str]) -> Path:
    # Excel's "CSV UTF-8": a byte-order mark and CRLF line ends
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode("utf-8") + b"\r\n")
    return path


def test_trailing_empty_columns_are_ignored(tmp_path):
    """Excel pads every row to the sheet's widest one ("a.jpg,ID1,,"): still two cells of data."""
    ids = read_ids(_write(tmp_path / "ids.csv", ["path,id,,", "photo.jpg,ID1,,", '"a,b.png","ID2",,',
                                                 ",,,", "sub/c.wav,ID3"]))
    assert ids == {"photo.jpg": "ID1", "a,b.png": "ID2", "sub/c.wav": "ID3"}


@pytest.mark.parametrize("row", ["photo.jpg,ID1,extra", "photo.jpg,,ID1", "photo.jpg", "photo.jpg,,,"])
def test_rows_with_other_cells_are_still_refused(tmp_path, row):
    with pytest.raises(LabelerError, match="row 1: .*expected 2|row 1: empty"):
        read_ids(_write(tmp_path / "ids.csv", [row]))


def test_a_quoted_path_that_starts_with_hash_is_a_row(tmp_path):
    """A line that starts with # is a comment; a quoted cell that starts with # is a file name (spreadsheets
    quote it when asked), and a quoted path's second line is never taken for a comment."""
    ids = read_ids(_write(tmp_path / "ids.csv", ["# platform IDs, 2026-12", '"#1.wav",ID1', '  #note,x',
                                                 '"two', '#lines.jpg",ID2']))
    assert ids == {"#1.wav": "ID1", "two\r\n#lines.jpg": "ID2"}


def test_batch_with_an_excel_list(tmp_path):
    """End to end: labeled uploads, one named #..., an Excel list; each output is what `aigc propagate`
    writes for the same file and ID, byte for byte."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    names = {"photo.jpg": "photo.jpg", "#take 2.wav": "speech.wav"}
    for name, sample in names.items():
        run_cli("label", "--producer", "001191110102MACQD9K64012345", "--produce-id", "gen-1",
                str(SAMPLES / sample), str(src / name))
    ids = _write(tmp_path / "ids.csv", ["path,id,,", "photo.jpg,ID-1,,", '"#take 2.wav",ID-2,,'])
    out = run_cli("batch", "propagate", str(src), str(dst), "--propagator", PLATFORM, "--ids", str(ids),
                  "--no-progress", "--workers", "1")
    assert out.returncode == 0, out.stderr
    journal = {r["path"]: r for r in map(json.loads, (dst / ".aigc-journal.jsonl").read_text().splitlines())}
    for name, pid in (("photo.jpg", "ID-1"), ("#take 2.wav", "ID-2")):
        assert journal[name]["status"] == "ok" and journal[name]["propagate_id"] == pid
        single = tmp_path / ("single" + Path(name).suffix)
        assert run_cli("propagate", "--propagator", PLATFORM, "--propagate-id", pid, str(src / name),
                       str(single)).returncode == 0
        assert (dst / name).read_bytes() == single.read_bytes()
        single.unlink()
    shutil.rmtree(dst)


def test_a_list_not_in_utf8_is_named_in_the_failure(tmp_path):
    """Excel's plain "CSV" on a Chinese Windows is GBK: its rows for 照片.jpg cannot match the file, and the
    failure says why rather than only that the list lacks a row the user can see in it."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    shutil.copy(SAMPLES / "photo.jpg", src / "照片.jpg")
    ids = tmp_path / "ids.csv"
    ids.write_bytes("照片.jpg,ID-1\r\n".encode("gbk"))
    out = run_cli("batch", "propagate", str(src), str(dst), "--propagator", PLATFORM, "--ids", str(ids),
                  "--no-progress", "--workers", "1")
    assert out.returncode == 2
    record = json.loads((dst / ".aigc-journal.jsonl").read_text(encoding="utf-8"))
    assert "no PropagateID for 照片.jpg" in record["error"]
    assert "1 row(s) of the list are not UTF-8" in record["error"] and "CSV UTF-8" in record["error"]
    assert not (dst / "照片.jpg").exists()
