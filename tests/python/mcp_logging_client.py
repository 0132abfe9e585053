"""A real MCP client (the official `mcp` 2.x) against the gateway's /mcp with the conformance
suite's reference server (mcp_reference_upstream.py) behind it as an `mcp` upstream: the
upstream's log messages during a call reach the caller only when its level admits them.

    python mcp_logging_client.py MCP_URL TOKEN MODE PREFIX     MODE = legacy | 2026-07-28

Calls `test_tool_with_logging` (three `info` messages) with no level, at `warning` and at `info`:
over 2025-11-25 the session's level (logging/setLevel), over 2026-07-28 each request's
`_meta` logLevel. Prints as its last line JSON: {"protocol", "calls": [{"level", "run", "logs"}]}
for the caller to check the runs' receipts against. Exit 0 when every check passed.
"""

import json
import sys
import warnings

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning

FAILS: list[str] = []
STEPS = ["Tool execution started", "Tool processing data", "Tool execution completed"]


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


async def main(url: str, token: str, mode: str, prefix: str) -> int:
    calls: list[dict] = []
    protocol = None
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)

    async def call(client: Client, level: str | None, logs: list) -> None:
        del logs[:]
        r = await client.call_tool(prefix + "test_tool_with_logging", {})
        calls.append({"level": level, "run": (r.meta or {}).get("a2a-ledger/run"), "logs": list(logs)})
        want = STEPS if level in ("debug", "info") else []
        check([m["data"] for m in logs] == want and all(m["level"] == "info" for m in logs),
              f"{mode}, level {level}: {logs}")

    async with http:
        if mode == "legacy":
            logs: list = []

            async def on_log(params) -> None:
                logs.append(params.model_dump(mode="json"))

            async with Client(streamable_http_client(url, http_client=http), mode=mode, logging_callback=on_log) as client:
                protocol = str(client.protocol_version)
                check("logging" in client.server_capabilities.model_dump(exclude_none=True), "logging declared")
                await call(client, None, logs)
                for level in ("warning", "info"):
                    await client.set_logging_level(level)
                    await call(client, level, logs)
        else:
            for level in (None, "warning", "info"):
                logs = []

                async def on_log(params, logs=logs) -> None:
                    logs.append(params.model_dump(mode="json"))

                async with Client(streamable_http_client(url, http_client=http), mode=mode, logging_callback=on_log,
                                  log_level=level) as client:
                    protocol = str(client.protocol_version)
                    await call(client, level, logs)
    print(json.dumps({"protocol": protocol, "calls": calls}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        sys.exit(anyio.run(main, *sys.argv[1:5]))
