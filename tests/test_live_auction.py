"""``examples/live_auction``: a FastAPI app and its page, in a real headless Chromium
(Debian's ``chromium``, driven by Playwright), on the network host mounted in the
app and on the Worker. Bids come from other processes; the page must show each
within a second, and keep doing so after the server restarts."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudflare_durable import DurableClient, blocking, issue_ticket
from cloudflare_durable.testing import ServerProcess, WorkerHost

from .conftest import ROOT, worker_available
from .conftest import TOKEN as SUITE_TOKEN
from .models import Auction

EXAMPLE = ROOT / "examples" / "live_auction"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "live-auction-token"
LIVE_WITHIN_MS = 1000

pytestmark = pytest.mark.slow

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, expect, sync_playwright
elif os.environ.get("CI"):
    raise RuntimeError("Chromium is missing: scripts/setup.sh installs Debian's chromium")
else:
    pytest.skip("Debian's chromium is not installed (scripts/setup.sh)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class AuctionApp(ServerProcess):
    """``python examples/live_auction/app.py`` in a child process."""

    def __init__(self, store: Path, durable_url: str | None = None, port: int = 0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDFLARE_")}
        env.update(CLOUDFLARE_DURABLE_TOKEN=TOKEN, AUCTION_STORE=str(store))
        if durable_url is not None:
            env["CLOUDFLARE_WORKER_URL"] = durable_url
        super().__init__(port, env=env)
        self.token = TOKEN

    def command(self) -> list[str]:
        return [sys.executable, str(EXAMPLE / "app.py"), "--port", str(self.port)]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def auction_worker(base: Path) -> Path:
    """A Worker project for examples/auction.py, made as a user makes one: ``durable init
    worker``, then the bodies the repository's Worker serves examples/auction.py with
    (worker/src/models/auction.ts and wallet.ts; Node packages: worker/'s)."""
    project = base / "auction-worker"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudflare_durable._cli",
            "init",
            "worker",
            str(project),
            "--models",
            str(ROOT / "examples" / "auction.py"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in ("auction.ts", "wallet.ts"):
        shutil.copy(ROOT / "worker" / "src" / "models" / name, project / "src" / "models" / name)
    (project / "node_modules").symlink_to(ROOT / "worker" / "node_modules")
    return project


class Setup:
    """The app, and the server to restart: the app itself, or the Worker."""

    def __init__(self, app: AuctionApp, durable_url: str, restartable: ServerProcess) -> None:
        self.app, self.durable_url, self.restartable = app, durable_url, restartable

    def bid(self, bidder: str, amount: int) -> None:
        """A bid from another process (examples/live_auction/bid.py)."""
        env = {**(self.app.env or {}), "CLOUDFLARE_WORKER_URL": self.durable_url}
        result = subprocess.run(
            [sys.executable, str(EXAMPLE / "bid.py"), "teapot", bidder, str(amount)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def open_auction(self) -> None:
        async def go() -> None:
            async with DurableClient(self.durable_url, token=TOKEN, timeout=10) as client:
                await client.get(Auction, "teapot").update(item="a teapot", reserve_price=10)

        blocking.run(go())  # Playwright's sync API holds this thread's event loop


@pytest.fixture(params=["mounted", "worker"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    if request.param == "mounted":
        with AuctionApp(tmp_path / "auction.sqlite3") as app:
            yield Setup(app, f"{app.url}/durable", app)
        return
    if not worker_available():
        pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
    project = auction_worker(tmp_path)
    port = free_port()  # the app's, known first: the Worker answers pages of its origin
    page_origin = f"http://127.0.0.1:{port}"
    with (
        WorkerHost(
            tmp_path / "persist", token=TOKEN, worker_dir=project, allowed_origins=[page_origin]
        ) as worker,
        AuctionApp(tmp_path / "unused.sqlite3", worker.url, port=port) as app,
    ):
        yield Setup(app, worker.url, worker)


def wait_live(page: Page, timeout: float = 20_000) -> None:
    expect(page.locator("#status")).to_have_attribute("data-status", "live", timeout=timeout)


def test_the_page_follows_bids_live_and_survives_a_restart(browser: Browser, setup: Setup) -> None:
    context = browser.new_context()
    page = context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    try:
        page.goto(f"{setup.app.url}/login?user=ann")
        wait_live(page)
        setup.open_auction()
        expect(page.locator("#item")).to_have_text("a teapot", timeout=LIVE_WITHIN_MS)

        setup.bid("bob", 15)
        expect(page.locator("#highest")).to_have_text("15", timeout=LIVE_WITHIN_MS)
        expect(page.locator("#bidder")).to_have_text("bob", timeout=LIVE_WITHIN_MS)
        expect(page.locator("#bids li").first).to_have_text("bob bid 15", timeout=LIVE_WITHIN_MS)

        setup.restartable.restart()
        wait_live(page)
        setup.bid("carol", 20)
        expect(page.locator("#highest")).to_have_text("20", timeout=LIVE_WITHIN_MS)
        expect(page.locator("#count")).to_have_text("2", timeout=LIVE_WITHIN_MS)
        versions = int(page.locator("#version").text_content() or "0")
        assert versions >= 3

        # The page never held the token, and no credential went into a URL.
        assert TOKEN not in page.content()
        assert len(sockets) >= 2
        assert not [url for url in sockets if "t1." in url or TOKEN in url or "?" in url]
    finally:
        context.close()


# -- the browser module itself, against both servers ------------------------------

BROWSER_SCRIPT = """
async ({ url, tickets, id }) => {
  const { connect, DurableError } = await import("/v1/client.js");
  const durable = connect({ url, ticket: () => tickets.shift() ?? null, timeout: 10000 });
  const out = {};
  out.before = await durable.get("Counter", id);
  const subscription = durable.subscribe("Counter", id, { events: true });
  const first = await subscription.next();
  out.first = first.value;
  out.result = await durable.call("Counter", id, "increment", { by: 2 });
  out.next = (await subscription.next()).value;
  subscription.close();
  out.done = (await subscription.next()).done;
  try {
    await durable.call("Counter", id, "reset");
  } catch (error) {
    out.refused = error instanceof DurableError ? error.code : String(error);
  }
  durable.close();
  return out;
}
"""


@pytest.fixture(params=["network", "worker"])
def page_and_server(
    request: pytest.FixtureRequest, browser: Browser, network_host: ServerProcess, tmp_path: Path
) -> Iterator[tuple[Page, ServerProcess]]:
    """A page on the network host's origin (it serves the module), and a server: that
    host, or a Worker that answers pages of that origin (a site calling a Worker)."""
    page = browser.new_page()
    page.goto(f"{network_host.url}/v1/client.js")
    try:
        if request.param == "network":
            yield page, network_host
            return
        if not worker_available():
            pytest.skip("Node dependencies of worker/ are not installed (npm ci)")
        with WorkerHost(tmp_path, token=SUITE_TOKEN, allowed_origins=[network_host.url]) as worker:
            yield page, worker
    finally:
        page.close()


def test_the_browser_module_gets_calls_and_subscribes(
    page_and_server: tuple[Page, ServerProcess],
) -> None:
    page, server = page_and_server
    object_id = f"browser-{os.urandom(4).hex()}"
    allow = ["load", "increment"]
    tickets = [issue_ticket(SUITE_TOKEN, "Counter", object_id, allow=allow) for _ in range(3)]
    arguments = {"url": server.url, "tickets": tickets, "id": object_id}
    out = page.evaluate(BROWSER_SCRIPT, arguments)
    assert out["before"] == {"version": 0, "state": None}
    assert out["first"] == {"type": "snapshot", "version": 0, "state": None}
    assert out["result"] == 2
    assert out["next"] == {"type": "snapshot", "version": 1, "state": {"value": 2}}
    assert out["done"] is True
    assert out["refused"] == "forbidden"
