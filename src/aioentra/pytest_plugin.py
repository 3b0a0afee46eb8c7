"""pytest fixtures for testing code against the aioentra emulator (plugin ``aioentra``).

Fixtures:

``aioentra_emulator`` (session)
    One :class:`~aioentra.emulator.Emulator` for the whole test session.
``aioentra_app`` (function)
    A freshly registered app with a client secret (``app.client_id``, ``app.secret``), removed after
    the test.
``aioentra_cert_app`` (function)
    A freshly registered app with a generated certificate (``app.certificate``) and no secret.
``aioentra_private_emulator`` (function)
    A new emulator for one test, when a test inspects its whole state.
``aioentra_isolated`` (function)
    The shared emulator for one test: its faults are cleared and its settings restored after it.
``aioentra_api`` (function)
    A freshly registered API (``api.identifier_uri``, ``api.app_id``, roles ``Test.Read`` and
    ``Test.Write``), removed after the test.
``aioentra_secret_guard`` (function, opt-in)
    A :class:`~aioentra.testing.SecretGuard` open for the test: every log record of every
    logger, in every thread, is captured at DEBUG, and the test fails at teardown if any of
    them carries a secret -- by shape (a JWT, a PEM block, a ``client_secret=`` or
    ``client_assertion=`` value, a ``Bearer``/``Basic`` value, a managed-identity header
    value) or by value (everything an emulator alive during the test knows: client secrets,
    Key Vault values, generated private keys, minted tokens, received assertions; the proof
    of every credential built during the test; whatever the test passed to ``.add()``).
    The failure lists the logger, level and a masked fingerprint of each secret, never the
    secret. Levels, handlers and ``caplog`` are unaffected: records are captured, not
    emitted. Turn it on for a whole suite with an autouse fixture in ``conftest.py``::

        @pytest.fixture(autouse=True)
        def _no_secrets_in_logs(aioentra_secret_guard):
            return aioentra_secret_guard

The emulator is shared, so these fixtures keep tests apart: each registers its own objects under
unique names, and when a test that used one of them ends, its faults are cleared and the shared
settings (``token_lifetime``, ``refresh_in``, ``clock_skew``) are put back as the session began.
Count requests per app (``emu.requests.count(endpoint="token", client_id=app.client_id)``), not
globally.

Design: async test plugins (pytest-anyio, pytest-asyncio) run each test on its own, function-scoped
event loop, and an aiohttp server bound to one loop cannot serve clients on another. So the session
emulator runs on a private event loop in a background thread (``Emulator.serve_in_thread``), and
tests use the same ``Emulator`` object from their own thread and loop: its registration, fault and
request-log methods are synchronous and thread-safe, and clients only talk to it over the network.

Importing this module is cheap (it imports nothing but pytest); the emulator is imported and
started only when a test asks for one of the fixtures, so suites that never use it pay nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from aioentra.emulator import Api, App, Emulator
    from aioentra.testing import SecretGuard

__all__ = [
    "aioentra_api",
    "aioentra_app",
    "aioentra_cert_app",
    "aioentra_emulator",
    "aioentra_isolated",
    "aioentra_private_emulator",
    "aioentra_secret_guard",
]

_numbers = itertools.count(1)


_SETTINGS = ("token_lifetime", "refresh_in", "clock_skew")


@pytest.fixture(scope="session")
def aioentra_emulator() -> Iterator[Emulator]:
    """A running emulator shared by the test session (HTTPS on loopback, its own thread)."""
    from aioentra.emulator import Emulator

    emulator = Emulator()
    with emulator.serve_in_thread():
        yield emulator


@pytest.fixture
def aioentra_private_emulator() -> Iterator[Emulator]:
    """An emulator of the test's own (a fresh state, its own port and thread), for tests that
    look at everything an emulator holds: every request logged, every secret stored."""
    from aioentra.emulator import Emulator

    emulator = Emulator()
    with emulator.serve_in_thread():
        yield emulator


@pytest.fixture
def aioentra_isolated(aioentra_emulator: Emulator) -> Iterator[Emulator]:
    """The shared emulator, with faults cleared and settings restored after the test."""
    settings = {name: getattr(aioentra_emulator, name) for name in _SETTINGS}
    yield aioentra_emulator
    aioentra_emulator.faults.clear()
    for name, value in settings.items():
        setattr(aioentra_emulator, name, value)


@pytest.fixture
def aioentra_app(aioentra_isolated: Emulator) -> Iterator[App]:
    """A new app with a client secret, registered in the emulator's default tenant."""
    app = aioentra_isolated.add_app(f"test-app-{next(_numbers)}")
    yield app
    aioentra_isolated.remove_app(app)


@pytest.fixture
def aioentra_cert_app(aioentra_isolated: Emulator) -> Iterator[App]:
    """A new app with a generated RSA certificate credential (and no secret)."""
    app = aioentra_isolated.add_app(
        f"test-cert-app-{next(_numbers)}", secret=False, certificate=True
    )
    yield app
    aioentra_isolated.remove_app(app)


@pytest.fixture
def aioentra_api(aioentra_isolated: Emulator) -> Iterator[Api]:
    """A new API (identifier URI ``api://aioentra-test-api-N``) with two app roles."""
    api = aioentra_isolated.add_api(
        f"api://aioentra-test-api-{next(_numbers)}", roles=["Test.Read", "Test.Write"]
    )
    yield api
    aioentra_isolated.remove_api(api)


@pytest.fixture
def aioentra_secret_guard() -> Iterator[SecretGuard]:
    """Fail the test if a log record captured at DEBUG carries a secret (see the module doc).

    Set up before the test's other function fixtures when it is autouse, so it also sees their
    teardown. A finding fails the test at teardown, naming logger, level and fingerprint.
    """
    from aioentra.testing import SecretGuard

    with SecretGuard() as guard:
        yield guard
    failure = guard.report()
    if failure is not None:
        pytest.fail(failure, pytrace=False)
