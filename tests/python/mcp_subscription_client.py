"""A real MCP client (the official `mcp` 2.x) against the gateway's /mcp with the conformance
suite's reference server (mcp_reference_upstream.py) behind it as an `mcp` upstream: resource
updates reach the callers that subscribed to the resource, and only them.

    python mcp_subscription_client.py MCP_URL TOKEN MODE PREFIX     MODE = legacy | 2026-07-28

Two callers: A subscribes to test://watched-resource, B to test://static-text (2025-11-25:
`resources/subscribe` in two sessions; 2026-07-28: two `subscriptions/listen` streams). The
upstream announces an update of the watched resource, then of the static one, then of the watched
one again (its tool `test_update_resource`, called through the gateway). Each caller waits for
the updates of its own URI; since one upstream stream carries them in that order, an update a
caller did not subscribe to would reach it before its own. Over 2025-11-25, A then unsubscribes
and B's session subscribes to the watched resource too; the next update reaches B and not A
(whose session closes after). Exit 0 when every check passed.
"""

import json
import sys
import warnings

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import ResourceUpdatedNotification

FAILS: list[str] = []
WATCHED, STATIC = "test://watched-resource", "test://static-text"


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


class Inbox:
    """The updates a caller received, in order, and a way to wait for the n-th of a URI."""

    def __init__(self) -> None:
        self.uris: list[str] = []
        self.changed = anyio.Event()

    def add(self, uri: str) -> None:
        self.uris.append(uri)
        self.changed.set()
        self.changed = anyio.Event()

    async def until(self, uri: str, n: int) -> None:
        with anyio.fail_after(20):
            while self.uris.count(uri) < n:
                await self.changed.wait()


async def main(url: str, token: str, mode: str, prefix: str) -> int:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    a, b = Inbox(), Inbox()

    def connect(inbox: Inbox) -> Client:
        async def on_message(m) -> None:
            if isinstance(m, ResourceUpdatedNotification):
                inbox.add(str(m.params.uri))

        # Over 2026-07-28 the updates are read from the listen streams (which the message
        # handler would see too).
        handler = on_message if mode == "legacy" else None
        return Client(streamable_http_client(url, http_client=http), mode=mode, message_handler=handler)

    async def update(client: Client, uri: str) -> None:
        r = await client.call_tool(prefix + "test_update_resource", {"uri": uri})
        check(not r.is_error, f"update of {uri} announced: {r.content}")

    async with http:
        if mode == "legacy":
            async with connect(a) as ca:
                async with connect(b) as cb:
                    caps = ca.server_capabilities.model_dump(exclude_none=True)
                    check(caps.get("resources", {}).get("subscribe") is True, f"subscriptions declared: {caps}")
                    await ca.subscribe_resource(WATCHED)
                    await ca.subscribe_resource(WATCHED)  # twice: still one subscription
                    await cb.subscribe_resource(STATIC)
                    for uri in (WATCHED, STATIC, WATCHED):
                        await update(ca, uri)
                    await a.until(WATCHED, 2)
                    await b.until(STATIC, 1)
                    check(a.uris == [WATCHED, WATCHED], f"A got the watched resource's updates only: {a.uris}")
                    check(b.uris == [STATIC], f"B got the static resource's update only: {b.uris}")
                    await ca.unsubscribe_resource(WATCHED)
                    await cb.subscribe_resource(WATCHED)
                    await update(cb, WATCHED)
                    await update(cb, STATIC)
                    await b.until(STATIC, 2)
                    check(b.uris == [STATIC, WATCHED, STATIC], f"B now gets the watched resource's too: {b.uris}")
                    check(a.uris == [WATCHED, WATCHED], f"A, unsubscribed, got nothing more: {a.uris}")
                    try:
                        await ca.subscribe_resource("test://no-such-resource")
                        check(False, "subscribing to an unknown URI is refused")
                    except Exception as e:  # noqa: BLE001 - the SDK's protocol error
                        check(getattr(e, "code", None) == -32002, f"subscribing to an unknown URI is refused: {e}")
        else:
            async with connect(a) as ca, connect(b) as cb:
                async with ca.listen(resource_subscriptions=[WATCHED]) as sa, cb.listen(resource_subscriptions=[STATIC]) as sb:
                    check(list(sa.honored.resource_subscriptions or []) == [WATCHED], f"A's stream: {sa.honored}")

                    async def read(sub, inbox: Inbox) -> None:
                        async for event in sub:
                            inbox.add(str(event.uri))

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(read, sa, a)
                        tg.start_soon(read, sb, b)
                        for uri in (WATCHED, STATIC, WATCHED):
                            await update(ca, uri)
                        await a.until(WATCHED, 2)
                        await b.until(STATIC, 1)
                        tg.cancel_scope.cancel()
                    check(a.uris == [WATCHED, WATCHED], f"A got the watched resource's updates only: {a.uris}")
                    check(b.uris == [STATIC], f"B got the static resource's update only: {b.uris}")
    print(json.dumps({"a": a.uris, "b": b.uris}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        sys.exit(anyio.run(main, *sys.argv[1:5]))
