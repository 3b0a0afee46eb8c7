"""Startup secrets: aioentra's load_secrets against a plain azure-keyvault-secrets loop.

Both read the same 50 secrets from the emulator's vault, with 20 ms of latency on every vault
request, with the same credential (an aioentra ManagedIdentityProvider of the emulator's managed
identity, through ``as_azure_credential()``). The table gives the wall time of each (median over
interleaved rounds) and the vault requests each sent, next to ``load_secrets`` of one secret
and one warm vault round trip, which say how many round trips the 50 cost.

Run: ``python benchmarks/bench_keyvault.py`` (``--quick`` for fewer rounds). Writes
``benchmarks/results/keyvault.md``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from _common import (
    Check,
    Contender,
    Context,
    Json,
    Section,
    Table,
    emulator,
    failure,
    fmt,
    median,
    ok,
    run_alone,
)

NAMES = [f"startup-{n}" for n in range(50)]
LATENCY = 0.02
ROUND_TRIPS_TARGET = 2.0


async def sequential(
    vault_url: str, ca_file: str, provider: Any, names: list[str]
) -> dict[str, str]:
    from azure.keyvault.secrets.aio import SecretClient

    client = SecretClient(
        vault_url,
        provider.as_azure_credential(),
        verify_challenge_resource=False,
        connection_verify=ca_file,
    )
    async with client:
        values = {}
        for name in names:
            values[name] = (await client.get_secret(name)).value or ""
        return values


async def concurrent(
    vault_url: str, ca_file: str, provider: Any, names: list[str]
) -> dict[str, str]:
    from aioentra.keyvault import load_secrets

    return dict(
        await load_secrets(
            vault_url, names, credential=provider.as_azure_credential(), ca_file=ca_file
        )
    )


async def round_trip(vault_url: str, ca_file: str, provider: Any, names: list[str]) -> float:
    """Seconds of one warm read (token held, connection open): one vault round trip."""
    from azure.keyvault.secrets.aio import SecretClient

    client = SecretClient(
        vault_url,
        provider.as_azure_credential(),
        verify_challenge_resource=False,
        connection_verify=ca_file,
    )
    async with client:
        await client.get_secret(names[0])
        started = time.perf_counter()
        await client.get_secret(names[0])
        return time.perf_counter() - started


# == worker side ===================================================================================


def _use_managed_identity(environ: dict[str, str]) -> None:
    from aioentra.emulator import MANAGED_IDENTITY_VARIABLES

    for name in MANAGED_IDENTITY_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(environ)


async def read(
    vault_url: str, ca_file: str, environ: dict[str, str], identity: str, how: str, count: int
) -> Json:
    """One reader's wall time, with a new provider (its first token included)."""
    from aioentra import ManagedIdentityProvider

    _use_managed_identity(environ)
    names = NAMES[:count]
    async with ManagedIdentityProvider(client_id=identity) as provider:
        if how == "round trip":
            return {"wall": await round_trip(vault_url, ca_file, provider, names), "values": 1}
        load = concurrent if how == "concurrent" else sequential
        started = time.perf_counter()
        values = await load(vault_url, ca_file, provider, names)
        wall = time.perf_counter() - started
    assert len(values) == len(names)
    return {"wall": wall, "values": len(values)}


# == parent side ===================================================================================

CONTENDERS = [
    Contender(
        "aioentra `load_secrets`, 50 secrets (concurrent)",
        "read",
        {"how": "concurrent", "count": len(NAMES)},
        ours=True,
    ),
    Contender(
        "azure-keyvault-secrets, 50 `get_secret` one after another",
        "read",
        {"how": "sequential", "count": len(NAMES)},
    ),
    Contender(
        "aioentra `load_secrets`, 1 secret", "read", {"how": "concurrent", "count": 1}, ours=True
    ),
    Contender(
        "one warm vault round trip (`get_secret`, token held)",
        "read",
        {"how": "round trip", "count": 1},
    ),
]


async def section(ctx: Context) -> Section:
    rounds = 2 if ctx.quick else 5
    async with emulator() as emu, ctx.pool("bench_keyvault") as pool:
        from aioentra.emulator import Fault

        identity = emu.managed_identity.add_identity(name="bench-reader")
        emu.vault.grant(identity, ["get"])
        for name in NAMES:
            emu.vault.set_secret(name, f"value of {name}")
        emu.faults.add(Fault("keyvault", "latency", delay=LATENCY, count=None))
        counted: dict[str, int] = {}

        async def before(contender: Contender, index: int) -> Json:
            counted["before"] = len(emu.requests.filter("keyvault"))
            return {}

        async def after(contender: Contender, index: int, result: Json) -> Json:
            return {**result, "requests": len(emu.requests.filter("keyvault")) - counted["before"]}

        samples = await pool.rounds(
            CONTENDERS,
            rounds,
            args={
                "vault_url": emu.vault.url,
                "ca_file": emu.ca_file,
                "environ": emu.managed_identity.environ,
                "identity": identity.client_id,
            },
            timeout=120,
            before=before,
            after=after,
        )

    def wall(label: str) -> float | None:
        return median([s["wall"] for s in ok(samples.get(label, []))])

    rtt = wall(CONTENDERS[3].label)
    rows = []
    for label, runs in samples.items():
        value = wall(label)
        rows.append(
            [
                label,
                failure(runs) or fmt(None if value is None else value * 1e3, 0),
                fmt(median([s["requests"] for s in ok(runs)]), 0),
                fmt(None if value is None or not rtt else value / rtt, 1),
            ]
        )
    checks = []
    suffixes = [""] + ([f" @ {ctx.baseline.label}"] if ctx.baseline else [])
    for suffix in suffixes:
        many, one = wall(CONTENDERS[0].label + suffix), wall(CONTENDERS[2].label + suffix)
        extra = None if many is None or one is None or not rtt else (many - one) / rtt
        checks.append(
            Check(
                "50 startup secrets in about one round trip: round trips the other 49 add to "
                "a load of one" + (f" ({suffix.strip(' @')})" if suffix else ""),
                fmt(extra, 1),
                f"≤ {ROUND_TRIPS_TARGET:g}",
                None if extra is None else extra <= ROUND_TRIPS_TARGET,
            )
        )
    table = Table(
        ["reader", "wall time (ms)", "vault requests", "in warm round trips"],
        rows,
        title=f"{len(NAMES)} secrets, {LATENCY * 1e3:.0f} ms of latency on every vault request "
        f"(median of {rounds} round(s))",
    )
    method = (
        "Every reader is one worker call with a new `ManagedIdentityProvider` (so its first "
        "token, from the emulator's managed-identity endpoint, is included), reading through "
        "`as_azure_credential()`; vault requests are those the emulator logged during the "
        "call. The round trip is the second of two reads on one client (token held, "
        "connection open). "
        '"About one round trip" is measured as the time 49 more secrets add to a load of one, '
        "in round trips."
    )
    return Section("keyvault", "9. Startup secrets from Key Vault", method, [table], checks)


SECTIONS = [section]

if __name__ == "__main__":
    sys.exit(run_alone(SECTIONS, __file__, __doc__))
