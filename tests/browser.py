"""Browser tests' harness: the real service (``python -m dialer serve``, sandbox, the test's
redis-server) driven by Debian's Chromium, headless, through chromedriver (selenium).

Screenshots are kept as test artefacts in ``test-artifacts/`` (or ``$REGUA_ARTIFACTS``).
Where Chromium or chromedriver is missing the tests are skipped with that reason;
``.ci/run`` installs both (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dialer.runtime import people
from dialer.store import Store
from dialer.store.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("REGUA_ARTIFACTS", ROOT / "test-artifacts"))
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="browser tests need Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver; .ci/run installs them)",
)
PASSWORDS = {"ana": "ana-password-123", "sara": "sara-password-123", "otto": "otto-password-123"}
ROLES = {"ana": "admin", "sara": "supervisor", "otto": "operator"}
LANGUAGE = {"ana": "pt-BR", "sara": "pt-BR", "otto": "pt-BR"}


class Console:
    """``python -m dialer serve`` on a free port, on a simulated clock, against ``redis_url``."""

    def __init__(
        self,
        redis_url: str,
        data_dir: Path,
        *,
        clock_start: str,
        speed: float = 1.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER")}
        env.update(
            {
                "REDIS_URL": redis_url,
                "DIALER_DATA_DIR": str(data_dir),
                "DIALER_HTTP_HOST": "127.0.0.1",
                "DIALER_HTTP_PORT": str(self.port),
                "DIALER_PUBLIC_URL": self.base,
                **(extra_env or {}),
            }
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dialer",
                "serve",
                "--no-progress",
                "--clock-start",
                clock_start,
                "--speed",
                str(speed),
            ],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the service did not start:\n" + (data_dir / "serve.log").read_text()[-3000:])

    def url(self, path: str) -> str:
        return self.base + path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def add_users(redis_url: str, when: datetime, languages: dict[str, str] | None = None) -> None:
    async def main() -> None:
        store = await Store.connect(redis_url)
        try:
            for name, role in ROLES.items():
                if await store.user(name) is None:
                    lang = (languages or LANGUAGE).get(name, "pt-BR")
                    await people.add_user(store, name, role, PASSWORDS[name], when, "test", language=lang)
        finally:
            await store.close()

    asyncio.run(main())


def chrome(language: str = "pt-BR") -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--lang={language}",
        f"--user-data-dir={tempfile.mkdtemp(prefix='regua-chromium-')}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    return webdriver.Chrome(options=options, service=Service(str(DRIVER)))


def shot(driver: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    return path


def sign_in(driver: object, console: Console, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(console.url("/login"))  # type: ignore[attr-defined]
    driver.find_element(By.ID, "username").send_keys(name)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()  # type: ignore[attr-defined]
    from selenium.webdriver.support.ui import WebDriverWait

    def arrived(d: Any) -> bool:  # the next page is loaded (not the login page mid-submit)
        path = d.current_url.split("?")[0]
        return not path.endswith("/login") and d.execute_script("return document.readyState") == "complete"

    WebDriverWait(driver, 15).until(arrived)


@pytest.fixture
def console(redis_url: str, tmp_path: Path) -> Iterator[Console]:
    add_users(redis_url, datetime.fromisoformat("2026-11-23T10:00:00-03:00"))
    running = Console(redis_url, tmp_path / "var", clock_start="2026-11-23T10:00:00-03:00")
    yield running
    running.stop()


@pytest.fixture
def driver() -> Iterator[object]:
    d = chrome()
    yield d
    d.quit()  # type: ignore[attr-defined]
