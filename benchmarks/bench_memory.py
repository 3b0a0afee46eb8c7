"""Memory per cached token with 10,000 tokens: aioentra, azure-identity aio, msal.

Each contender caches 10,000 tokens for 10,000 scopes the way it does after 10,000
successful token requests, in a worker process under ``tracemalloc``; the figure is the
memory allocated per entry beyond the token and scope strings themselves (made before the
measurement starts, as a response's strings would be).

Run: ``python benchmarks/bench_memory.py`` (``--quick`` for a smoke run). Writes
``benchmarks/results/memory.md``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from typing import Any

from _common import (
    Contender,
    Context,
    Json,
    Section,
    Table,
    emulator,
    failure,
    fmt,
    fmt_ratio,
    identity_credential,
    median,
    msal_app,
    new_app,
    ok,
    ratio,
    run_alone,
    target_for,
)

API_URI = "api://bench-memory"


def _strings(count: int) -> tuple[list[str], list[str]]:
    scopes = [f"api://bench-memory-{i}/.default" for i in range(count)]
    tokens = [f"{i:09d}" + "x" * 891 for i in range(count)]  # 900 characters, like a real one
    return scopes, tokens


def _traced(measure: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        measure()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


# == worker side ===================================================================================


async def memory(target: Json, contender: str, count: int) -> Json:
    """Bytes allocated per cached token (``count`` of them) beyond its strings."""
    scopes, tokens = _strings(count)
    if contender == "floor":
        cache: dict[str, tuple[float, str]] = {}

        def fill_floor() -> None:
            deadline = time.monotonic() + 3600
            for scope, token in zip(scopes, tokens, strict=True):
                cache[scope] = (deadline, token)

        used = _traced(fill_floor)
    elif contender == "aioentra":
        used = await _aioentra(target, scopes, tokens)
    elif contender == "identity":
        async with identity_credential(target) as credential:
            client = credential._client
            store = client._get_cache()
            cache_id = client._get_cache_client_id()

            def fill_identity() -> None:
                now = int(time.time())
                for scope, token in zip(scopes, tokens, strict=True):
                    store.add(  # what its AadClient does with a token response
                        event={
                            "client_id": cache_id,
                            "response": {
                                "access_token": token,
                                "expires_in": 3599,
                                "token_type": "Bearer",
                            },
                            "scope": [scope],
                            "token_endpoint": target["token_endpoint"],
                        },
                        now=now,
                    )

            used = _traced(fill_identity)
    else:
        client = await asyncio.to_thread(msal_app, target)

        def fill_msal() -> None:
            now = int(time.time())
            for scope, token in zip(scopes, tokens, strict=True):
                client.token_cache.add(  # what msal does with a token response
                    {
                        "client_id": target["client_id"],
                        "scope": [scope],
                        "token_endpoint": target["token_endpoint"],
                        "response": {
                            "access_token": token,
                            "expires_in": 3599,
                            "token_type": "Bearer",
                        },
                    },
                    now=now,
                )

        try:
            used = _traced(fill_msal)
        finally:
            client.http_client.close()
    return {"bytes_per_token": used / count}


async def _aioentra(target: Json, scopes: list[str], tokens: list[str]) -> float:
    """Tokens through the provider's own fetch path (``get_token`` on a cold key), with the
    request itself answered in memory: what the provider keeps per key after a request."""
    from aioentra import ClientSecret, TokenProvider
    from aioentra._token import TokenResponse

    answers = dict(zip(scopes, tokens, strict=True))

    class InMemory(TokenProvider):
        """Answers the token request of a benchmark scope in memory, any other for real."""

        __slots__ = ()

        async def _acquire(
            self, scope: str, claims: str | None, tenant: str | None, deadline: float
        ) -> TokenResponse:
            if scope in answers:
                return TokenResponse(access_token=answers[scope], expires_in=3599)
            return await super()._acquire(scope, claims, tenant, deadline)

    provider = InMemory(
        ClientSecret(target["secret"]),
        tenant_id=target["tenant_id"],
        client_id=target["client_id"],
        authority=target["base_url"],
        ca_file=target["ca_file"],
    )
    async with provider:
        await provider.get_token(f"{API_URI}/.default")  # a real request starts the provider
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for scope in scopes:
                await provider.get_token(scope)
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()


# == parent side ===================================================================================

CONTENDERS = [
    Contender("floor: a dict of (deadline, token) tuples", "memory", {"contender": "floor"}),
    Contender("aioentra", "memory", {"contender": "aioentra"}, ours=True),
    Contender("azure-identity aio (its msal `TokenCache`)", "memory", {"contender": "identity"}),
    Contender("msal `ConfidentialClientApplication`", "memory", {"contender": "msal"}),
]


async def section(ctx: Context) -> Section:
    count = 2_000 if ctx.quick else 10_000
    rounds = 1 if ctx.quick else 3
    async with emulator() as emu, ctx.pool("bench_memory") as pool:
        api = emu.add_api(API_URI)
        target = target_for(emu, new_app(emu, api, "bench-memory"), f"{API_URI}/.default")
        samples = await pool.rounds(
            CONTENDERS, rounds, args={"target": target, "count": count}, timeout=300
        )
    values = {
        label: median([s["bytes_per_token"] for s in ok(runs)]) for label, runs in samples.items()
    }
    ours = values[CONTENDERS[1].label]
    rows = [
        [
            label,
            failure(runs) or fmt(values[label], 0),
            fmt(None if values[label] is None else values[label] * count / 2**20, 1),
            fmt_ratio(ratio(values[label], ours)),
        ]
        for label, runs in samples.items()
    ]
    table = Table(
        ["contender", "bytes per cached token", f"MiB for {count:,}", "÷ aioentra"],
        rows,
        title=f"{count:,} cached tokens (median of {rounds} run(s))",
    )
    method = (
        "Each run is a worker call: the token and scope strings (900-character tokens) are "
        "made first, then `tracemalloc` traces what storing them costs, after a `gc.collect()`. "
        "aioentra stores them through its own fetch path (`get_token` on each cold key, the "
        "token request answered in memory after one real request started the provider), so "
        "the figure is everything it keeps per key (the cell's slot, the token and its "
        "metadata, the key's counters). azure-identity and msal store them with "
        "`TokenCache.add`, which is what both do with a token response. aioentra caches a "
        "key until the provider closes; the others keep expired entries until they are "
        "overwritten."
    )
    return Section("memory", "6. Memory per cached token", method, [table])


SECTIONS = [section]

if __name__ == "__main__":
    sys.exit(run_alone(SECTIONS, __file__, __doc__))
