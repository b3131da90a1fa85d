"""Media GETs honour byte ranges, so browsers can seek in <video> and Safari plays MP4."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient


@pytest.fixture
def video(client: TestClient) -> tuple[str, bytes]:
    body = client.post("/api/mv/generate_video", json={"prompt": "x", "duration": 1}).json()
    whole = client.get(body["video_url"])
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4"
    return body["video_url"], whole.content


@pytest.mark.parametrize(
    ("header", "status", "expect"),
    [
        ("bytes=0-99", 206, slice(0, 100)),
        ("bytes=100-", 206, slice(100, None)),
        ("bytes=-10", 206, slice(-10, None)),
        ("bytes=0-99999999", 206, slice(0, None)),
        ("bytes=99999999-", 416, None),
        ("bytes=50-10", 416, None),
        ("bytes=a-b", 416, None),
        ("bytes=-0", 416, None),
    ],
)
def test_range_requests(
    client: TestClient, video: tuple[str, bytes], header: str, status: int, expect: slice | None
) -> None:
    url, whole = video
    response = client.get(url, headers={"Range": header})
    assert response.status_code == status
    if expect is not None:
        assert response.content == whole[expect]
        part = whole[expect]
        start = len(whole) - len(part) if expect.start is None or expect.start < 0 else expect.start
        assert response.headers["content-range"] == f"bytes {start}-{start + len(part) - 1}/{len(whole)}"
    else:
        assert response.headers["content-range"] == f"bytes */{len(whole)}"
