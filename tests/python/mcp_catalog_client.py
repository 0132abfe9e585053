"""A real MCP client (the official `mcp` 2.x) against the gateway's /mcp with the conformance
suite's reference server (mcp_reference_upstream.py) behind it as an `mcp` upstream: what the
upstream offers beside tools.

    python mcp_catalog_client.py MCP_URL TOKEN MODE PREFIX     MODE = legacy | 2026-07-28

PREFIX is the manifest's prefix for the upstream. Lists resources and templates, reads the text
and binary resources and a template's expansion, lists and gets the prompts (arguments, embedded
resource, image), asks for completions, and is refused an unknown URI and an unknown prompt.
Checks what it got against what the reference server answers directly (the same constants), and
prints as its last line JSON: {"protocol", "capabilities", "reads": {uri: {"run", "contents"}},
"prompts": {name: {"run", "messages"}}, "refusals": {what: code}} for the caller to check the
runs' receipts against. Exit 0 when every check passed.
"""

import base64
import json
import sys
import warnings

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.types import PromptReference, ResourceTemplateReference

import mcp_reference_upstream as ref

FAILS: list[str] = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def dump(items) -> list:
    return [i.model_dump(by_alias=True, exclude_none=True, mode="json") for i in items]


async def main(url: str, token: str, mode: str, prefix: str) -> int:
    reads: dict[str, dict] = {}
    prompts: dict[str, dict] = {}
    refusals: dict[str, int] = {}
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        protocol = str(client.protocol_version)
        if mode == "legacy":
            capabilities = client.server_capabilities.model_dump(by_alias=True, exclude_none=True, mode="json")
        else:
            # This client assumes what a 2026-07-28 server offers; the server's server/discover says.
            meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "catalog-client", "version": "1"}}
            r = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}},
                                headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2026-07-28",
                                         "Mcp-Method": "server/discover"})
            capabilities = r.json()["result"]["capabilities"]
        check("resources" in capabilities and "prompts" in capabilities and "completions" in capabilities,
              f"the edge declares what the upstream declares: {capabilities}")

        listed = {str(r.uri): r for r in (await client.list_resources()).resources}
        check({"test://static-text", "test://static-binary", "test://watched-resource"} <= set(listed),
              f"resources listed with their URIs as the upstream gives them: {sorted(listed)}")
        check(listed.get("test://static-binary") is not None and listed["test://static-binary"].mime_type == "image/png",
              "a resource's type")
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        check(templates == ["test://template/{id}/data"], f"templates: {templates}")

        async def read(uri: str) -> list:
            r = await client.read_resource(uri)
            meta = r.meta or {}
            reads[uri] = {"run": meta.get("a2a-ledger/run"), "receipt": meta.get("a2a-ledger/receipt"),
                          "contents": dump(r.contents)}
            return r.contents

        c = await read("test://static-text")
        check(len(c) == 1 and c[0].text == "This is the content of the static text resource." and c[0].mime_type == "text/plain",
              f"text resource: {dump(c)}")
        c = await read("test://static-binary")
        check(len(c) == 1 and base64.b64decode(c[0].blob) == base64.b64decode(ref.PNG_B64) and c[0].mime_type == "image/png",
              "binary resource, byte for byte")
        c = await read("test://template/42/data")
        check(len(c) == 1 and json.loads(c[0].text) == {"id": "42", "templateTest": True, "data": "Data for ID: 42"},
              f"a template's expansion: {dump(c)}")
        check(all(r["run"] and r["receipt"].endswith(f"/runs/{r['run']}/receipt") for r in reads.values()),
              "each read names its run and receipt")

        try:
            await client.read_resource("test://no-such-resource")
            check(False, "an unknown URI is refused")
        except MCPError as e:
            refusals["resource"] = e.code
            check(e.code == (-32002 if mode == "legacy" else -32602), f"an unknown URI is refused: {e.code} {e.message}")

        names = [p.name for p in (await client.list_prompts()).prompts]
        check({prefix + n for n in ("test_simple_prompt", "test_prompt_with_arguments", "test_prompt_with_embedded_resource",
                                    "test_prompt_with_image")} <= set(names), f"prompts named like tools: {names}")

        async def get(name: str, args: dict | None = None):
            r = await client.get_prompt(prefix + name, args)
            meta = r.meta or {}
            prompts[name] = {"run": meta.get("a2a-ledger/run"), "messages": dump(r.messages)}
            return r.messages

        m = await get("test_simple_prompt")
        check([x.content.text for x in m] == ["This is a simple prompt for testing."], "a simple prompt")
        m = await get("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
        check([x.content.text for x in m] == ["Prompt with arguments: arg1='a', arg2='b'"], "a prompt's arguments reach it")
        m = await get("test_prompt_with_embedded_resource", {"resourceUri": "test://example-resource"})
        check([x.content.type for x in m] == ["resource", "text"] and str(m[0].content.resource.uri) == "test://example-resource",
              "a prompt with an embedded resource")
        m = await get("test_prompt_with_image")
        check([x.content.type for x in m] == ["image", "text"] and m[0].content.data == ref.PNG_B64, "a prompt with an image")
        check(all(p["run"] for p in prompts.values()), "each prompt get names its run")

        try:
            await client.get_prompt(prefix + "no_such_prompt")
            check(False, "an unknown prompt is refused")
        except MCPError as e:
            refusals["prompt"] = e.code
            check(e.code == -32602, f"an unknown prompt is refused: {e.code} {e.message}")

        comp = await client.complete(PromptReference(type="ref/prompt", name=prefix + "test_prompt_with_arguments"),
                                     {"name": "arg1", "value": "x"})
        check(comp.completion.values == [], f"completion of a prompt argument: {comp.completion}")
        comp = await client.complete(ResourceTemplateReference(type="ref/resource", uri="test://template/{id}/data"),
                                     {"name": "id", "value": "1"})
        check(comp.completion.values == [], f"completion of a template argument: {comp.completion}")
    print(json.dumps({"protocol": protocol, "capabilities": capabilities, "reads": reads, "prompts": prompts,
                      "refusals": refusals}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        sys.exit(anyio.run(main, *sys.argv[1:5]))
