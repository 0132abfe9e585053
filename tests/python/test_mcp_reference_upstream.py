"""The MCP conformance suite's reference server (mcp_reference_upstream.py), checked with the
official `mcp` client over streamable HTTP in both protocol generations: every tool, resource,
template, prompt, completion, logging, sampling, elicitation, progress and input_required
behaviour the suite's server scenarios call, with the answers the suite compares. Also the
counter of scripts/mcp-conformance (mcp_conformance_counts.py) on a summary of each suite line.

Run from the repository root:  python3 -m unittest discover -s tests/python
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import unittest
import warnings

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import (
    CreateMessageResult,
    ElicitResult,
    ListRootsResult,
    PromptReference,
    ResourceTemplateReference,
    Root,
    TextContent,
)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mcp_conformance_counts as counts  # noqa: E402
import mcp_reference_upstream as ref  # noqa: E402

KEY = "reference-upstream-test-key"
CONTENT_TOOLS = ["test_simple_text", "test_image_content", "test_audio_content", "test_embedded_resource", "test_multiple_content_types"]


class Server:
    """The reference server in its own process on a free loopback port, with the key."""

    def __enter__(self) -> str:
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "mcp_reference_upstream.py"), "0", KEY],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        # Its first line says where it listens (port 0: the kernel picks one).
        line = self.proc.stdout.readline()
        if not line.startswith("listening "):
            self.proc.kill()
            self.proc.wait()
            self.log.seek(0)
            raise RuntimeError(f"the reference server did not start: {line!r} {self.log.read()}")
        return line.split()[1] + "/mcp"

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.log.close()


class Answers:
    """The client side of the server's requests: what the suite's client answers, recorded."""

    def __init__(self) -> None:
        self.sampled: list[str] = []
        self.elicited: list[tuple[str, dict]] = []
        self.roots_asked = 0
        self.logs: list[str] = []

    async def sampling(self, context, params) -> CreateMessageResult:
        self.sampled.append(params.messages[0].content.text)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="Paris"), model="test-model")

    async def elicitation(self, context, params) -> ElicitResult:
        schema = params.requested_schema
        self.elicited.append((params.message, schema))
        props = schema.get("properties", {})
        if "name" in props and "age" in props:  # SEP-1034: accept the defaults
            return ElicitResult(action="accept", content={k: v["default"] for k, v in props.items()})
        if "untitledSingle" in props:  # SEP-1330: one valid value of each shape
            return ElicitResult(
                action="accept",
                content={"untitledSingle": "active", "titledSingle": "low", "untitledMulti": ["read"], "titledMulti": ["bug"], "legacyEnum": "small"},
            )
        content = {k: {"string": "Ada", "boolean": True}[v["type"]] for k, v in props.items()}
        if "color" in props:
            content["color"] = "green"
        return ElicitResult(action="accept", content=content)

    async def roots(self, context) -> ListRootsResult:
        self.roots_asked += 1
        return ListRootsResult(roots=[Root(uri="file:///work", name="work")])

    async def logging(self, params) -> None:
        self.logs.append(params.data)


def connect(url: str, mode: str, answers: Answers, http: httpx2.AsyncClient) -> Client:
    return Client(
        streamable_http_client(url, http_client=http),
        mode=mode,
        sampling_callback=answers.sampling,
        elicitation_callback=answers.elicitation,
        list_roots_callback=answers.roots,
        logging_callback=answers.logging,
    )


def text(result) -> str:
    assert len(result.content) == 1 and result.content[0].type == "text", result.content
    return result.content[0].text


class ReferenceUpstream(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server()
        cls.url = cls.server.__enter__()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.__exit__(None, None, None)

    def session(self, mode: str, body):
        """Runs body(client, answers) in a fresh session of the given generation."""

        async def go():
            answers = Answers()
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
            async with http, connect(self.url, mode, answers, http) as client:
                want = "2025-11-25" if mode == "legacy" else "2026-07-28"
                self.assertTrue(str(client.protocol_version).endswith(want), client.protocol_version)
                return await body(client, answers)

        # Logging and resources/subscribe belong to 2025-11-25 and are deprecated by 2026-07-28:
        # the suite still calls them, so these tests do too (unittest resets module-level filters).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            return anyio.run(go)

    def test_refuses_a_request_without_the_key(self) -> None:
        r = httpx2.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Accept": "application/json, text/event-stream"})
        self.assertEqual(r.status_code, 401)
        r = httpx2.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"Authorization": "Bearer wrong"})
        self.assertEqual(r.status_code, 401)

    def test_tools_list_names_every_tool_the_suite_calls(self) -> None:
        async def body(client, _):
            return {t.name: t for t in (await client.list_tools()).tools}

        for mode in ("legacy", "2026-07-28"):
            tools = self.session(mode, body)
            for name in CONTENT_TOOLS + [
                "test_error_handling", "test_tool_with_logging", "test_tool_with_progress", "test_reconnection",
                "test_sampling", "test_elicitation", "test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums",
                "test_missing_capability", "test_x_mcp_header", "json_schema_2020_12_tool",
                "test_input_required_result_elicitation", "test_input_required_result_sampling",
                "test_input_required_result_list_roots", "test_input_required_result_request_state",
                "test_input_required_result_multiple_inputs", "test_input_required_result_multi_round",
                "test_input_required_result_tampered_state", "test_input_required_result_capabilities",
                "test_streaming_elicitation", "test_logging_tool", "test_trigger_tool_change", "test_trigger_prompt_change",
            ]:
                self.assertIn(name, tools, mode)
            schema = tools["json_schema_2020_12_tool"].input_schema
            self.assertEqual(schema, ref.SCHEMA_2020_12)
            self.assertEqual(tools["test_sampling"].input_schema["required"], ["prompt"])
            self.assertEqual(tools["test_x_mcp_header"].input_schema["properties"]["region"]["x-mcp-header"], "Region")

    def test_content_types(self) -> None:
        async def body(client, _):
            return {name: await client.call_tool(name, {}) for name in CONTENT_TOOLS}

        for mode in ("legacy", "2026-07-28"):
            r = self.session(mode, body)
            self.assertFalse(any(x.is_error for x in r.values()), mode)
            self.assertEqual(text(r["test_simple_text"]), "This is a simple text response for testing.")
            [image] = r["test_image_content"].content
            self.assertEqual((image.type, image.mime_type), ("image", "image/png"))
            self.assertEqual(base64.b64decode(image.data)[:8], b"\x89PNG\r\n\x1a\n")
            [audio] = r["test_audio_content"].content
            self.assertEqual((audio.type, audio.mime_type), ("audio", "audio/wav"))
            self.assertEqual(base64.b64decode(audio.data)[:4], b"RIFF")
            [res] = r["test_embedded_resource"].content
            self.assertEqual((res.type, str(res.resource.uri), res.resource.text), ("resource", "test://embedded-resource", "This is an embedded resource content."))
            mixed = r["test_multiple_content_types"].content
            self.assertEqual([c.type for c in mixed], ["text", "image", "resource"])
            self.assertEqual(json.loads(mixed[2].resource.text), {"test": "data", "value": 123})

    def test_error_is_a_tool_error_not_a_protocol_error(self) -> None:
        async def body(client, _):
            return await client.call_tool("test_error_handling", {})

        r = self.session("legacy", body)
        self.assertTrue(r.is_error)
        self.assertIn("This tool intentionally returns an error for testing", text(r))

    def test_progress_and_logging(self) -> None:
        async def body(client, answers):
            seen = []

            async def on_progress(progress, total, message):
                seen.append((progress, total, message))

            await client.set_logging_level("debug")
            p = await client.call_tool("test_tool_with_progress", {}, progress_callback=on_progress)
            lg = await client.call_tool("test_tool_with_logging", {})
            return seen, p, lg, answers.logs

        seen, p, lg, logs = self.session("legacy", body)
        self.assertEqual([(x, t) for x, t, _ in seen], [(0, 100), (50, 100), (100, 100)])
        self.assertEqual(seen[1][2], "Completed step 50 of 100")
        self.assertFalse(p.is_error)
        self.assertEqual(text(lg), "Tool with logging executed successfully")
        self.assertEqual(logs, ["Tool execution started", "Tool processing data", "Tool execution completed"])

    def test_sampling_and_elicitation_inside_a_call(self) -> None:
        async def body(client, answers):
            s = await client.call_tool("test_sampling", {"prompt": "Capital of France?"})
            e = await client.call_tool("test_elicitation", {"message": "Your answer?"})
            d = await client.call_tool("test_elicitation_sep1034_defaults", {})
            n = await client.call_tool("test_elicitation_sep1330_enums", {})
            return s, e, d, n, answers

        s, e, d, n, answers = self.session("legacy", body)
        self.assertEqual(text(s), "LLM response: Paris")
        self.assertEqual(answers.sampled, ["Capital of France?"])
        self.assertEqual(text(e), 'User response: action=accept, content={"response":"Ada"}')
        defaults = answers.elicited[1][1]["properties"]
        self.assertEqual({k: v["default"] for k, v in defaults.items()}, {"name": "John Doe", "age": 30, "score": 95.5, "status": "active", "verified": True})
        self.assertEqual(defaults["status"]["enum"], ["active", "inactive", "pending"])
        self.assertTrue(text(d).startswith("Elicitation result: action=accept"))
        enums = answers.elicited[2][1]["properties"]
        self.assertEqual(enums["titledSingle"]["oneOf"][0], {"const": "low", "title": "Low Priority"})
        self.assertEqual(enums["legacyEnum"]["enumNames"], ["Small Size", "Medium Size", "Large Size"])
        self.assertEqual(enums["titledMulti"]["items"]["anyOf"][1], {"const": "bug", "title": "Bug Fix"})
        self.assertTrue(text(n).startswith("Elicitation completed: action=accept"))

    def test_input_required_rounds(self) -> None:
        async def body(client, answers):
            names = ["elicitation", "sampling", "list_roots", "request_state", "multiple_inputs", "multi_round"]
            out = {}
            for n in names:
                try:
                    out[n] = text(await client.call_tool(f"test_input_required_result_{n}", {}))
                except Exception as e:  # noqa: BLE001 - an unanswerable round ends in the SDK's error
                    out[n] = f"error: {e}"
            out["streaming"] = text(await client.call_tool("test_streaming_elicitation", {}))
            for n in ("test_logging_tool", "test_trigger_tool_change", "test_trigger_prompt_change"):
                out[n] = text(await client.call_tool(n, {}))
            prompt = await client.get_prompt("test_input_required_result_prompt", {})
            return out, prompt, answers

        out, prompt, answers = self.session("2026-07-28", body)
        self.assertEqual(out["elicitation"], "Hello, Ada!")
        self.assertEqual(out["sampling"], "Model said: Paris")
        self.assertEqual(out["list_roots"], "Client exposed 1 root(s).")
        self.assertEqual(out["request_state"], "state-ok: confirmation received")
        self.assertEqual(out["multiple_inputs"], "All inputs received.")
        self.assertEqual(out["multi_round"], "Ada likes green.")
        self.assertEqual(out["streaming"], "confirmed")
        self.assertIn("Confirm?", [m for m, _ in answers.elicited])
        self.assertEqual(
            [out["test_logging_tool"], out["test_trigger_tool_change"], out["test_trigger_prompt_change"]],
            ["Logged.", "tool list changed", "prompt list changed"],
        )
        self.assertIn("Step 2: What is your favorite color?", [m for m, _ in answers.elicited])
        self.assertEqual(prompt.messages[0].content.text, "Use the following context: Ada")

    def test_tampered_request_state_is_refused(self) -> None:
        # The SDK's client answers rounds itself; raw requests show the sealed state and the refusal.
        async def raw():
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}", "Accept": "application/json, text/event-stream"}, timeout=30)
            meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}
            headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "test_input_required_result_tampered_state"}
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_input_required_result_tampered_state", "arguments": {}, "_meta": meta}}
            async with http:
                r1 = (await http.post(self.url, json=call, headers=headers)).json()
                state = r1["result"]["requestState"]
                self.assertNotIn("round-1", state)  # sealed, not the plaintext
                call["id"] = 2
                call["params"]["inputResponses"] = {"confirm": {"action": "accept", "content": {"ok": True}}}
                call["params"]["requestState"] = state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB")
                r2 = (await http.post(self.url, json=call, headers=headers)).json()
                call["id"] = 3
                call["params"]["requestState"] = state
                r3 = (await http.post(self.url, json=call, headers=headers)).json()
            return r1, r2, r3

        r1, r2, r3 = anyio.run(raw)
        self.assertEqual(r1["result"]["resultType"], "input_required")
        self.assertIn("error", r2, r2)
        self.assertEqual(r3["result"]["content"][0]["text"], "state-ok: round-1")

    def stateless_call(self, tool: str, capabilities: dict) -> dict:
        """One raw 2026-07-28 tools/call declaring these client capabilities; its JSON-RPC answer."""

        async def raw():
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}", "Accept": "application/json, text/event-stream"}, timeout=30)
            meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                    "io.modelcontextprotocol/clientCapabilities": capabilities}
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}, "_meta": meta}}
            headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": tool}
            async with http:
                return (await http.post(self.url, json=call, headers=headers)).json()

        return anyio.run(raw)

    def test_missing_capability_is_a_protocol_error(self) -> None:
        r = self.stateless_call("test_missing_capability", {})
        self.assertEqual(r["error"]["data"], {"requiredCapabilities": {"sampling": {}}}, r)
        r = self.stateless_call("test_missing_capability", {"sampling": {}})
        self.assertEqual(r["result"]["content"][0]["text"], "Client declared sampling capability; proceeding.")

    def test_input_requests_follow_the_declared_capabilities(self) -> None:
        r = self.stateless_call("test_input_required_result_capabilities", {"sampling": {}})
        self.assertEqual(list(r["result"]["inputRequests"]), ["sample"])
        r = self.stateless_call("test_input_required_result_capabilities", {"elicitation": {}})
        self.assertEqual(list(r["result"]["inputRequests"]), ["ask"])

    def test_resources_templates_and_subscriptions(self) -> None:
        async def body(client, _):
            listed = {str(r.uri): r for r in (await client.list_resources()).resources}
            templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
            t = await client.read_resource("test://static-text")
            b = await client.read_resource("test://static-binary")
            d = await client.read_resource("test://template/42/data")
            await client.subscribe_resource("test://watched-resource")
            await client.unsubscribe_resource("test://watched-resource")
            return listed, templates, t, b, d

        listed, templates, t, b, d = self.session("legacy", body)
        self.assertLessEqual({"test://static-text", "test://static-binary", "test://watched-resource"}, set(listed))
        self.assertEqual(listed["test://static-binary"].mime_type, "image/png")
        self.assertEqual(templates, ["test://template/{id}/data"])
        self.assertEqual(t.contents[0].text, "This is the content of the static text resource.")
        self.assertEqual(base64.b64decode(b.contents[0].blob)[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(json.loads(d.contents[0].text), {"id": "42", "templateTest": True, "data": "Data for ID: 42"})

    def test_unknown_resource_is_an_error(self) -> None:
        async def body(client, _):
            try:
                await client.read_resource("test://no-such-resource")
            except Exception as e:  # noqa: BLE001 - the SDK raises its protocol error type
                return e
            return None

        self.assertIsNotNone(self.session("2026-07-28", body))

    def test_prompts_and_completion(self) -> None:
        async def body(client, _):
            names = [p.name for p in (await client.list_prompts()).prompts]
            simple = await client.get_prompt("test_simple_prompt")
            args = await client.get_prompt("test_prompt_with_arguments", {"arg1": "a", "arg2": "b"})
            emb = await client.get_prompt("test_prompt_with_embedded_resource", {"resourceUri": "test://example-resource"})
            img = await client.get_prompt("test_prompt_with_image")
            comp = await client.complete(PromptReference(type="ref/prompt", name="test_prompt_with_arguments"), {"name": "arg1", "value": "x"})
            comp2 = await client.complete(ResourceTemplateReference(type="ref/resource", uri="test://template/{id}/data"), {"name": "id", "value": "1"})
            return names, simple, args, emb, img, comp, comp2

        for mode in ("legacy", "2026-07-28"):
            names, simple, args, emb, img, comp, comp2 = self.session(mode, body)
            for n in ("test_simple_prompt", "test_prompt_with_arguments", "test_prompt_with_embedded_resource", "test_prompt_with_image"):
                self.assertIn(n, names)
            self.assertEqual(simple.messages[0].content.text, "This is a simple prompt for testing.")
            self.assertEqual(args.messages[0].content.text, "Prompt with arguments: arg1='a', arg2='b'")
            self.assertEqual((emb.messages[0].content.type, str(emb.messages[0].content.resource.uri)), ("resource", "test://example-resource"))
            self.assertEqual([m.content.type for m in img.messages], ["image", "text"])
            self.assertEqual((comp.completion.values, comp2.completion.values), ([], []))


SUMMARY_01 = """
=== SUMMARY ===
✓ server-initialize: 1 passed, 0 failed
✗ logging-set-level: 0 passed, 1 failed
✓ json-schema-2020-12: 4 passed, 0 failed

