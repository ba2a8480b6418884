import pytest

from tests.server import run_server


@pytest.fixture(scope="session")
def server():
    """A default server shared by tests that do not configure it (zero latency)."""
    with run_server("--ttft", "0", "--itl", "0") as s:
        yield s


@pytest.fixture(scope="session")
def client(server):
    return server.client()
