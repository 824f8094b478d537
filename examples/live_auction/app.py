"""A FastAPI app whose page shows an auction live, as bids arrive from anywhere.

Run it with ``CLOUDFLARE_DURABLE_TOKEN=secret python examples/live_auction/app.py``,
open http://127.0.0.1:8000/login?user=ann, and bid from another terminal::

    CLOUDFLARE_WORKER_URL=http://127.0.0.1:8000/durable CLOUDFLARE_DURABLE_TOKEN=secret \\
        python examples/live_auction/bid.py teapot bob 15

Where the objects live:

- by default, here: the network host is mounted in this app at ``/durable``
  (``app.mount``), storing in ``auction.sqlite3``, and ``authorize`` applies the
  app's own login (the ``current_user`` dependency) to every operation;
- with ``CLOUDFLARE_WORKER_URL`` set (the Worker, or ``durable serve``), there:
  the page connects to it directly, so that server must allow this app's origin
  (``ALLOWED_ORIGINS``, ``--allow-origin http://127.0.0.1:8000``).

Either way the page holds no token: ``POST /api/auctions/{id}/ticket``, behind
the app's login, hands it a ticket for that one auction, valid for a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.requests import HTTPConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/: the auction models
from auction import Auction, Wallet

from cloudflare_durable import DurableClient, RemoteError, issue_ticket
from cloudflare_durable.host import Host
from cloudflare_durable.host.asgi import client_script, create_app

TOKEN = os.environ.get("CLOUDFLARE_DURABLE_TOKEN") or os.environ["CLOUDFLARE_API_TOKEN"]
EXTERNAL_URL = os.environ.get("CLOUDFLARE_WORKER_URL")  # the Worker or durable serve; unset: here
PAGE = (Path(__file__).parent / "page.html").read_text(encoding="utf-8")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await client.aclose()
    if host is not None:
        host.close()


app = FastAPI(title="Live auction", lifespan=lifespan)


def current_user(connection: HTTPConnection) -> str:
    """The app's own login (a toy: a cookie set by /login). A real app checks a session."""
    user = connection.cookies.get("user")
    if not user:
        raise HTTPException(status_code=401, detail="log in first: /login?user=NAME")
    return user


User = Annotated[str, Depends(current_user)]


def may(connection: HTTPConnection, model: str, object_id: str, operation: str) -> bool:
    """Who may do what on the mounted host, after its token or ticket was checked.

    Requests with the bearer token are this app's own servers and scripts (the
    host already checked the token). Pages carry a ticket and the app's login
    cookie: a logged-in user may watch auctions, nothing else.
    """
    if connection.headers.get("authorization", "").lower().startswith("bearer "):
        return True
    try:
        current_user(connection)
    except HTTPException:
        return False
    return model == "Auction" and operation == "load"


host: Host | None = None
if EXTERNAL_URL is None:
    host = Host(os.environ.get("AUCTION_STORE", "auction.sqlite3"), models=[Auction, Wallet])
    app.mount("/durable", create_app(host, token=TOKEN, authorize=may))
    durable_url = "/durable"
    client = DurableClient(host=host)
else:
    durable_url = EXTERNAL_URL
    client = DurableClient(EXTERNAL_URL, token=TOKEN)


@app.get("/login")
def login(user: str) -> Response:
    response = RedirectResponse("/auctions/teapot")
    response.set_cookie("user", user, httponly=True, samesite="lax")
    return response


@app.get("/auctions/{auction_id}", response_class=HTMLResponse)
def page(auction_id: str, user: User) -> str:
    config = json.dumps({"auction": auction_id, "durable_url": durable_url, "user": user})
    return PAGE.replace("{{CONFIG}}", config.replace("<", "\\u003c"))


@app.post("/api/auctions/{auction_id}/ticket")
def ticket(auction_id: str, user: User) -> dict[str, str]:
    """A ticket for the page of a logged-in user: watch this auction, for one minute."""
    return {"ticket": issue_ticket(TOKEN, Auction, auction_id, allow=["load"], ttl=60)}


@app.post("/api/auctions/{auction_id}/bids")
async def bid(auction_id: str, amount: int, user: User) -> dict[str, int]:
    """Bid as the logged-in user, through the app's own client."""
    try:
        count = await Auction.get(auction_id, client=client).bid(user, amount)
    except RemoteError as refused:  # the method raised: too low, no money, closed
        raise HTTPException(status_code=409, detail=refused.details["message"]) from refused
    return {"bids": count}


@app.get("/durable.js")
def durable_js() -> Response:
    """The browser module (the mounted host also serves it, at /durable/v1/client.js)."""
    return Response(client_script(), media_type="text/javascript")


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    port = parser.parse_args().port
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    print(f"live auction at http://127.0.0.1:{sock.getsockname()[1]}/login?user=ann", flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
