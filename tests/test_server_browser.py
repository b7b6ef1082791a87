"""The verification page end to end: `aigc serve` in a subprocess, a real headless Chromium via Selenium.

Uploads a labeled JPEG (visible + metadata), a labeled MP3 (rhythm cue + metadata) and an unlabeled
PNG through the page's file input, checks the verdicts, the box drawn over the JPEG's preview and the
cue's time, and saves a screenshot of each card (and of the page) under the test's tmp_path.
Skipped, with one line, where Debian's chromium and chromium-driver are not installed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeler import AIGCLabel, label
from tests.conftest import PRODUCER, SAMPLES, aigc_serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip("chromium and chromedriver not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)
pytest.importorskip("selenium", reason="selenium not installed (the test extra)")
pytest.importorskip("starlette", reason="the serve extra not installed")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

#: Where the screenshots also go when set (docs/ for the README's picture).
SHOTS_ENV = "AIGC_SCREENSHOT_DIR"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`aigc serve` on a free loopback port, verify only (so the page must say labeling is off)."""
    yield from aigc_serve(tmp_path_factory)


@pytest.fixture(scope="module")
def pki_and_key(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from labeler.provenance.pki import init_test_pki
    from labeler.watermark.keyfile import write_key_file

    folder = tmp_path_factory.mktemp("secrets")
    pki = init_test_pki(folder / "pki")
    write_key_file(folder / "wm.key")
    (folder / "token.txt").write_text("browser-test-token-0123456789\n")
    return {"key": folder / "wm.key", "chain": pki.chain, "signer_key": pki.signer_key,
            "anchors": pki.trust_anchor, "token": folder / "token.txt"}


@pytest.fixture(scope="module")
def full_server(tmp_path_factory: pytest.TempPathFactory, pki_and_key: dict[str, Path]) -> Iterator[str]:
    """`aigc serve` with a watermark key, a C2PA signer, trust anchors and a token."""
    s = pki_and_key
    yield from aigc_serve(tmp_path_factory, "--key-file", str(s["key"]), "--sign-cert", str(s["chain"]),
                      "--sign-key", str(s["signer_key"]), "--trust-anchors", str(s["anchors"]),
                      "--token-file", str(s["token"]))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1000,2400"):
        options.add_argument(arg)
    # The driver's path is given, so Selenium Manager never looks for (or downloads) one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    jpg = folder / "labeled-photo.jpg"
    jpg.write_bytes(label((SAMPLES / "photo.jpg").read_bytes(), AIGCLabel(PRODUCER, "browser-jpg-1"),
                          layers="visible,metadata"))
    mp3 = folder / "labeled-speech.mp3"
    mp3.write_bytes(label((SAMPLES / "speech.mp3").read_bytes(), AIGCLabel(PRODUCER, "browser-mp3-1"),
                          layers="visible,metadata"))
    png = folder / "plain-photo.png"
    shutil.copyfile(SAMPLES / "photo.png", png)
    return {"jpg": jpg, "mp3": mp3, "png": png}


@pytest.fixture(scope="module")
def labeled_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp4 = tmp_path_factory.mktemp("video") / "labeled-clip.mp4"
    mp4.write_bytes(label((SAMPLES / "clip.mp4").read_bytes(), AIGCLabel(PRODUCER, "browser-mp4-1"),
                          layers="visible,metadata"))
    return mp4


def _card(driver: webdriver.Chrome, name: str):
    return WebDriverWait(driver, 180).until(
        lambda d: next((c for c in d.find_elements(By.CSS_SELECTOR, "li.card")
                        if c.get_attribute("data-name") == name and c.get_attribute("data-verdict")), False))


def _shoot(element, path: Path) -> None:
    # Top of the card at the top of the window: a card below the fold would be cut off.
    element.parent.execute_script("arguments[0].scrollIntoView(true)", element)
    element.screenshot(str(path))
    assert path.stat().st_size > 1000
    if os.environ.get(SHOTS_ENV):
        shutil.copyfile(path, Path(os.environ[SHOTS_ENV]) / path.name)


def test_page_checks_three_files(server: str, browser: webdriver.Chrome, media: dict[str, Path],
                                 tmp_path: Path) -> None:
    browser.get(server + "/")
    info = WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "server-info") if d.find_element(By.ID, "server-info")
        .get_attribute("data-labeling") else False)
    assert info.get_attribute("data-labeling") == "disabled" and "disabled" in info.text

    upload = browser.find_element(By.ID, "file-input")
    upload.send_keys("\n".join(str(media[k]) for k in ("jpg", "mp3", "png")))

    jpg = _card(browser, media["jpg"].name)
    assert jpg.get_attribute("data-verdict") == "confirmed"
    assert "confirmed" in jpg.find_element(By.CSS_SELECTOR, ".card-verdict").text
    assert "browser-jpg-1" in jpg.text and "bottom-right" in jpg.text
    canvas = jpg.find_element(By.CSS_SELECTOR, ".preview canvas")
    WebDriverWait(browser, 30).until(lambda d: canvas.get_attribute("data-drawn") == "true")
    x, y, w, h = (int(v) for v in canvas.get_attribute("data-box").split(","))
    assert x > 500 and y > 500 and w > 50 and h > 20  # bottom-right of a 1000 x 872 photo
    # The stroke is on the canvas, on screen: a red pixel on the box's top edge, none at its centre.
    edge, middle = browser.execute_script(
        "const c = arguments[0], ctx = c.getContext('2d');"
        "const px = (x, y) => Array.from(ctx.getImageData(x, y, 1, 1).data);"
        "return [px(arguments[1] + arguments[3] / 2, arguments[2] + 1), px(arguments[1] + arguments[3] / 2,"
        " arguments[2] + arguments[4] / 2)];", canvas, x, y, w, h)
    assert edge[3] > 200 and edge[0] > 150 and edge[1] < 100, edge
    assert middle[3] == 0, middle
    assert canvas.size["width"] > 100 and canvas.is_displayed()
    # The canvas lies exactly over the image, so the box is drawn where the label is.
    canvas_rect, image_rect = browser.execute_script(
        "const r = (e) => { const b = e.getBoundingClientRect(); return [b.x, b.y, b.width, b.height]; };"
        "return [r(arguments[0]), r(arguments[0].previousElementSibling)];", canvas)
    assert canvas_rect == pytest.approx(image_rect, abs=1)
    _shoot(jpg, tmp_path / "card-labeled-jpeg.png")

    mp3 = _card(browser, media["mp3"].name)
    assert mp3.get_attribute("data-verdict") == "confirmed"
    assert "rhythm cue" in mp3.text and " s (start)" in mp3.text
    _shoot(mp3, tmp_path / "card-labeled-mp3.png")

    png = _card(browser, media["png"].name)
    assert png.get_attribute("data-verdict") == "none"
    assert "No AIGC metadata label found" in png.text and "No visible label found" in png.text
    assert not png.find_elements(By.CSS_SELECTOR, "canvas")
    _shoot(png, tmp_path / "card-unlabeled-png.png")

    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(tmp_path / "page.png"))
    if os.environ.get(SHOTS_ENV):
        shutil.copyfile(tmp_path / "page.png", Path(os.environ[SHOTS_ENV]) / "page.png")


