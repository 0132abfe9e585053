"""The MCP conformance suite's reference server, written with the official `mcp` package.

    python mcp_reference_upstream.py PORT [KEY]

Serves streamable HTTP at http://127.0.0.1:PORT/mcp (PORT 0: one the kernel picks), both protocol generations (2025-11-25 with
its initialize handshake and sessions, 2026-07-28 stateless with per-request `_meta`). With KEY,
every request must carry `Authorization: Bearer KEY` (as the gateway's manifest gives an `mcp`
upstream its own key); without it the server is open, for the suite run directly against it.
Prints "listening http://127.0.0.1:PORT" (the port it got) once it accepts connections.

`@modelcontextprotocol/conformance` (0.1.x for 2025-11-25, 0.2.0 with `--requirements
2026-07-28`) calls fixed names with fixed answers, which this module provides: the tools
`test_simple_text` ... `test_input_required_result_*`, the resources `test://static-text`,
`test://static-binary`, `test://watched-resource`, the template `test://template/{id}/data`, the
prompts `test_simple_prompt` ... `test_input_required_result_prompt`, completion, logging/setLevel
and resources/(un)subscribe. `tests/python/test_mcp_reference_upstream.py` checks every one of
them with the `mcp` client, so a change of the suite's expectations shows up there first. One tool
is not the suite's: `test_update_resource` announces an update of a resource, for the gateway's
subscription tests.
"""

import base64
import json
import sys
from typing import Annotated

import anyio
import uvicorn
from pydantic import BaseModel, Field

from mcp.server import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer, RequestStateSecurity
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import Prompt, UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPError
from mcp.types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    JSONRPCMessage,
    ListRootsRequest,
    ListRootsResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    TextResourceContents,
    UnsubscribeRequestParams,
)

# The suite compares these bytes: a 1x1 PNG and a minimal WAV.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_B64 = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="

# requestState leaves the server sealed (AES-GCM) and comes back on the next round: a tampered
# echo is refused by the SDK before a tool sees it (input-required-result-tampered-state). A
# fixed key is enough for a test server; a deployment loads a secret shared by its replicas.
STATE_KEY = b"a2a-ledger-mcp-reference-upstream-request-state"

server = MCPServer(
    name="mcp-conformance-test-server",
    version="1.0.0",
    request_state_security=RequestStateSecurity(keys=[STATE_KEY]),
    log_level="WARNING",
)

subscriptions: set[str] = set()


