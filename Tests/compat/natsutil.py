"""Helpers around nats-py quirks that matter for deterministic tests."""
from __future__ import annotations


async def settle(*conns) -> None:
    """Make sure every command queued on each connection has been processed by the server.

    nats-py 2.16 `flush()` writes its PING straight to the socket while earlier commands (a
    SUB just issued) may still wait in the client's pending buffer for the flusher task, so
    the PONG can come back before the server has seen the SUB (measured: ~5-10% of new
    subscriptions missed a publish from another connection). After one flush has
    round-tripped, the flusher has run, so a second flush is a real barrier.
    """
    for c in conns:
        await c.flush()
        await c.flush()
