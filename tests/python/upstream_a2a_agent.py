"""An upstream A2A 1.0 agent written with a2a-sdk, for the gateway's tests.

    python upstream_a2a_agent.py PORT

Serves its card, JSON-RPC at / and HTTP+JSON at /rest, and prints "listening http://127.0.0.1:PORT"
once it accepts connections. Behaviour by the first word of the user's text:
  echo <x>   artifact "echo" with text <x>, then completed
  slow [s]   working "step 1/2", sleep s (default 1.5), working "step 2/2", sleep, artifact, completed
  ask        input_required; the next message on the task completes it with artifact "answer"
  fail       failed with a status message
  anything   completed, echoing the whole text
It records the headers of every request in /tmp-free memory and serves them at GET /seen-headers,
so a test can check the gateway never forwards its caller's credentials.
"""

import argparse
import asyncio
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from a2a.helpers import get_message_text, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, TaskState

SEEN_HEADERS: list[dict] = []


class Executor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = get_message_text(context.message).strip() if context.message else ""
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        up = TaskUpdater(event_queue, task.id, task.context_id)
        if task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            await up.add_artifact([new_text_part(f"you answered: {text}")], name="answer")
            await up.complete(up.new_agent_message([new_text_part("thanks")]))
            return
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word == "echo":
            await up.add_artifact([new_text_part(rest)], name="echo")
            await up.complete()
        elif word == "slow":
            delay = float(rest) if rest.strip() else 1.5
            await up.start_work(up.new_agent_message([new_text_part("step 1/2")]))
            await asyncio.sleep(delay)
            await up.start_work(up.new_agent_message([new_text_part("step 2/2")]))
            await asyncio.sleep(delay)
            await up.add_artifact([new_text_part("slow done")], name="slow-result")
            await up.complete()
        elif word == "ask":
            await up.requires_input(up.new_agent_message([new_text_part("what is your answer?")]))
        elif word == "fail":
            await up.failed(up.new_agent_message([new_text_part("failed on purpose")]))
        else:
            await up.add_artifact([new_text_part(text)], name="echo")
            await up.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        up = TaskUpdater(event_queue, context.task_id, task.context_id if task else context.context_id)
        await up.cancel(up.new_agent_message([new_text_part("canceled by request")]))


def build_app(base: str) -> Starlette:
    card = AgentCard(
        name="Upstream Test Agent",
        description="echo / slow / ask / fail",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=base + "/", protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=base + "/rest", protocol_binding="HTTP+JSON", protocol_version="1.0"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="relay", name="Relay", description="echo / slow / ask / fail", tags=["test"])],
    )
    handler = DefaultRequestHandler(agent_executor=Executor(), task_store=InMemoryTaskStore(), agent_card=card)

    async def seen(_request):
        return JSONResponse(SEEN_HEADERS)

    app = Starlette(
        routes=[Route("/seen-headers", seen)]
        + create_agent_card_routes(card)
        + create_jsonrpc_routes(handler, rpc_url="/")
        + create_rest_routes(handler, path_prefix="/rest")
    )

    async def record_headers(scope, receive, send):
        if scope["type"] == "http" and scope["path"] != "/seen-headers":
            seen = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            seen[":method"] = scope["method"]
            SEEN_HEADERS.append(seen)
        await app(scope, receive, send)

    return record_headers


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    a = ap.parse_args()
    base = f"http://127.0.0.1:{a.port}"
    server = uvicorn.Server(uvicorn.Config(build_app(base), host="127.0.0.1", port=a.port, log_level="warning"))

    async def run() -> None:
        serve = asyncio.create_task(server.serve())
        while not server.started:
            if serve.done():
                serve.result()
                return
            await asyncio.sleep(0.05)
        print(f"listening {base}", flush=True)
        await serve

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
