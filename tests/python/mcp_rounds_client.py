"""Input rounds through the gateway's /mcp with the official `mcp` client (2.x): an upstream that
asks its caller for input (elicitation, sampling, roots) gets the answer of the gateway's caller.

    python mcp_rounds_client.py MCP_URL TOKEN MODE PREFIX [ASK_SKILL]

MODE = legacy (2025-11-25: the gateway asks on the call's stream) | 2026-07-28 (the gateway
answers with an InputRequiredResult and a requestState it sealed, and the client retries).
PREFIX is the manifest's prefix of the conformance reference server (mcp_reference_upstream.py)
behind the gateway; ASK_SKILL, when given, is a skill of an upstream that asks in words (the demo
agent's `ask`), which a 2026-07-28 caller answers as one elicitation.

Calls, answering each request as a person would (name "Ada", colour "teal", sampling "Paris",
one root), and checks the tool's answers; then, over 2026-07-28 only, starts one more round
without answering it, has a tampered requestState refused (-32602), and leaves that run waiting
for the caller to answer over A2A. Without an elicitation capability, a 2025 caller is refused
with -32021. Prints as its last line JSON: {"runs": {name: run}, "waiting": run, "asked": [...]}.
Exit 0 when every check passed.
"""

import json
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CreateMessageResult, ElicitResult, InputRequiredResult, ListRootsResult, Root, TextContent

FAILS: list[str] = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


class Person:
    """What the caller answers, and what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def elicitation(self, context, params) -> ElicitResult:
        self.asked.append(params.message)
        props = params.requested_schema.get("properties", {})
        content = {k: {"name": "Ada", "color": "teal", "text": "Ada"}.get(k, "yes") for k in props}
        return ElicitResult(action="accept", content=content)

    async def sampling(self, context, params) -> CreateMessageResult:
        self.asked.append(params.messages[0].content.text)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="Paris"), model="m")

    async def roots(self, context) -> ListRootsResult:
        self.asked.append("roots")
        return ListRootsResult(roots=[Root(uri="file:///work", name="work")])


def text(r) -> str:
    return r.content[0].text if r.content and r.content[0].type == "text" else repr(r.content)


def run_of(r) -> str | None:
    return (r.meta or {}).get("a2a-ledger/run")


async def main(url: str, token: str, mode: str, prefix: str, ask_skill: str | None = None) -> int:
    person = Person()
    runs: dict[str, str | None] = {}
    waiting = None
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = Client(streamable_http_client(url, http_client=http), mode=mode, elicitation_callback=person.elicitation,
                    sampling_callback=person.sampling, list_roots_callback=person.roots)
    async with http, client:
        r = await client.call_tool(prefix + "test_input_required_result_elicitation", {})
        check(text(r) == "Hello, Ada!", f"{mode}: an elicitation answered through the gateway: {text(r)}")
        runs["elicitation"] = run_of(r)

        r = await client.call_tool(prefix + "test_input_required_result_multi_round", {})
        check(text(r) == "Ada likes teal.", f"{mode}: two rounds in one run: {text(r)}")
        runs["multi_round"] = run_of(r)

        r = await client.call_tool(prefix + "test_input_required_result_multiple_inputs", {})
        check(text(r) == "All inputs received.", f"{mode}: elicitation, sampling and roots at once: {text(r)}")
        runs["multiple_inputs"] = run_of(r)

        if ask_skill:
            r = await client.call_tool(ask_skill, {})
            check("Ada" in text(r), f"{mode}: an upstream asking in words, answered as an elicitation: {text(r)}")
            runs["in_words"] = run_of(r)

        if mode != "legacy":
            # The round by hand: the gateway's sealed state, tampered, is refused; the run waits on.
            first = await client.session.call_tool(prefix + "test_input_required_result_elicitation", {},
                                                   allow_input_required=True)
            check(isinstance(first, InputRequiredResult) and "user_name" in (first.input_requests or {}),
                  f"an InputRequiredResult with the upstream's request: {first}")
            waiting = (first.meta or {}).get("a2a-ledger/run")
            state = first.request_state or ""
            check(bool(state) and "a2a-ledger" not in state, "a requestState sealed by the gateway")
            tampered = state[:-2] + ("AA" if not state.endswith("AA") else "BB")
            answers = {"user_name": ElicitResult(action="accept", content={"name": "Mallory"})}
            try:
                await client.session.call_tool(prefix + "test_input_required_result_elicitation", {},
                                               input_responses=answers, request_state=tampered,
                                               allow_input_required=True)
                check(False, "a tampered requestState is refused")
            except MCPError as e:
                check(e.code == -32602, f"a tampered requestState is refused with -32602: {e.code} {e.message}")
            # Sent back without answers: asked the same again.
            again = await client.session.call_tool(prefix + "test_input_required_result_elicitation", {},
                                                   request_state=state, allow_input_required=True)
            check(isinstance(again, InputRequiredResult) and (again.meta or {}).get("a2a-ledger/run") == waiting,
                  "a retry without answers is asked again")

    if mode == "legacy":
        # A caller that cannot be asked: the gateway says which capability is lacking.
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as bare:
            try:
                await bare.call_tool(prefix + "test_input_required_result_elicitation", {})
                check(False, "a caller without elicitation is refused")
            except MCPError as e:
                data = e.data if isinstance(e.data, dict) else {}
                check(e.code == -32021 and data.get("requiredCapabilities") == {"elicitation": {}},
                      f"-32021 naming the lacking capability: {e.code} {e.data}")
                runs["lacking"] = data.get("a2a-ledger/run")

    print(json.dumps({"runs": runs, "waiting": waiting, "asked": person.asked}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, *sys.argv[1:6]))
