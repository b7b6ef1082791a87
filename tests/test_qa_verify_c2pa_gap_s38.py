"""A container C2PA defines no manifest for (Matroska, WebM, Ogg, FLV) never gets the reason "C2PA not
examined": the manifest is absent by design there, and the report's own "not examined" list already
leaves C2PA out. Until this test, `verify --layers watermark,metadata` on a watermarked MKV said
"...found but no metadata label (stripped?); C2PA not examined", contradicting its own list.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import ffmpeg_exe, run_cli, seeded_key_file


@pytest.fixture(scope="module")
def marked_mkv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mkv")
    src, dst = folder / "src.mkv", folder / "marked.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=2",
                    "-c:v", "libx264", "-y", str(src)], check=True, capture_output=True, timeout=120)
    key = seeded_key_file(folder / "key.txt")
    run_cli("label", str(src), str(dst), "--producer", "acme", "--produce-id", "gap-1", "--layers",
            "watermark", "--key-file", str(key), check=True)
    return dst, key


@pytest.mark.parametrize("layers", ["watermark,metadata", "watermark", None])
def test_no_c2pa_gap_on_a_container_without_c2pa(marked_mkv, layers):
    dst, key = marked_mkv
    extra = ["--layers", layers] if layers else []
    proc = run_cli("verify", str(dst), "--key-file", str(key), "--json", *extra, check=True)
    report = json.loads(proc.stdout)
    assert report["verdict"] == "confirmed"
    assert "c2pa" not in report["examined"]
    assert not any("C2PA" in r for r in report["reasons"]), report["reasons"]
    text = run_cli("verify", str(dst), "--key-file", str(key), *extra, check=True).stdout
    assert "C2PA not examined" not in text
