"""A real A2A client (a2a-sdk 1.3) against the gateway's demo agent, over JSON-RPC and HTTP+JSON.

    python gateway_client.py BASE_URL TOKEN LOG_JSON

Covers the card, send, stream, get, list, cancel, subscribe and the error cases. Every run's
receipt is fetched from /runs/{id}/receipt and verified by the independent verifier
(a2a_verify.py, written from SPEC alone), its kinds checked against what happened. The last line
of output is JSON: {"runs": [{"id", "status", "kinds"}]} for the caller to verify again.
Exit 0 when every check passed.
"""

import asyncio
import json
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.helpers import get_artifact_text, get_message_text
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskNotCancelableError,
    TaskNotFoundError,
    TaskState,
    UnsupportedOperationError,
)
from a2a.utils.constants import TransportProtocol
from a2a.utils.errors import A2AError

import a2a_verify

FAILS: list[str] = []
RUNS: list[dict] = []  # {"id", "status", "kinds" (expected; None = check only the ends)}

A, ST, PR, AR, SE = "task.accepted", "task.status", "skill.progress", "artifact.added", "receipt.sealed"


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def msg(text, task_id="", context_id=""):
    return Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)],
                   task_id=task_id, context_id=context_id)


def req(text, task_id="", context_id="", now=False):
    return SendMessageRequest(message=msg(text, task_id, context_id),
                              configuration=SendMessageConfiguration(return_immediately=now))


async def send_once(client, r):
    out = [ev async for ev in client.send_message(r)]
    assert len(out) == 1, out
    return out[0]


async def expect_error(coro, exc_type, what):
    try:
        await coro
    except A2AError as e:
        check(isinstance(e, exc_type), f"{what} raises {exc_type.__name__} (got {type(e).__name__}: {e})")
        return
    check(False, f"{what} raised nothing")


