"""QA (s38): ``--max-megapixels`` holds a video's frames too, not only images.

A 200 kB MP4 of 8192 x 8192 frames (67 megapixels, under the toolkit's own 268-megapixel limit) was
decoded by ``/v1/verify`` (1.5 GB resident) and by ``/v1/label``'s pixel layers (3.6 GB, past the
timeout), though the server's limit is 50 megapixels. The sample clip (320 x 240) against a limit of
0.05 megapixels stands in for the bomb: the same check, without the memory.
"""

from __future__ import annotations

from pathlib import Path

import server_support
from server_support import make_client

from tests.conftest import PRODUCER, SAMPLES

pool, private_tmp = server_support.pool, server_support.private_tmp

KEY = bytes(range(32))
#: Below the clip's 320 x 240 = 76 800 pixels.
LIMIT = 50_000


def _clip() -> bytes:
    return Path(SAMPLES / "clip.mp4").read_bytes()


def test_verify_refuses_a_video_whose_frames_are_over_the_limit(pool: object) -> None:
    with make_client(pool, keys=(KEY,), max_pixels=LIMIT) as client:
        response = client.post("/v1/verify", files={"file": ("clip.mp4", _clip())})
    assert response.status_code == 422, response.text[:300]
    detail = response.json()["detail"]
    assert "320 x 240" in detail and "megapixels" in detail and "\n" not in detail


def test_label_pixel_layers_refuse_it_and_metadata_still_applies(pool: object) -> None:
    fields = {"producer": PRODUCER, "produce_id": "video-pixels-1"}
    with make_client(pool, keys=(KEY,), max_pixels=LIMIT) as client:
        refused = client.post("/v1/label", files={"file": ("clip.mp4", _clip())},
                              data={**fields, "layers": "watermark,metadata"})
        assert refused.status_code == 422, refused.text[:300]
        assert "320 x 240" in refused.json()["detail"]
        assert "only the metadata and c2pa layers apply" in refused.json()["detail"]
        # The metadata layer never decodes a frame: still labeled.
        kept = client.post("/v1/label", files={"file": ("clip.mp4", _clip())},
                           data={**fields, "layers": "metadata"})
        assert kept.status_code == 200, kept.text[:300]
        assert kept.headers["content-type"] == "video/mp4"


def test_propagate_refuses_it(pool: object) -> None:
    with make_client(pool, keys=(KEY,), max_pixels=LIMIT) as client:
        response = client.post("/v1/propagate", files={"file": ("clip.mp4", _clip())},
                               data={"propagator": PRODUCER, "propagate_id": "post-1"})
    assert response.status_code == 422, response.text[:300]
    assert "320 x 240" in response.json()["detail"]


def test_a_video_within_the_limit_is_verified(pool: object) -> None:
    with make_client(pool, keys=(KEY,), max_pixels=320 * 240) as client:
        response = client.post("/v1/verify", files={"file": ("clip.mp4", _clip())})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["medium"] == "video"