Total: 5 passed, 1 failed
"""

SUMMARY_02 = """
=== SUMMARY ===
✓ server-stateless: 28 passed, 0 failed
✗ caching: 4 passed, 3 failed
✗ tasks-lifecycle: 2 passed, 7 failed
✓ tasks-status-notifications: 0 passed, 0 failed

Total: 34 passed, 10 failed

Not scored for 2026-07-28: 2 scenario(s) run, 1 failing. These do not affect conformance.
  ✗ tasks-lifecycle (extension)
  ✓ tasks-status-notifications (extension)
"""


class Counts(unittest.TestCase):
    def test_a_plain_run_scores_every_scenario(self) -> None:
        run = counts.parse(SUMMARY_01)
        self.assertEqual(counts.line(run), "scenarios 2/3, checks 5/6")

    def test_a_requirements_run_keeps_the_unscored_apart(self) -> None:
        run = counts.parse(SUMMARY_02)
        self.assertEqual([s.name for s in run.scored], ["server-stateless", "caching"])
        self.assertEqual(counts.line(run), "scenarios 1/2, checks 32/35; not scored: scenarios 1/2")

    def test_output_without_a_summary_is_refused(self) -> None:
        with self.assertRaisesRegex(ValueError, "no summary"):
            counts.parse("Error: connect ECONNREFUSED 127.0.0.1:1\n")


if __name__ == "__main__":
    unittest.main()
