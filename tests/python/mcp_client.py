"""A real MCP client (the official `mcp` 2.x) against the gateway's demo agent at /mcp.

    python mcp_client.py MCP_URL TOKEN MODE        MODE = legacy | 2026-07-28

`legacy` speaks protocol 2025-11-25 (initialize, Mcp-Session-Id); `2026-07-28` is stateless.
Lists the tools, calls a quick one, a slow one with progress, a failing one and an unknown one.
The last line of output is JSON: {"protocol", "runs": [{"id", "status"}]} for the caller to
verify the runs' receipts. Exit 0 when every check passed.
"""

import json
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

FAILS: list[str] = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


async def main(url: str, token: str, mode: str) -> int:
    runs = []
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        protocol = str(client.protocol_version)
        check(protocol.endswith("2025-11-25") if mode == "legacy" else protocol.endswith("2026-07-28"),
              f"negotiated {protocol}")

        tools = {t.name: t for t in (await client.list_tools()).tools}
        check(list(tools)[:5] == ["echo", "slow", "ask", "report", "conformance"], f"tools {list(tools)}")
        check(tools["slow"].input_schema.get("properties", {}).get("steps", {}).get("type") == "integer",
              "inputSchema from the manifest")
        check((tools["echo"].output_schema or {}).get("type") == "object", "outputSchema from the manifest")

        r = await client.call_tool("echo", {"text": "over mcp"})
        check(not r.is_error and r.structured_content == {"echo": {"text": "over mcp"}},
              f"echo structuredContent {r.structured_content}")
        meta = r.meta or {}
        run = meta.get("a2a-ledger/run")
        check(bool(run) and meta.get("a2a-ledger/receipt", "").endswith(f"/runs/{run}/receipt"), f"receipt in _meta {meta}")
        runs.append({"id": run, "status": "completed"})

        seen = []

        async def on_progress(progress, total, message):
            seen.append((progress, total, message))

        r = await client.call_tool("slow", {"steps": 3, "delay_ms": 50}, progress_callback=on_progress)
        check(not r.is_error and r.structured_content == {"steps": 3}, f"slow result {r.structured_content}")
        check([p for p, _, _ in seen] == [33.0, 66.0, 100.0] and all(t == 100.0 for _, t, _ in seen),
              f"progress notifications {seen}")
        runs.append({"id": (r.meta or {}).get("a2a-ledger/run"), "status": "completed"})

        r = await client.call_tool("fail", {})
        check(r.is_error and "always fails" in r.content[0].text, f"fail isError {r.content}")
        runs.append({"id": (r.meta or {}).get("a2a-ledger/run"), "status": "failed"})

        try:
            await client.call_tool("no-such-tool", {})
            check(False, "unknown tool refused")
        except Exception as e:  # noqa: BLE001 - the SDK raises its protocol error type
            check("unknown tool" in str(e), f"unknown tool refused: {e}")
    print(json.dumps({"protocol": protocol, "runs": runs}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, *sys.argv[1:4]))