class ReplayStore(EventStore):
    """Every SSE event kept in memory, so a client that reconnects with Last-Event-ID gets what it
    missed (server-sse-polling, SEP-1699). Event ids are increasing integers."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        self.events.append((stream_id, len(self.events) + 1, message))
        return str(len(self.events))

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        try:
            after = int(last_event_id)
        except ValueError:
            return None
        if not 1 <= after <= len(self.events):
            return None
        stream = self.events[after - 1][0]
        for sid, eid, message in self.events[after:]:
            # None marks a priming event: nothing to resend.
            if sid == stream and message is not None:
                await send_callback(EventMessage(message, str(eid)))
        return stream


# ---- content types -------------------------------------------------------------------------


@server.tool(description="Tests simple text content response")
def test_simple_text() -> str:
    return "This is a simple text response for testing."


@server.tool(description="Tests image content response")
def test_image_content() -> list[ImageContent]:
    return [ImageContent(type="image", data=PNG_B64, mime_type="image/png")]


@server.tool(description="Tests audio content response")
def test_audio_content() -> list[AudioContent]:
    return [AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")]


def _text_resource(uri: str, mime: str, text: str) -> EmbeddedResource:
    return EmbeddedResource(type="resource", resource=TextResourceContents(uri=uri, mime_type=mime, text=text))


@server.tool(description="Tests embedded resource content response")
def test_embedded_resource() -> list[EmbeddedResource]:
    return [_text_resource("test://embedded-resource", "text/plain", "This is an embedded resource content.")]


@server.tool(description="Tests response with multiple content types (text, image, resource)")
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    return [
        TextContent(type="text", text="Multiple content types test:"),
        ImageContent(type="image", data=PNG_B64, mime_type="image/png"),
        _text_resource("test://mixed-content-resource", "application/json", json.dumps({"test": "data", "value": 123})),
    ]


@server.tool(description="Tests error response handling")
def test_error_handling() -> str:
    # A ToolError's message reaches the caller (isError with this text); other exceptions are masked.
    raise ToolError("This tool intentionally returns an error for testing")


# ---- notifications during a call: logging and progress ---------------------------------------


@server.tool(description="Tests tool that emits log messages during execution")
async def test_tool_with_logging(ctx: Context) -> str:
    for step in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(step)
        await anyio.sleep(0.05)
    return "Tool with logging executed successfully"


@server.tool(description="Tests tool that reports progress notifications")
async def test_tool_with_progress(ctx: Context) -> str:
    for step in (0, 50, 100):
        await ctx.report_progress(progress=step, total=100, message=f"Completed step {step} of 100")
        await anyio.sleep(0.05)
    meta = ctx.request_context.meta if ctx.request_context else None
    return str(meta.get("progress_token") if meta else 0)


@server.tool(description="Tests SSE polling: the server closes the call's stream mid-call (SEP-1699)")
async def test_reconnection(ctx: Context) -> str:
    await ctx.info("Before disconnect")
    await ctx.close_sse_stream()
    await anyio.sleep(0.2)
    await ctx.info("After reconnect")
    return "Reconnection test completed"


# ---- requests to the client inside a call (2025-11-25: sampling and elicitation) -------------


@server.tool(description="Tests server-initiated sampling (LLM completion request)")
async def test_sampling(prompt: str, ctx: Context) -> str:
    try:
        # related_request_id sends the request on this call's stream, not on the standalone GET
        # stream, where it would be lost if the client has not opened one.
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
    except Exception as e:  # the suite reads the text, whatever went wrong
        return f"Sampling not supported or error: {e}"
    text = result.content.text if result.content.type == "text" else "No response"
    return f"LLM response: {text}"


class UserResponse(BaseModel):
    response: str = Field(description="User's response")


class Defaults(BaseModel):
    """SEP-1034: a default for every primitive type."""

    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(default="active", description="User status", json_schema_extra={"enum": ["active", "inactive", "pending"]})
    verified: bool = Field(default=True, description="Verification status")


def _choices(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"const": c, "title": t} for c, t in pairs]


class Enums(BaseModel):
    """SEP-1330: the five enum shapes of an elicitation form."""

    untitledSingle: str = Field(description="Simple enum without titles", json_schema_extra={"enum": ["active", "inactive", "pending"]})
    titledSingle: str = Field(
        description="Enum with titled options (oneOf)",
        json_schema_extra={"oneOf": _choices(("low", "Low Priority"), ("medium", "Medium Priority"), ("high", "High Priority"))},
    )
    untitledMulti: list[str] = Field(
        description="Multi-select without titles",
        json_schema_extra={"items": {"type": "string", "enum": ["read", "write", "execute"]}},
    )
    titledMulti: list[str] = Field(
        description="Multi-select with titled options",
        json_schema_extra={"items": {"anyOf": _choices(("feature", "New Feature"), ("bug", "Bug Fix"), ("docs", "Documentation"))}},
    )
    legacyEnum: str = Field(
        description="Legacy enum with enumNames",
        json_schema_extra={"enum": ["small", "medium", "large"], "enumNames": ["Small Size", "Medium Size", "Large Size"]},
    )


async def _elicit(ctx: Context, message: str, schema: type[BaseModel], label: str) -> str:
    try:
        result = await ctx.elicit(message=message, schema=schema)
    except Exception as e:
        return f"Elicitation not supported or error: {e}"
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"{label}: action={result.action}, content={content}"


@server.tool(description="Tests server-initiated elicitation (user input request)")
async def test_elicitation(message: str, ctx: Context) -> str:
    return await _elicit(ctx, message, UserResponse, "User response")


@server.tool(description="Tests elicitation with default values for all primitive types (SEP-1034)")
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    return await _elicit(ctx, "Please provide user information", Defaults, "Elicitation result")


@server.tool(description="Tests elicitation with enum schema variations per SEP-1330")
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    return await _elicit(ctx, "Please select values using different enum schema types", Enums, "Elicitation completed")


@server.tool(description="Requires the client's sampling capability (a JSON-RPC error without it)")
async def test_missing_capability(ctx: Context) -> str:
    caps = ctx.session.client_capabilities
    if caps is None or caps.sampling is None:
        # An MCPError is not folded into isError: the caller sees a protocol error with the data.
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message="This tool requires the client 'sampling' capability",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return "Client declared sampling capability; proceeding."


@server.tool(description="Mirrors its region argument (SEP-2243: Mcp-Param-Region must match it)")
def test_x_mcp_header(
    region: Annotated[str, Field(description="Mirrored into the Mcp-Param-Region header", json_schema_extra={"x-mcp-header": "Region"})] = "<none>",
) -> str:
    return f"region={region}"


# ---- input_required rounds (2026-07-28, SEP-2322) ------------------------------------------


def _form(message: str, **props: str) -> ElicitRequest:
    schema = {"type": "object", "properties": {k: {"type": t} for k, t in props.items()}, "required": list(props)}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(text: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def _elicited(answer: object, field: str) -> object:
    return answer.content.get(field) if isinstance(answer, ElicitResult) and answer.content else None


@server.tool(description="Tests InputRequiredResult with a single elicitation request")
async def test_input_required_result_elicitation(ctx: Context) -> str | InputRequiredResult:
    answers = ctx.input_responses or {}
    if "user_name" in answers:
        return f"Hello, {_elicited(answers['user_name'], 'name') or '?'}!"
    return InputRequiredResult(input_requests={"user_name": _form("What is your name?", name="string")})


@server.tool(description="Tests InputRequiredResult with a single sampling request")
async def test_input_required_result_sampling(ctx: Context) -> str | InputRequiredResult:
    answers = ctx.input_responses or {}
    if "capital_question" in answers:
        answer = answers["capital_question"]
        ok = isinstance(answer, CreateMessageResult) and answer.content.type == "text"
        return f"Model said: {answer.content.text if ok else '?'}"
    return InputRequiredResult(input_requests={"capital_question": _sample("What is the capital of France?", 100)})


@server.tool(description="Tests InputRequiredResult with a single roots/list request")
async def test_input_required_result_list_roots(ctx: Context) -> str | InputRequiredResult:
    answers = ctx.input_responses or {}
    if "client_roots" in answers:
        answer = answers["client_roots"]
        return f"Client exposed {len(answer.roots) if isinstance(answer, ListRootsResult) else 0} root(s)."
    return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})


@server.tool(description="Tests requestState round-tripping in the InputRequiredResult flow")
async def test_input_required_result_request_state(ctx: Context) -> str | InputRequiredResult:
    if "confirm" in (ctx.input_responses or {}) and ctx.request_state == "request-state-nonce":
        return "state-ok: confirmation received"
    return InputRequiredResult(input_requests={"confirm": _form("Please confirm", ok="boolean")}, request_state="request-state-nonce")


@server.tool(description="Tests InputRequiredResult carrying elicitation, sampling and roots requests together")
async def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequiredResult:
    if {"user_name", "greeting", "client_roots"} <= (ctx.input_responses or {}).keys():
        return "All inputs received."
    return InputRequiredResult(
        input_requests={
            "user_name": _form("What is your name?", name="string"),
            "greeting": _sample("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        },
        request_state="multiple-inputs",
    )


@server.tool(description="Tests a three-round InputRequiredResult flow with evolving requestState")
async def test_input_required_result_multi_round(ctx: Context) -> str | InputRequiredResult:
    state = json.loads(ctx.request_state) if ctx.request_state else {"round": 0}
    answers = ctx.input_responses or {}
    if state["round"] == 1 and "step1" in answers:
        return InputRequiredResult(
            input_requests={"step2": _form("Step 2: What is your favorite color?", color="string")},
            request_state=json.dumps({"round": 2, "name": _elicited(answers["step1"], "name")}),
        )
    if state["round"] == 2 and "step2" in answers:
        return f"{state.get('name')} likes {_elicited(answers['step2'], 'color')}."
    # The first round, or an answer missing or out of order: ask from the start.
    return InputRequiredResult(
        input_requests={"step1": _form("Step 1: What is your name?", name="string")},
        request_state=json.dumps({"round": 1}),
    )


@server.tool(description="Tests that a tampered requestState echo is refused")
async def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequiredResult:
    if ctx.request_state is None:
        return InputRequiredResult(input_requests={"confirm": _form("Please confirm", ok="boolean")}, request_state="round-1")
    return f"state-ok: {ctx.request_state}"


@server.tool(description="Tests that inputRequests only include methods the client declared")
async def test_input_required_result_capabilities(ctx: Context) -> InputRequiredResult:
    caps = ctx.client_capabilities
    requests: dict[str, InputRequest] = {}
    if caps is None or caps.sampling is not None:
        requests["sample"] = _sample("Say hello", 50)
    if caps is None or caps.elicitation is not None:
        requests["ask"] = _form("What is your name?", name="string")
    return InputRequiredResult(input_requests=requests, request_state="capability-gated")


# ---- diagnostics of the stateless generation (2026-07-28, SEP-2575) -------------------------


@server.tool(description="Elicits through an InputRequiredResult: never a server-initiated request on the stream")
async def test_streaming_elicitation(ctx: Context) -> str | InputRequiredResult:
    if "confirm" in (ctx.input_responses or {}):
        return "confirmed"
    return InputRequiredResult(input_requests={"confirm": _form("Confirm?", ok="boolean")})


@server.tool(description="Logs one message; it goes out only when the request's _meta sets a log level")
async def test_logging_tool(ctx: Context) -> str:
    await ctx.info("test_logging_tool executed")
    return "Logged."


def _dynamic() -> str:
    """Registered and removed at once by the trigger tools."""
    return "dynamic"


@server.tool(description="Changes the tool list and announces it to subscriptions/listen streams")
async def test_trigger_tool_change(ctx: Context) -> str:
    server.add_tool(_dynamic, name="test_dynamic_tool")
    server.remove_tool("test_dynamic_tool")
    await ctx.notify_tools_changed()
    return "tool list changed"


@server.tool(description="Changes the prompt list and announces it to subscriptions/listen streams")
async def test_trigger_prompt_change(ctx: Context) -> str:
    server.add_prompt(Prompt.from_function(_dynamic, name="test_dynamic_prompt", description="dynamic"))
    server.remove_prompt("test_dynamic_prompt")
    await ctx.notify_prompts_changed()
    return "prompt list changed"


# ---- JSON Schema 2020-12 (SEP-1613): tools/list must carry the schema untouched ---------------

SCHEMA_2020_12 = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@server.tool(name="json_schema_2020_12_tool", description="Tool with JSON Schema 2020-12 features (SEP-1613)")
def json_schema_2020_12_tool() -> str:
    return "json_schema_2020_12_tool"


# MCPServer derives a tool's schema from its signature and has no public override: the raw
# schema replaces the derived one in its tool table.
server._tool_manager._tools["json_schema_2020_12_tool"].parameters = SCHEMA_2020_12


# ---- resources ------------------------------------------------------------------------------


@server.resource("test://static-text", name="static-text", title="Static Text Resource", mime_type="text/plain")
def static_text() -> str:
    """A static text resource for testing"""
    return "This is the content of the static text resource."


@server.resource("test://static-binary", name="static-binary", title="Static Binary Resource", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource (image) for testing"""
    return base64.b64decode(PNG_B64)