def test_page_keyboard_and_phone_width(server: str, browser: webdriver.Chrome) -> None:
    browser.get(server + "/")
    body = browser.find_element(By.TAG_NAME, "body")
    for _ in range(5):  # the file picker is reached with the keyboard
        body.send_keys(Keys.TAB)
        if browser.execute_script("return document.activeElement.id") == "file-input":
            break
    assert browser.execute_script("return document.activeElement.id") == "file-input"
    assert browser.find_element(By.CSS_SELECTOR, "label[for=file-input]").is_displayed()
    browser.set_window_size(390, 844)
    try:
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll
    finally:
        browser.set_window_size(1000, 2400)


def test_field_names_are_not_broken_mid_word_at_phone_width(server: str, browser: webdriver.Chrome,
                                                          media: dict[str, Path]) -> None:
    # 375 CSS px (an iPhone SE/mini): headless Chromium's window does not go below 500, so the device
    # metrics are overridden. Two columns left "ContentPropagator" ~14 characters and it broke inside.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 375, "height": 1600, "deviceScaleFactor": 1, "mobile": True})
    try:
        browser.get(server + "/")
        browser.find_element(By.ID, "file-input").send_keys(str(media["jpg"]))
        card = _card(browser, media["jpg"].name)
        heads = card.find_elements(By.CSS_SELECTOR, "table.fields th")
        assert any(h.text == "ContentPropagator" for h in heads)
        for head in heads:  # one line each: no name (the longest is 23 characters) wraps at this width
            lines = browser.execute_script(
                "const s = getComputedStyle(arguments[0]);"
                "return arguments[0].getBoundingClientRect().height"
                " / parseFloat(s.lineHeight || s.fontSize);",
                head)
            assert lines < 1.6, (head.text, lines)
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_page_shows_an_error_card(server: str, browser: webdriver.Chrome, tmp_path: Path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"%PDF-1.7 this is not a picture")
    browser.get(server + "/")
    browser.find_element(By.ID, "file-input").send_keys(str(bad))
    card = _card(browser, "notes.jpg")
    assert card.get_attribute("data-verdict") == "error"
    assert "unsupported media type" in card.text and "unrecognised file content" in card.text


