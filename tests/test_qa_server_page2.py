"""Second QA pass of `aigc serve`: the OpenAPI document lists what the routes really answer (408, the
headers), `--timeout`'s help names the upload deadline, and the page (headless Chromium) says when it
cannot show an image format instead of a broken preview, and words a watermark's p-value to the nearest
power of ten."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from labeler import AIGCLabel, label
from labeler.cli import cli
from tests.conftest import PRODUCER, SAMPLES, aigc_serve


def test_openapi_lists_408_and_the_headers_the_routes_send() -> None:
    pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
    from labeler.server.config import MAX_FILES_PER_REQUEST
    from labeler.server.openapi import openapi_document

    paths = openapi_document()["paths"]
    verify, label_op = paths["/v1/verify"]["post"], paths["/v1/label"]["post"]
    # read_form answers 408 for an upload slower than --timeout, on both routes
    assert "408" in verify["responses"] and "408" in label_op["responses"]
    assert "Retry-After" in verify["responses"]["503"]["headers"]
    assert "Retry-After" in label_op["responses"]["503"]["headers"]
    assert "WWW-Authenticate" in label_op["responses"]["401"]["headers"]
    assert "X-AIGC-Visible-Boxes" in verify["responses"]["200"]["headers"]
    assert "Content-Disposition" in label_op["responses"]["200"]["headers"]
    # the labeled file's Content-Type is its format's (image/png, audio/mpeg...), not octet-stream
    assert list(label_op["responses"]["200"]["content"]) == ["*/*"]
    files = verify["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"]
    assert files["maxItems"] == MAX_FILES_PER_REQUEST


def test_timeout_help_names_the_upload_deadline() -> None:
    out = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200).output
    assert "408" in out and "504" in out


# --- the page, in headless Chromium (skipped, with one line, where chromium or selenium is missing) ---

@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from aigc_serve(tmp_path_factory)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory):
    """Headless Chromium as the browser tests drive it; skipped where it or selenium is missing."""
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        pytest.skip("chromium and chromedriver not installed (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium not installed (the test extra)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}", "--window-size=1000,2400"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def test_page_says_it_cannot_show_a_tiff_instead_of_a_broken_preview(page_server: str, chromium,
                                                                      tmp_path: Path) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def _card(driver, name: str):
        def done(d):
            return next((c for c in d.find_elements(By.CSS_SELECTOR, "li.card")
                         if c.get_attribute("data-name") == name and c.get_attribute("data-verdict")), False)
        return WebDriverWait(driver, 180).until(done)

    plain = tmp_path / "plain.tiff"
    Image.open(SAMPLES / "photo.png").convert("RGB").save(plain)
    tiff = tmp_path / "labeled-photo.tiff"
    tiff.write_bytes(label(plain.read_bytes(), AIGCLabel(PRODUCER, "page2-tiff"), layers="visible,metadata"))
    chromium.get(page_server + "/")
    chromium.find_element(By.ID, "file-input").send_keys(str(tiff))
    card = _card(chromium, tiff.name)
    assert card.get_attribute("data-verdict") == "confirmed", card.text
    # Chromium decodes no TIFF: the card says so (with the box's numbers), no broken image is shown
    WebDriverWait(chromium, 30).until(lambda d: "cannot show this image format" in card.text)
    assert "Red box" not in card.text
    assert not card.find_element(By.CSS_SELECTOR, ".preview").is_displayed()


def test_page_words_the_p_value_to_the_nearest_power_of_ten(page_server: str, chromium) -> None:
    chromium.get(page_server + "/")
    words = chromium.execute_script(
        "return [pValueWords(1.2e-90, true), pValueWords(3.4e-36, true), pValueWords(0.011, false),"
        " pValueWords(0.5, false)]")
    assert "about 1 in 10^90;" in words[0]  # 1 in 8.3e89, not "1 in 10^89"
    assert "about 1 in 10^35;" in words[1]  # 1 in 2.9e35
    assert "about 1 %;" in words[2]  # not "1 in 10^1" (1 in 91)
    assert "about 50 %;" in words[3]


def test_page_hint_names_every_format_the_server_reads() -> None:
    pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
    from labeler.server.routes_page import STATIC

    # the hint before /v1/health answers (index.html) and after (app.js)
    for page in (STATIC / "index.html", STATIC / "app.js"):
        text = page.read_text()
        for name in ("AVIF", "HEIC", "Ogg", "MKV", "WebM", "FLV", "AVI"):
            assert f", {name}" in text, (page.name, name)


def test_the_page_and_its_files_are_revalidated_not_kept_stale(tmp_path: Path) -> None:
    pytest.importorskip("starlette", reason="the serve extra (starlette) is not installed")
    pytest.importorskip("multipart", reason="the serve extra (python-multipart) is not installed")
    import tempfile
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from labeler.server import ServerConfig, create_app

    # Without Cache-Control a browser may reuse an old app.js (heuristic freshness from Last-Modified)
    # after the package was upgraded: seen in this QA pass with a kept Chromium profile.
    with TestClient(create_app(ServerConfig(temp_dir=tempfile.mkdtemp(dir=tmp_path)),
                               executor=_NoPool())) as client:
        for path in ("/", "/docs", "/static/app.js", "/static/style.css", "/static/docs.js"):
            response = client.get(path)
            assert response.status_code == 200 and response.headers["cache-control"] == "no-cache", path
            again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
            assert again.status_code in (200, 304), path


class _NoPool:
    """An executor the page's routes never use."""

    def submit(self, *args, **kwargs):  # pragma: no cover - not called
        raise AssertionError("no job expected")

    def shutdown(self, *args, **kwargs) -> None:
        pass
