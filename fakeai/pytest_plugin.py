"""pytest plugin (entry point ``pytest11``): a ``fakeai`` fixture for your tests.

    def test_reply(fakeai):
        reply = fakeai.openai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content

One server per test session (zero latency, in-memory store, in a thread of the
test process), shared by every test that asks for ``fakeai``. A test that needs
its own configuration marks itself, and gets a dedicated server:

    @pytest.mark.fakeai(ttft_ms=200, itl_ms=20)
    def test_slow(fakeai): ...

``--fakeai-setting name=value`` (repeatable) changes the shared server's settings.
"""

from __future__ import annotations

import pytest

from .client import FakeAI

_DEFAULTS = {"ttft_ms": 0.0, "itl_ms": 0.0}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fakeai")
    group.addoption("--fakeai-setting", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting of the shared fakeai server (repeatable), e.g. ttft_ms=50")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fakeai(**settings): run this test against its own fakeai server "
                                       "configured with these settings")


def _session_settings(config: pytest.Config) -> dict:
    settings = dict(_DEFAULTS)
    for item in config.getoption("fakeai_setting"):
        name, sep, value = item.partition("=")
        if not sep:
            raise pytest.UsageError(f"--fakeai-setting expects NAME=VALUE, got {item!r}")
        settings[name.strip().replace("-", "_")] = value.strip()
    return settings


@pytest.fixture(scope="session")
def fakeai_server(pytestconfig: pytest.Config):
    """The session's shared fakeai server."""
    with FakeAI(**_session_settings(pytestconfig)) as server:
        yield server


@pytest.fixture
def fakeai(request: pytest.FixtureRequest):
    """A running fakeai server with ``.openai``, ``.async_openai``, ``.http`` and ``.base_url``."""
    marker = request.node.get_closest_marker("fakeai")
    if marker is None:
        yield request.getfixturevalue("fakeai_server")
        return
    with FakeAI(**{**_DEFAULTS, **marker.kwargs}) as server:
        yield server
