"""QA fixes of the verification page, in headless Chromium: uploads are queued to the server's
--max-concurrent (a 503 is retried), and the visible label's height is worded as approximate."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeler import AIGCLabel, label
from tests.conftest import PRODUCER, SAMPLES, aigc_serve
from tests.test_qa_server_fixes import _stall

# Through the browser tests' module: it skips, with one line, where chromium or selenium is missing.
from tests.test_server_browser import (  # noqa: F401 - browser: that module's fixture
    By,
    WebDriverWait,
    _card,
    browser,
)


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`aigc serve` admitting a single request at a time, a stalled upload for at most 5 s."""
    yield from aigc_serve(tmp_path_factory, "--max-concurrent", "1", "--timeout", "5")


def test_more_files_than_the_server_admits_all_get_results(one_at_a_time: str, browser,  # noqa: F811
                                                           tmp_path: Path) -> None:
    labeled = label((SAMPLES / "photo.jpg").read_bytes(), AIGCLabel(PRODUCER, "queue-1"),
                    layers="visible,metadata")
    names = []
    for i in range(3):
        path = tmp_path / f"queued-{i}.jpg"
        path.write_bytes(labeled)
        names.append(path)
    browser.get(one_at_a_time + "/")
    browser.find_element(By.ID, "file-input").send_keys("\n".join(str(p) for p in names))
    for path in names:
        card = _card(browser, path.name)
        assert card.get_attribute("data-verdict") == "confirmed", card.text
        height = next(row.text for row in card.find_elements(By.CSS_SELECTOR, ".layer-visible tr")
                      if row.text.startswith("Height"))
        # The label was drawn at 5 %; verify reads it a little low: approximate, and no 5 % warning.
        assert height.startswith("Height about ") and "asks at least 5 %" not in height, height


def test_a_503_is_retried_after_retry_after(one_at_a_time: str, browser, tmp_path: Path) -> None:  # noqa: F811
    png = tmp_path / "plain.png"
    shutil.copyfile(SAMPLES / "photo.png", png)
    browser.get(one_at_a_time + "/")
    # Another client's stalled upload holds the only slot until --timeout: the page's first try is
    # answered 503 (Retry-After: 5), a later one is admitted.
    stalled = _stall(one_at_a_time)
    try:
        browser.find_element(By.ID, "file-input").send_keys(str(png))
        WebDriverWait(browser, 10).until(lambda d: "Server busy; retrying" in d.find_element(
            By.CSS_SELECTOR, f"li.card[data-name='{png.name}']").text)
        card = _card(browser, png.name)
    finally:
        stalled.close()
    assert card.get_attribute("data-verdict") == "none", card.text
