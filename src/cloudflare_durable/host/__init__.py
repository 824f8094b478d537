"""The Python host: serves ``DurableModel`` objects from SQLite.

``Host`` is the runtime the embedded default client runs in-process; the
network host (``durable serve``, :func:`cloudflare_durable.host.asgi.create_app`)
serves the same runtime over HTTP and WebSocket.
"""

from ._runtime import Host

__all__ = ["Host"]
