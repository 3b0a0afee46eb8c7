"""What the azure-core view of a provider costs per call, warm, next to the native call.

``provider.as_azure_credential()`` is the credential async Azure SDK clients get. Their
authentication policy calls it whenever it thinks its own copy of the token is due: the Key
Vault challenge policy on every request once a token has less than five minutes left (so on
every request with tokens shorter than that), azure-core's ``AsyncBearerTokenCredentialPolicy``
from the token's ``refresh_on`` until the credential hands back a newer token. Five arms, all
with a warm token from the local emulator:

* ``native``: ``await provider.get_token(scope)``, the floor;
* ``adapter get_token``: ``await credential.get_token(scope)``;
* ``adapter get_token_info``: ``await credential.get_token_info(scope)``;
* ``adapter get_token_info, Key Vault options``: with the options Key Vault's challenge policy
  passes (``{"tenant_id": <the provider's tenant>, "enable_cae": True}``);
* ``azure-identity get_token_info``: azure-identity aio's ``ClientSecretCredential``, warm.

Runs are interleaved in rounds (one run of ``CALLS`` calls per arm, in a shuffled order) so
that drift and neighbours' load hit every arm alike. Per arm the table gives the median over
rounds of the mean time per call, and the median over rounds of the paired ratio to
``native`` in the same round, with its interquartile range.

    python benchmarks/bench_azure_adapter.py     # about 10 seconds; writes results/azure_adapter.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import azure.core
import azure.identity
from azure.core.credentials import TokenRequestOptions
from azure.identity.aio import ClientSecretCredential

import aioentra
from aioentra import ClientSecret, TokenProvider
from aioentra.emulator import Emulator

ROUNDS = 41
CALLS = 2_000
RESULTS = Path(__file__).parent / "results" / "azure_adapter.md"
API_URI = "api://bench-azure-adapter"
SCOPE = f"{API_URI}/.default"

Call = Callable[[], Awaitable[Any]]


async def _run(call: Call, calls: int) -> float:
    """Mean seconds per call over ``calls`` sequential awaits."""
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls


async def _measure(arms: dict[str, Call], rounds: int, calls: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in arms}
    for call in arms.values():  # warm up: caches, specialised bytecode
        await _run(call, calls)
    rng = random.Random(1)
    for _ in range(rounds):
        order = list(arms)
        rng.shuffle(order)
        for name in order:
            gc.collect()
            samples[name].append(await _run(arms[name], calls))
    return samples


def _table(samples: dict[str, list[float]]) -> list[str]:
    lines = [
        "| arm | median µs / call | min µs | ratio to native (median of paired runs) "
        "| interquartile range |",
        "|---|---:|---:|---:|---:|",
    ]
    floor = samples["native"]
    for name, values in samples.items():
        if name == "native":
            ratio = spread = "—"
        else:
            ratios = [a / b for a, b in zip(values, floor, strict=True)]
            q1, _, q3 = statistics.quantiles(ratios, n=4)
            ratio = f"{statistics.median(ratios):.2f}x"
            spread = f"{q1:.2f}x … {q3:.2f}x"
        lines.append(
            f"| {name} | {statistics.median(values) * 1e6:.2f} | {min(values) * 1e6:.2f} "
            f"| {ratio} | {spread} |"
        )
    return lines


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    args = parser.parse_args(argv)
    rounds, calls = (7, 500) if args.quick else (ROUNDS, CALLS)
    async with Emulator() as emu:
        api = emu.add_api(API_URI)
        app = emu.add_app("bench-azure-adapter")
        emu.grant(app, api, [])
        provider = TokenProvider(
            ClientSecret(app.secret or ""),
            tenant_id=emu.tenant_id,
            client_id=app.client_id,
            authority=emu.base_url,
            ca_file=emu.ca_file,
        )
        identity = ClientSecretCredential(
            emu.tenant_id,
            app.client_id,
            app.secret or "",
            authority=emu.base_url,
            connection_verify=emu.ca_file,
        )
        async with provider, identity:
            credential = provider.as_azure_credential()
            key_vault: TokenRequestOptions = {"tenant_id": emu.tenant_id, "enable_cae": True}
            await provider.get_token(SCOPE)
            await identity.get_token_info(SCOPE)
            requests = emu.requests.count(endpoint="token", client_id=app.client_id)
            arms: dict[str, Call] = {
                "native": lambda: provider.get_token(SCOPE),
                "adapter get_token": lambda: credential.get_token(SCOPE),
                "adapter get_token_info": lambda: credential.get_token_info(SCOPE),
                "adapter get_token_info, Key Vault options": lambda: credential.get_token_info(
                    SCOPE, options=key_vault
                ),
                "azure-identity get_token_info": lambda: identity.get_token_info(SCOPE),
            }
            samples = await _measure(arms, rounds, calls)
            # Warm means warm: not one token request during the measurement.
            assert emu.requests.count(endpoint="token", client_id=app.client_id) == requests
    environment = (
        f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}), "
        f"aioentra {aioentra.__version__}, azure-core {azure.core.__version__}, "
        f"azure-identity {azure.identity.__version__}"
    )
    report = "\n".join(
        [
            "# Azure SDK adapter benchmark",
            "",
            f"Generated by `python benchmarks/bench_azure_adapter.py`. {environment}. "
            f"{rounds} interleaved rounds of {calls:,} calls per arm, a warm token.",
            "",
            *_table(samples),
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report + "\n", encoding="utf-8")
    print(report)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
