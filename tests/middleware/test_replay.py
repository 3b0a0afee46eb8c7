"""Which request bodies the middleware may send a second time."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncGenerator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import payload

from aioentra.aiohttp import is_replayable


async def _chunks() -> AsyncGenerator[bytes, None]:
    yield b"a"


def test_no_body_is_replayable() -> None:
    assert is_replayable(b"")


@pytest.mark.parametrize(
    "value",
    [b"bytes", "text", io.BytesIO(b"in memory"), io.StringIO("in memory")],
    ids=["bytes", "str", "BytesIO", "StringIO"],
)
def test_in_memory_bodies_are_replayable(value: object) -> None:
    assert is_replayable(payload.get_payload(value))


def test_json_and_forms_are_replayable() -> None:
    assert is_replayable(payload.JsonPayload({"a": 1}))
    form = aiohttp.FormData({"a": "1"})
    assert is_replayable(form())
    multipart = aiohttp.FormData()
    multipart.add_field("file", b"content", filename="f.bin")
    assert is_replayable(multipart())


def test_seekable_file_is_replayable(tmp_path: Path) -> None:
    path = tmp_path / "body.bin"
    path.write_bytes(b"x" * 10)
    with path.open("rb") as file:
        assert is_replayable(payload.get_payload(file))


@pytest.mark.anyio
async def test_async_iterables_are_not() -> None:
    generator = _chunks()
    assert not is_replayable(payload.get_payload(generator))
    await generator.aclose()


@pytest.mark.anyio
async def test_consumed_payload_is_not() -> None:
    read_fd, write_fd = os.pipe()
    os.close(write_fd)
    with open(read_fd, "rb") as pipe:  # noqa: ASYNC230 - never read here
        body = payload.get_payload(pipe)
        assert isinstance(body, payload.IOBasePayload)
        body._set_or_restore_start_position()  # what aiohttp does when it starts sending
        assert body.consumed
        assert not is_replayable(body)
