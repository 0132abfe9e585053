"""Input rounds through the gateway's /mcp with the official `mcp` client (2.x): an upstream that
asks its caller for input (elicitation, sampling, roots) gets the answer of the gateway's caller.

    python mcp_rounds_client.py MCP_URL TOKEN MODE PREFIX [ASK_SKILL]

MODE = legacy (2025-11-25: the gateway asks on the call's stream) | 2026-07-28 (the gateway
answers with an InputRequiredResult and a requestState it sealed, and the client retries).
PREFIX is the manifest's prefix of the conformance reference server (mcp_reference_upstream.py)
behind the gateway; ASK_SKILL, when given, is a skill of an upstream that asks in words (the demo
agent's `ask`), which a 2026-07-28 caller answers as one elicitation.

Over 2025-11-25 also calls tools whose server asks back on the call's stream (sampling,
elicitation), through the session the gateway opens for this caller at the server.

Calls, answering each request as a person would (name "Ada", colour "teal", sampling "Paris",
one root), and checks the tool's answers; then, over 2026-07-28 only, starts one more round
without answering it, has a tampered requestState refused (-32602), and leaves that run waiting
for the caller to answer over A2A; the same for a prompt get that needs input (its tampered state,
a tool's state and a replayed one refused, its retry continuing the run, one more left waiting,
whose state a resource read and a tool call are refused). A 2025 caller without an elicitation capability is not asked:
the server, seeing the caller's capabilities, answers that it cannot ask. Prints as its last line JSON: {"runs": {name: run}, "waiting": run, "prompt_waiting": run, "asked": [...]}.
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
        content = {k: {"name": "Ada", "color": "teal", "text": "Ada", "context": "Ada"}.get(k, "yes") for k in props}
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
    prompt_waiting = None
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    client = Client(streamable_http_client(url, http_client=http), mode=mode, elicitation_callback=person.elicitation,
                    sampling_callback=person.sampling, list_roots_callback=person.roots)
    async with http, client:
        if mode != "legacy":
            # 2026-07-28 servers ask through InputRequiredResult; a 2025-11-25 caller's calls go
            # to a 2025-11-25 session of the server, where these tools are not offered as such.
            r = await client.call_tool(prefix + "test_input_required_result_elicitation", {})
            check(text(r) == "Hello, Ada!", f"{mode}: an elicitation answered through the gateway: {text(r)}")
            runs["elicitation"] = run_of(r)

            r = await client.call_tool(prefix + "test_input_required_result_multi_round", {})
            check(text(r) == "Ada likes teal.", f"{mode}: two rounds in one run: {text(r)}")
            runs["multi_round"] = run_of(r)

            r = await client.call_tool(prefix + "test_input_required_result_multiple_inputs", {})
            check(text(r) == "All inputs received.", f"{mode}: elicitation, sampling and roots at once: {text(r)}")
            runs["multiple_inputs"] = run_of(r)

        # A prompt get that needs input (a request that is not a tool call): asked and answered
        # like a tool's round, in the caller's generation.
        prompt = prefix + "test_input_required_result_prompt"
        r = await client.get_prompt(prompt)
        said = r.messages[0].content.text if r.messages else repr(r)
        check(said == "Use the following context: Ada", f"{mode}: a prompt's round answered: {said}")
        runs["prompt"] = run_of(r)

        if ask_skill:
            r = await client.call_tool(ask_skill, {})
            check("Ada" in text(r), f"{mode}: an upstream asking in words, answered as an elicitation: {text(r)}")
            runs["in_words"] = run_of(r)

        if mode == "legacy":
            # A server that asks back on the call's stream (its own 2025-11-25 session for this
            # caller's session, declaring the caller's capabilities): each request is a round.
            r = await client.call_tool(prefix + "test_sampling", {"prompt": "Capital of France?"})
            check(text(r) == "LLM response: Paris", f"sampling asked back and answered: {text(r)}")
            runs["back_sampling"] = run_of(r)
            r = await client.call_tool(prefix + "test_elicitation", {"message": "Who are you?"})
            check(text(r) == 'User response: action=accept, content={"response":"yes"}',
                  f"elicitation asked back and answered: {text(r)}")
            runs["back_elicitation"] = run_of(r)

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
            # A prompt's round by hand: the gateway's state, tampered or another request's, is
            # refused; its own continues the run, and a second round left open waits for A2A.
            asked = await client.session.get_prompt(prompt, allow_input_required=True)
            check(isinstance(asked, InputRequiredResult) and "user_context" in (asked.input_requests or {}),
                  f"a prompt's InputRequiredResult with the upstream's request: {asked}")
            prompt_state = asked.request_state or ""
            prompt_tampered = prompt_state[:-2] + ("AA" if not prompt_state.endswith("AA") else "BB")
            context = {"user_context": ElicitResult(action="accept", content={"context": "Grace"})}
            for bad, what in [(prompt_tampered, "tampered"), (state, "another request's")]:
                try:
                    await client.session.get_prompt(prompt, input_responses=context, request_state=bad,
                                                    allow_input_required=True)
                    check(False, f"a {what} requestState is refused for a prompt")
                except MCPError as e:
                    check(e.code == -32602, f"a {what} requestState is refused for a prompt with -32602: {e.code}")
            done = await client.session.get_prompt(prompt, input_responses=context, request_state=prompt_state,
                                                   allow_input_required=True)
            said = done.messages[0].content.text if getattr(done, "messages", None) else repr(done)
            check(said == "Use the following context: Grace", f"a prompt's retry continues its run: {said}")
            runs["prompt_retry"] = run_of(done)
            check(runs["prompt_retry"] == (asked.meta or {}).get("a2a-ledger/run"), "the retry's run is the round's")
            try:
                await client.session.get_prompt(prompt, input_responses=context, request_state=prompt_state,
                                                allow_input_required=True)
                check(False, "a prompt's round is answered once")
            except MCPError as e:
                check(e.code == -32602, f"a prompt's round answered again is refused with -32602: {e.code}")
            left = await client.session.get_prompt(prompt, allow_input_required=True)
            prompt_waiting = (left.meta or {}).get("a2a-ledger/run")
            # Its state sent with a resource read or a tool call: refused, and the run waits on.
            try:
                await client.session.read_resource("test://static-text", input_responses=context,
                                                   request_state=left.request_state, allow_input_required=True)
                check(False, "a prompt's state is refused for a read")
            except MCPError as e:
                check(e.code == -32602 and "not a read of" in e.message,
                      f"a prompt's state is refused for a read with -32602: {e.code} {e.message}")
            try:
                await client.session.call_tool(prefix + "test_input_required_result_elicitation", {},
                                               input_responses=context, request_state=left.request_state,
                                               allow_input_required=True)
                check(False, "a prompt's state is refused for a tool call")
            except MCPError as e:
                check(e.code == -32602 and "not a call of" in e.message,
                      f"a prompt's state is refused for a tool call with -32602: {e.code} {e.message}")

            # Sent back without answers: asked the same again.
            again = await client.session.call_tool(prefix + "test_input_required_result_elicitation", {},
                                                   request_state=state, allow_input_required=True)
            check(isinstance(again, InputRequiredResult) and (again.meta or {}).get("a2a-ledger/run") == waiting,
                  "a retry without answers is asked again")

    if mode == "legacy":
        # A caller that declared no elicitation: its session at the server declares none either,
        # so the server's tool finds it cannot ask, as it would if called directly.
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as bare:
            r = await bare.call_tool(prefix + "test_elicitation", {"message": "Who are you?"})
            check(text(r).startswith("Elicitation not supported or error")
                  and "did not declare the elicitation capability" in text(r),
                  f"the server was refused with the gateway's -32021 and its tool decided: {text(r)}")
            runs["lacking"] = run_of(r)

    print(json.dumps({"runs": runs, "waiting": waiting, "prompt_waiting": prompt_waiting, "asked": person.asked}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, *sys.argv[1:6]))