@server.resource("test://template/{id}/data", name="template", title="Resource Template", mime_type="application/json")
def template(id: str) -> str:
    """A resource template with parameter substitution"""
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@server.resource("test://watched-resource", name="watched-resource", title="Watched Resource", mime_type="text/plain")
def watched() -> str:
    """A resource that can be subscribed to for updates"""
    return "Watched resource content"


@server.tool(description="Announces an update of a resource: to subscriptions/listen streams naming it, and over "
             "2025-11-25 to the calling session when it subscribed to it with resources/subscribe")
async def test_update_resource(uri: str, ctx: Context) -> str:
    await ctx.notify_resource_updated(uri)
    if uri in subscriptions:
        await ctx.session.send_resource_updated(uri)
    return f"updated {uri}"


async def subscribe(ctx: ServerRequestContext, params: SubscribeRequestParams) -> EmptyResult:
    subscriptions.add(str(params.uri))
    return EmptyResult()


async def unsubscribe(ctx: ServerRequestContext, params: UnsubscribeRequestParams) -> EmptyResult:
    subscriptions.discard(str(params.uri))
    return EmptyResult()


async def set_level(ctx: ServerRequestContext, params: SetLevelRequestParams) -> EmptyResult:
    return EmptyResult()


# MCPServer has no public registration for these three methods; the low-level server does, and
# registering them makes it declare resources.subscribe and logging in its capabilities.
server._lowlevel_server.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
server._lowlevel_server.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
server._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)