def test_page_video_box_on_the_first_frame(server: str, browser: webdriver.Chrome, labeled_video: Path,
                                          tmp_path: Path) -> None:
    browser.get(server + "/")
    browser.find_element(By.ID, "file-input").send_keys(str(labeled_video))
    card = _card(browser, labeled_video.name)
    assert card.get_attribute("data-verdict") == "confirmed" and "Seen until" in card.text
    canvas = card.find_element(By.CSS_SELECTOR, ".preview canvas")
    x, y, w, h = (int(v) for v in canvas.get_attribute("data-box").split(","))
    # Drawn once the browser has decoded the first frame; a browser without the codec says so instead.
    WebDriverWait(browser, 30).until(
        lambda d: canvas.get_attribute("data-drawn") == "true" or "cannot show the video" in card.text)
    if canvas.get_attribute("data-drawn") == "true":
        edge = browser.execute_script(
            "const ctx = arguments[0].getContext('2d');"
            "return Array.from(ctx.getImageData(arguments[1], arguments[2], 1, 1).data);",
            canvas, x + w // 2, y)  # the stroke is centred on the box's edge
        assert edge[3] > 200 and edge[0] > 150, edge
    _shoot(card, tmp_path / "card-labeled-mp4.png")


def test_page_every_layer_on_a_fully_configured_server(full_server: str, browser: webdriver.Chrome,
                                                      pki_and_key: dict[str, Path], tmp_path: Path) -> None:
    from labeler.provenance.c2pa_sign import local_signer
    from labeler.watermark.keyfile import read_key_file

    photo = tmp_path / "all-layers.jpg"
    photo.write_bytes(label((SAMPLES / "photo.jpg").read_bytes(), AIGCLabel(PRODUCER, "browser-all-1"),
                            layers="watermark,visible,metadata,c2pa", key=read_key_file(pki_and_key["key"]),
                            signer=local_signer(pki_and_key["chain"], pki_and_key["signer_key"])))
    browser.get(full_server + "/")
    info = WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "server-info") if d.find_element(By.ID, "server-info")
        .get_attribute("data-labeling") else False)
    assert info.get_attribute("data-labeling") == "enabled"
    assert "watermark, metadata, visible, c2pa" in info.text and "token is required" in info.text
    browser.find_element(By.ID, "file-input").send_keys(str(photo))
    card = _card(browser, photo.name)
    # "confirmed (high ...": a text space, not only a CSS gap, or a screen reader runs them together
    assert card.get_attribute("data-verdict") == "confirmed" and "confirmed (high confidence)" in card.text
    watermark = card.find_element(By.CSS_SELECTOR, ".layer-watermark").text
    assert "Matches the metadata ProduceID yes" in watermark and "about 1 in 10^" in watermark
    c2pa = card.find_element(By.CSS_SELECTOR, ".layer-c2pa").text
    assert "Trusted" in c2pa and "aigc-labeler test signer" in c2pa and "Declares AI generation yes" in c2pa
    WebDriverWait(browser, 30).until(
        lambda d: card.find_element(By.CSS_SELECTOR, ".preview canvas").get_attribute("data-drawn") == "true")
    _shoot(card, tmp_path / "card-all-layers.png")
