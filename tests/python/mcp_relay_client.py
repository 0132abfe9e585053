"""A real MCP client (the official `mcp` 2.x) against the gateway's /mcp with the conformance
suite's reference server (mcp_reference_upstream.py) behind it as an `mcp` upstream.

    python mcp_relay_client.py MCP_URL TOKEN MODE PREFIX     MODE = legacy | 2026-07-28

PREFIX is the manifest's tool prefix for the upstream. Calls the reference tools whose answers the
gateway must pass through as the upstream gave them: image, audio, embedded resource and mixed
content, an isError result, progress (0, 50, 100 of 100, no stage prefix) and a JSON-RPC error
(-32021 with its data). Checks what it got against what the reference server answers directly
(the same constants), and prints as its last line JSON: {"protocol", "calls": {tool: {"run",
"content", "isError", "progress", "error"}}} for the caller to check the runs' receipts and
payloads against. Exit 0 when every check passed.
"""

import json
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import mcp_reference_upstream as ref

FAILS: list[str] = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def dump(blocks) -> list:
    return [b.model_dump(by_alias=True, exclude_none=True, mode="json") for b in blocks]


async def main(url: str, token: str, mode: str, prefix: str) -> int:
    calls: dict[str, dict] = {}
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        protocol = str(client.protocol_version)

        async def call(tool: str, **kw) -> dict:
            seen: list = []

            async def on_progress(progress, total, message):
                seen.append([progress, total, message])

            out: dict = {"progress": seen}
            try:
                r = await client.call_tool(prefix + tool, {}, progress_callback=on_progress, **kw)
                out.update(content=dump(r.content), isError=bool(r.is_error), run=(r.meta or {}).get("a2a-ledger/run"),
                           receipt=(r.meta or {}).get("a2a-ledger/receipt"), structured=r.structured_content)
            except MCPError as e:
                data = e.data if isinstance(e.data, dict) else {}
                out.update(error={"code": e.code, "message": e.message, "data": e.data}, run=data.get("a2a-ledger/run"))
            calls[tool] = out
            return out

        r = await call("test_image_content")
        check(r.get("content") == [{"type": "image", "data": ref.PNG_B64, "mimeType": "image/png"}],
              f"image block as the upstream gave it: {r.get('content')}")
        check(bool(r.get("run")) and r.get("receipt", "").endswith(f"/runs/{r.get('run')}/receipt"), "the run in _meta")

        r = await call("test_audio_content")
        check(r.get("content") == [{"type": "audio", "data": ref.WAV_B64, "mimeType": "audio/wav"}],
              f"audio block: {r.get('content')}")

        r = await call("test_embedded_resource")
        check(r.get("content") == [{"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content."}}],
              f"embedded resource block: {r.get('content')}")

        r = await call("test_multiple_content_types")
        kinds = [b["type"] for b in r.get("content", [])]
        check(kinds == ["text", "image", "resource"], f"mixed content in order: {kinds}")
        check(r["content"][1].get("data") == ref.PNG_B64 and
              json.loads(r["content"][2]["resource"]["text"]) == {"test": "data", "value": 123}, "mixed content's bytes")

        r = await call("test_error_handling")
        # The SDK's server puts "Error executing tool <name>: " before a ToolError's text.
        check(r.get("isError") is True and [b["type"] for b in r.get("content", [])] == ["text"] and
              r["content"][0]["text"].endswith("This tool intentionally returns an error for testing"),
              f"isError with the tool's own text: {r.get('content')}")

        r = await call("test_tool_with_progress")
        check([p[:2] for p in r["progress"]] == [[0.0, 100.0], [50.0, 100.0], [100.0, 100.0]],
              f"progress 0, 50, 100 of 100: {r['progress']}")
        check([p[2] for p in r["progress"]] == [f"Completed step {s} of 100" for s in (0, 50, 100)],
              "the upstream's progress messages, without a stage prefix")
        check(r.get("isError") is False and r["content"][0]["type"] == "text", f"progress tool's result: {r.get('content')}")

        r = await call("test_missing_capability")
        e = r.get("error") or {}
        check(e.get("code") == -32021 and e.get("message") == "This tool requires the client 'sampling' capability",
              f"the upstream's JSON-RPC error, code and message: {e}")
        data = e.get("data") or {}
        check(data.get("requiredCapabilities") == {"sampling": {}}, f"its data: {data}")
        check(bool(r.get("run")) and data.get("a2a-ledger/receipt", "").endswith(f"/runs/{r.get('run')}/receipt"),
              "the run and its receipt added to the data")
    print(json.dumps({"protocol": protocol, "calls": calls}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, *sys.argv[1:5]))