# ---- prompts and completion -----------------------------------------------------------------


@server.prompt(title="Simple Test Prompt")
def test_simple_prompt() -> list[UserMessage]:
    """A simple prompt without arguments"""
    return [UserMessage(role="user", content=TextContent(type="text", text="This is a simple prompt for testing."))]


@server.prompt(title="Prompt With Arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    """A prompt with required arguments"""
    text = f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
    return [UserMessage(role="user", content=TextContent(type="text", text=text))]


@server.prompt(title="Prompt With Embedded Resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
    """A prompt that includes an embedded resource"""
    return [
        UserMessage(role="user", content=_text_resource(resourceUri, "text/plain", "Embedded resource content for testing.")),
        UserMessage(role="user", content=TextContent(type="text", text="Please process the embedded resource above.")),
    ]


@server.prompt(title="Prompt With Image")
def test_prompt_with_image() -> list[UserMessage]:
    """A prompt that includes image content"""
    return [
        UserMessage(role="user", content=ImageContent(type="image", data=PNG_B64, mime_type="image/png")),
        UserMessage(role="user", content=TextContent(type="text", text="Please analyze the image above.")),
    ]


@server.prompt()
async def test_input_required_result_prompt(ctx: Context) -> list[UserMessage] | InputRequiredResult:
    """Tests InputRequiredResult from prompts/get (a request that is not a tool call)"""
    answers = ctx.input_responses or {}
    if "user_context" in answers:
        text = f"Use the following context: {_elicited(answers['user_context'], 'context') or '?'}"
        return [UserMessage(role="user", content=TextContent(type="text", text=text))]
    return InputRequiredResult(input_requests={"user_context": _form("What context should the prompt use?", context="string")})


@server.completion()
async def complete(
    ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: CompletionContext | None
) -> Completion:
    # The suite checks the shape of the answer, not its values.
    return Completion(values=[], total=0, has_more=False)


class RequireKey:
    """ASGI middleware: 401 unless the request carries the upstream's own key."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, f"Bearer {key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            body = b'{"error": "wrong or missing upstream key"}'
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def app(key: str | None = None):
    # retry_interval: SSE clients reconnect after 100 ms when test_reconnection closes a stream.
    asgi = server.streamable_http_app(streamable_http_path="/mcp", event_store=ReplayStore(), retry_interval=100, host="127.0.0.1")
    return RequireKey(asgi, key) if key else asgi


async def main() -> None:
    port = int(sys.argv[1])
    key = sys.argv[2] if len(sys.argv) > 2 else None
    web = uvicorn.Server(uvicorn.Config(app(key), host="127.0.0.1", port=port, log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(web.serve)
        while not web.started:
            await anyio.sleep(0.02)
        # With port 0 the kernel picked one: say which.
        port = web.servers[0].sockets[0].getsockname()[1]
        print(f"listening http://127.0.0.1:{port}", flush=True)


if __name__ == "__main__":
    anyio.run(main)
