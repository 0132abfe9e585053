"""A real A2A client (a2a-sdk 1.3) across a gateway crash: tasks made before, read after.

    python restart_client.py before BASE_URL TOKEN STATE_JSON
    python restart_client.py after  BASE_URL TOKEN STATE_JSON LOG_JSON [RUN ...]

`before` makes a completed task (echo, with an artifact), a task waiting for input (ask) in the
same context, and a completed two-turn task (ask, answered), reads each back with GetTask, and
writes what it saw to STATE_JSON. `after` (once the gateway was SIGKILLed and started again)
checks that GetTask answers every one of them as before (history and artifacts), that the one
left waiting ended failed with the restart error, that ListTasks (all, and by contextId) lists
them with the right totalSize and pages with its cursor, that another caller's token sees none,
and that the receipt of every task (and of every extra RUN given) verifies with the independent
verifier (a2a_verify.py). Exit 0 when every check passed.
"""

import asyncio
import json
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    TaskState,
)
from a2a.utils.constants import TransportProtocol
from google.protobuf.json_format import MessageToDict

import a2a_verify

FAILS: list[str] = []
RESTARTED = "the gateway restarted while the run was in flight"


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def req(text, task_id="", context_id=""):
    m = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)],
                task_id=task_id, context_id=context_id)
    return SendMessageRequest(message=m, configuration=SendMessageConfiguration())


def shape(task):
    """What must survive a restart: ids, history (roles, texts, and the ids of the caller's
    messages; the agent's status messages get their ids when they are served) and artifacts."""
    d = MessageToDict(task)
    hist = [[m.get("messageId") if m.get("role") == "ROLE_USER" else None, m.get("role"),
             [p.get("text") for p in m.get("parts", [])]]
            for m in d.get("history", [])]
    arts = [[a.get("artifactId"), a.get("name"), [p.get("text") for p in a.get("parts", [])]]
            for a in d.get("artifacts", [])]
    return {"id": d["id"], "contextId": d["contextId"], "history": hist, "artifacts": arts}


async def one(client, r):
    out = [ev async for ev in client.send_message(r)]
    return out[-1].task


async def before(c, state_path):
    echo = await one(c, req("echo kept across restarts"))
    check(echo.status.state == TaskState.TASK_STATE_COMPLETED, "echo completes")
    ctx = echo.context_id
    ask = await one(c, req("ask", context_id=ctx))
    check(ask.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, "ask waits for input")
    check(ask.context_id == ctx, "a new task in the context keeps the contextId")
    two = await one(c, req("ask", context_id=ctx))
    two = await one(c, req("Ada", task_id=two.id, context_id=ctx))
    check(two.status.state == TaskState.TASK_STATE_COMPLETED, "the answered ask completes")
    saved = {}
    for name, t in (("echo", echo), ("ask", ask), ("two", two)):
        got = await c.get_task(GetTaskRequest(id=t.id))
        saved[name] = shape(got)
    saved["context"] = ctx
    json.dump(saved, open(state_path, "w"))


async def after(c, other, http, base, state_path, log_path, extra):
    saved = json.load(open(state_path))
    log = a2a_verify.LogDescriptor.from_json(json.load(open(log_path)))
    ids = [saved[k]["id"] for k in ("echo", "ask", "two")]
    for name in ("echo", "two"):
        got = await c.get_task(GetTaskRequest(id=saved[name]["id"]))
        check(got.status.state == TaskState.TASK_STATE_COMPLETED, f"{name}: still completed")
        check(shape(got) == saved[name], f"{name}: history and artifacts as before ({shape(got)} vs {saved[name]})")
    ask = await c.get_task(GetTaskRequest(id=saved["ask"]["id"]))
    check(ask.status.state == TaskState.TASK_STATE_FAILED, f"ask: ended failed by the restart ({ask.status.state})")
    text = " ".join(p.text for p in ask.status.message.parts)
    check(RESTARTED in text, f"ask: the status says why ({text!r})")
    check(shape(ask)["history"][:1] == saved["ask"]["history"][:1], "ask: its input survives")

    lst = await c.list_tasks(ListTasksRequest(context_id=saved["context"], page_size=10))
    check(sorted(t.id for t in lst.tasks) == sorted(ids) and lst.total_size == 3,
          f"ListTasks by contextId after the restart ({[t.id for t in lst.tasks]}, total {lst.total_size})")
    seen, token = [], ""
    while True:
        page = await c.list_tasks(ListTasksRequest(page_size=2, page_token=token))
        seen += [t.id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    check(set(ids) <= set(seen) and len(seen) == len(set(seen)), f"ListTasks pages through every task once ({seen})")
    check(page.total_size == len(seen), f"totalSize {page.total_size} == {len(seen)} listed")
    nothing = await other.list_tasks(ListTasksRequest(page_size=10))
    check(len(nothing.tasks) == 0 and nothing.total_size == 0, "another caller lists none of them")
    try:
        await other.get_task(GetTaskRequest(id=saved["echo"]["id"]))
        check(False, "another caller's GetTask is refused")
    except Exception as e:  # noqa: BLE001 - the SDK's TaskNotFoundError
        check("not found" in str(e).lower(), f"another caller's GetTask: not found ({e})")

    for run in ids + extra:
        resp = await http.get(f"{base}/runs/{run}/receipt", params={"wait": "10"})
        check(resp.status_code == 200, f"receipt of {run} served ({resp.status_code})")
        if resp.status_code == 200:
            out = a2a_verify.verify_receipt(resp.json(), log)
            check(out["status"] in ("completed", "failed"), f"receipt of {run} verifies ({out['status']})")


async def main(mode, base, token, state_path, *rest):
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http, \
            httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer a2ag_other_caller"}) as http2:
        card = await A2ACardResolver(http, base).get_agent_card()
        cfg = ClientConfig(streaming=False, httpx_client=http,
                           supported_protocol_bindings=[TransportProtocol.JSONRPC], use_client_preference=True)
        c = ClientFactory(cfg).create(card)
        cfg2 = ClientConfig(streaming=False, httpx_client=http2,
                            supported_protocol_bindings=[TransportProtocol.JSONRPC], use_client_preference=True)
        other = ClientFactory(cfg2).create(card)
        if mode == "before":
            await before(c, state_path)
        else:
            await after(c, other, http, base, state_path, rest[0], list(rest[1:]))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:])))
