"""A running hub, the console in front of it, and Debian's Chromium driven by Playwright.

The console runs in a thread of the test process (uvicorn on a socket bound before the thread
starts, so the first request simply waits in the listen queue); the hub's intake consumer runs
in another (``running_hub``), both on the test's own SQLite ledger and topology prefix. The
browser is Debian's ``chromium`` package (``bin/setup`` installs it; ``playwright install`` is
never run): ``browser_type_launch_args`` points Playwright at it.

Screenshots go to ``$HUB_CONSOLE_SCREENSHOTS`` when set (``docs/console`` is refreshed that way:
``HUB_CONSOLE_SCREENSHOTS=docs/console pytest tests/integration/console``), else to the test's
temporary directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import Browser, BrowserType, Playwright, expect, sync_playwright

from hub.config import Settings, with_overrides
from hub.console.services import ConsoleServices
from hub.console.users import UserStore
from hub.console.web import create_app
from hub.testing.pki import PkiPaths
from tests.integration.pipeline.harness import NOW, hub_settings, make_pki

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "mật khẩu đủ dài 2025"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""Argon2id with test parameters (the console's default costs ~160 ms per hash)."""


# Playwright's assertions wait 5 s by default; Chromium, the console, the hub and the broker
# share two cores here, and a page may take longer than that under load.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (bin/setup installs it)")
    return {"executable_path": str(CHROMIUM)}


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright for this module only. pytest-playwright keeps one for the whole session, and its
    sync API leaves an event loop running in the main thread: every later test that calls
    pyHanko's sync API (``asyncio.run``) would then fail. Stopped here, the loop goes with it."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser_context_args() -> dict[str, Any]:
    """The plugin's own asks the session-wide Playwright; these pages need nothing of it."""
    return {}


@pytest.fixture(scope="module")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return cast(BrowserType, getattr(playwright, browser_name))


@pytest.fixture(scope="module")
def browser(browser_type: BrowserType,
            browser_type_launch_args: dict[str, Any]) -> Iterator[Browser]:
    launched = browser_type.launch(**browser_type_launch_args)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def base_url() -> str | None:
    """Pages are opened by absolute URL (each test has its own console)."""
    return None


@pytest.fixture(scope="session")
def console_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    return make_pki(tmp_path_factory.mktemp("console-pki"))


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = os.environ.get("HUB_CONSOLE_SCREENSHOTS")
    path = Path(target) if target else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class RunningConsole:
    url: str
    services: ConsoleServices
    users: UserStore
    settings: Settings


@pytest.fixture
def crl_dir(tmp_path: Path) -> Path:
    """The CRL directory the hub reads: empty until a test gives the CRLs."""
    path = tmp_path / "crls"
    path.mkdir()
    return path


def give_crls(pki: PkiPaths, crl_dir: Path) -> None:
    """The CRLs come back (an operator copies the CA's files into the configured directory)."""
    shutil.copy(pki.crl_der, crl_dir / "issuing.crl")
    shutil.copy(pki.root_crl_der, crl_dir / "root.crl")


@pytest.fixture
def settings(console_pki: PkiPaths, tmp_path: Path, broker_url: str, names: str,
             crl_dir: Path) -> Settings:
    base = hub_settings(console_pki, tmp_path, broker_url, names, delivery_limit=3)
    return with_overrides(base, trust={"crls": [str(crl_dir)]})


@pytest.fixture
def console(settings: Settings, tmp_path: Path) -> Iterator[RunningConsole]:
    import uvicorn

    users = UserStore(tmp_path / "console-users.sqlite3", hasher=CHEAP)
    users.add("vanhanh", "operator", PASSWORD, full_name="Nguyễn Văn Hành")
    users.add("kiemtoan", "auditor", PASSWORD, full_name="Trần Thị Kiểm")
    users.add("quantri", "admin", PASSWORD, full_name="Lê Quản Trị")
    # The console's clock just after the pipeline's (the harness pins the hub at NOW)
    services = ConsoleServices(settings, clock=lambda: NOW + timedelta(minutes=25))
    app = create_app(services, users)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield RunningConsole(f"http://127.0.0.1:{port}", services, users, settings)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        services.close()
        users.close()