async def run_transport(card, binding, http):
    print(f"== {binding}", flush=True)

    def client(streaming):
        cfg = ClientConfig(streaming=streaming, httpx_client=http, supported_protocol_bindings=[binding],
                           use_client_preference=True)
        return ClientFactory(cfg).create(card)

    c, s = client(False), client(True)

    ev = await send_once(c, req("echo hello"))
    t = ev.task
    check(t.status.state == TaskState.TASK_STATE_COMPLETED, "echo completes")
    check(get_artifact_text(t.artifacts[0]) == "echo: echo hello", "echo artifact")
    check(t.metadata["receipt"].endswith(f"/runs/{t.id}/receipt"), "the task names its receipt")
    RUNS.append({"id": t.id, "status": "completed", "kinds": [A, ST, AR, "task.completed", SE]})
    echo_id, echo_ctx = t.id, t.context_id

    kinds, states, tid = [], [], None
    async for ev in s.send_message(req("slow")):
        k = ev.WhichOneof("payload")
        kinds.append(k)
        if k == "task":
            tid = ev.task.id
        if k == "status_update":
            states.append(ev.status_update.status.state)
    check(kinds[0] == "task" and kinds.count("status_update") == 7, f"stream: task first, then 7 updates ({kinds})")
    check(states[-1] == TaskState.TASK_STATE_COMPLETED, "stream ends completed")
    RUNS.append({"id": tid, "status": "completed", "kinds": [A, ST, ST, PR, PR, PR, PR, "task.completed", SE]})

    got = await c.get_task(GetTaskRequest(id=echo_id, history_length=1))
    check(got.id == echo_id and len(got.history) <= 1, "get_task with history_length")
    lst = await c.list_tasks(ListTasksRequest(context_id=echo_ctx, page_size=10, include_artifacts=True))
    check([x.id for x in lst.tasks] == [echo_id] and lst.total_size == 1, "list_tasks by context")

    ev = await send_once(c, req("ask"))
    check(ev.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, "ask waits for input")
    ask = ev.task
    ev = await send_once(c, req("Grace", task_id=ask.id, context_id=ask.context_id))
    check(ev.task.status.state == TaskState.TASK_STATE_COMPLETED, "the answer completes it")
    check(get_message_text(ev.task.status.message) == "Hello, Grace!", "greeting")
    RUNS.append({"id": ask.id, "status": "completed", "kinds": [A, ST, ST, ST, ST, "task.completed", SE]})

    ev = await send_once(c, req("report"))
    check([a.name for a in ev.task.artifacts] == ["report.md", "data.json"], "report artifacts")
    RUNS.append({"id": ev.task.id, "status": "completed", "kinds": [A, ST, PR, AR, AR, "task.completed", SE]})

    ev = await send_once(c, req("fail"))
    check(ev.task.status.state == TaskState.TASK_STATE_FAILED, "fail fails")
    RUNS.append({"id": ev.task.id, "status": "failed", "kinds": [A, ST, ST, "task.failed", SE]})

    ev = await send_once(c, req("slow", now=True))
    slow = ev.task
    canceled = await c.cancel_task(CancelTaskRequest(id=slow.id))
    check(canceled.status.state == TaskState.TASK_STATE_CANCELED, "cancel")
    RUNS.append({"id": slow.id, "status": "canceled", "kinds": None})

    ev = await send_once(c, req("slow", now=True))
    sub_id = ev.task.id
    kinds = []
    async for ev in s.subscribe(SubscribeToTaskRequest(id=sub_id)):
        kinds.append(ev.WhichOneof("payload"))
    check(kinds and kinds[0] == "task", f"subscribe: the snapshot first ({kinds})")
    final = await c.get_task(GetTaskRequest(id=sub_id))
    check(final.status.state == TaskState.TASK_STATE_COMPLETED, "the subscribed task completed")
    RUNS.append({"id": sub_id, "status": "completed", "kinds": [A, ST, ST, PR, PR, PR, PR, "task.completed", SE]})

    await expect_error(c.get_task(GetTaskRequest(id="no-such-task")), TaskNotFoundError, "get unknown")
    await expect_error(c.cancel_task(CancelTaskRequest(id="no-such-task")), TaskNotFoundError, "cancel unknown")
    await expect_error(c.cancel_task(CancelTaskRequest(id=echo_id)), TaskNotCancelableError, "cancel ended")
    await expect_error(send_once(c, req("hi", task_id="no-such-task")), TaskNotFoundError, "send to unknown task")

    async def drain(it):
        return [e async for e in it]

    await expect_error(drain(s.subscribe(SubscribeToTaskRequest(id=echo_id))), UnsupportedOperationError,
                       "subscribe to an ended task")
    await c.close()
    await s.close()


async def verify_receipts(http, base, log):
    for r in RUNS:
        resp = await http.get(f"{base}/runs/{r['id']}/receipt", params={"wait": "10"})
        check(resp.status_code == 200, f"receipt of {r['id']} served ({resp.status_code})")
        receipt = resp.json()
        out = a2a_verify.verify_receipt(receipt, log)
        check(out["status"] == r["status"], f"receipt {r['id']}: {out['status']} == {r['status']}")
        kinds = [a2a_verify.decode_entry(a2a_verify.b64decode_strict(e["entry"], "entry")).kind
                 for e in receipt["entries"]]
        want = r["kinds"]
        if want is None:
            check(kinds[0] == A and kinds[-2:] == ["task.canceled", SE], f"canceled run kinds {kinds}")
        else:
            check(kinds == want, f"kinds of {r['id']}: {kinds}")
        r["kinds"] = kinds


async def main(base, token, log_path):
    log = a2a_verify.LogDescriptor.from_json(json.load(open(log_path)))
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        card = await A2ACardResolver(http, base).get_agent_card()
        check(card.supported_interfaces[0].url == base, "the card points at the gateway")
        check(card.capabilities.streaming, "streaming declared")
        for binding in (TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON):
            await run_transport(card, binding, http)
        await verify_receipts(http, base, log)
    print(json.dumps({"runs": RUNS}))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
