"""Which httpx request bodies the auth may send a second time."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aioentra.httpx import is_replayable

URL = "https://api.example/upload"


async def _chunks() -> AsyncIterator[bytes]:
    yield b"a"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"content": b"bytes"},
        {"content": "text"},
        {"json": {"a": 1}},
        {"data": {"a": "1"}},
        {"data": {"a": "1"}, "files": {"f": b"in memory"}},
        {"files": {"f": ("f.bin", io.BytesIO(b"in memory"), "application/octet-stream")}},
    ],
    ids=["none", "bytes", "str", "json", "form", "multipart-bytes", "multipart-BytesIO"],
)
def test_in_memory_bodies_are_replayable(kwargs: dict[str, object]) -> None:
    assert is_replayable(httpx.Request("POST", URL, **kwargs))  # type: ignore[arg-type]


def test_multipart_with_a_seekable_file_is_replayable(tmp_path: Path) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"x" * 10)
    with path.open("rb") as file:
        request = httpx.Request("POST", URL, files={"f": file})
        assert is_replayable(request)
    assert not is_replayable(request)  # closed since: it cannot be read again at all


def test_multipart_with_a_pipe_is_not_replayable() -> None:
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with open(read_fd, "rb") as pipe:
        assert not is_replayable(httpx.Request("POST", URL, files={"f": ("p", pipe)}))


@pytest.mark.anyio
async def test_async_iterables_are_not_until_read() -> None:
    generator = _chunks()
    request = httpx.Request("POST", URL, content=generator)
    assert not is_replayable(request)
    await request.aread()  # httpx buffers it into a ByteStream
    assert is_replayable(request)
