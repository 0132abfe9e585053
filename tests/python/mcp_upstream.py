"""An MCP server written with the official `mcp` package (MCPServer, formerly FastMCP), put
behind the gateway as an `mcp` upstream in the tests.

    python mcp_upstream.py PORT KEY

Serves streamable HTTP at http://127.0.0.1:PORT/mcp and answers 401 unless every request carries
`Authorization: Bearer KEY` (the upstream's own key from the gateway's manifest, never the
caller's). Prints "listening http://127.0.0.1:PORT" once it accepts connections.

Tools:
  add(a, b)          structured result {"sum", "note"}
  slow_count(n)      n progress notifications, then {"counted": n}
  boom(reason)       always fails (isError)
  picture()          an image content block (a 1x1 PNG)
  sleepy(secs)       sleeps; for cancel tests
  write_note(text)   writes out/note.txt into the run's workspace with the grant it finds in the
                     request's _meta, and answers what the workspace said
"""

import base64
import json
import sys
import urllib.error
import urllib.request

import anyio
import uvicorn
from pydantic import BaseModel, Field

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ImageContent

mcp = MCPServer(name="py-upstream", version="0.1.0", instructions="test upstream for a2a-ledger")

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class AddResult(BaseModel):
    sum: int = Field(description="a + b")
    note: str


@mcp.tool(description="Adds two integers")
def add(a: int, b: int) -> AddResult:
    return AddResult(sum=a + b, note=f"{a}+{b}")


@mcp.tool(description="Counts to n, reporting progress")
async def slow_count(n: int, ctx: Context) -> dict[str, int]:
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}/{n}")
        await anyio.sleep(0.02)
    return {"counted": n}


@mcp.tool(description="Always fails")
def boom(reason: str = "kaboom") -> str:
    raise ToolError(f"boom: {reason}")


@mcp.tool(description="A tiny picture")
def picture() -> list:
    return [ImageContent(type="image", data=base64.b64encode(PNG).decode(), mime_type="image/png")]


@mcp.tool(description="Sleeps for secs seconds")
async def sleepy(secs: float) -> str:
    await anyio.sleep(secs)
    return "rested"


def _meta(ctx: Context) -> dict:
    meta = ctx.request_context.meta
    if meta is None:
        return {}
    if isinstance(meta, dict):
        return dict(meta)
    return meta.model_dump(by_alias=True)


@mcp.tool(description="Writes out/note.txt into the run's workspace with the run's grant")
async def write_note(text: str, ctx: Context) -> dict:
    meta = _meta(ctx)
    grant, workspace = meta.get("a2a-ledger/grant"), meta.get("a2a-ledger/workspace")
    if not grant or not workspace:
        raise ToolError(f"no grant in _meta: {sorted(meta)}")

    def put() -> int:
        req = urllib.request.Request(
            f"{workspace}/out/note.txt",
            data=text.encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {grant}", "Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    status = await anyio.to_thread.run_sync(put)
    return {"status": status, "run": meta.get("a2a-ledger/run")}


class RequireKey:
    """ASGI middleware: 401 unless the request carries the upstream's own key."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, f"Bearer {key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            body = json.dumps({"error": "wrong or missing upstream key"}).encode()
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


async def main() -> None:
    port, key = int(sys.argv[1]), sys.argv[2]
    app = RequireKey(mcp.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1"), key)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            await anyio.sleep(0.02)
        print(f"listening http://127.0.0.1:{port}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
