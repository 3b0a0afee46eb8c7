"""The retry middleware printed in docs/aiohttp.md, run as written against the real API."""

from __future__ import annotations

import email.utils
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aioentra.aiohttp import authenticated_session

from .conftest import TODO_SCOPE
from .support import FakeTokenSource, ProtectedApi, Tls

pytestmark = pytest.mark.anyio

DOC = Path(__file__).parents[2] / "docs" / "aiohttp.md"


def _docs_retry_middleware() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    [block] = [b for b in blocks if "async def retry_429_503" in b]
    code = block.split("\nsession = ")[0]  # the last line needs a provider
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["retry_429_503"]


async def test_docs_retry_middleware_retries_429_and_503_with_a_fresh_token_each_time(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    retry = _docs_retry_middleware()
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    api.fail_next(429, past)  # an HTTP date in the past: no wait
    api.fail_next(503, "0")
    async with authenticated_session(
        source,
        {api.origin: TODO_SCOPE},
        middlewares=[retry],
        connector=aiohttp.TCPConnector(ssl=tls.client_context()),
    ) as session:
        async with session.get(api.url("/items")) as response:
            assert response.status == 200
        api.fail_next(503, "0")
        async with session.post(api.url("/items"), data=b"x") as response:
            assert response.status == 503  # POST is not retried by the example
    assert api.statuses == [429, 503, 200, 503]
    assert None not in api.tokens
