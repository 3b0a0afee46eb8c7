"""The retry loop printed in docs/httpx.md, run as written against the real API."""

from __future__ import annotations

import email.utils
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from aioentra.httpx import authenticated_client
from middleware.support import FakeTokenSource, ProtectedApi, Tls

from .conftest import TODO_SCOPE

pytestmark = pytest.mark.anyio

DOC = Path(__file__).parents[2] / "docs" / "httpx.md"


def _docs_send_with_retry() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    [block] = [b for b in blocks if "async def send_with_retry" in b]
    code = block.split("\nresponse = ")[0]  # the last line needs a client
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace["send_with_retry"]


async def test_docs_retry_loop_retries_429_and_503_with_a_token_each_time(
    tls: Tls, source: FakeTokenSource, api: ProtectedApi
) -> None:
    send_with_retry = _docs_send_with_retry()
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    api.fail_next(429, past)  # an HTTP date in the past: no wait
    api.fail_next(503, "0")
    async with authenticated_client(
        source, {api.origin: TODO_SCOPE}, verify=tls.client_context()
    ) as client:
        response = await send_with_retry(client, client.build_request("GET", api.url("/items")))
        assert response.status_code == 200
        api.fail_next(503, "0")
        request = client.build_request("POST", api.url("/items"), content=b"x")
        response = await send_with_retry(client, request)
        assert response.status_code == 503  # POST is not retried by the example
    assert api.statuses == [429, 503, 200, 503]
    assert None not in api.tokens
    assert isinstance(response, httpx.Response)
