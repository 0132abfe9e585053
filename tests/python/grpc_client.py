"""The official A2A client (a2a-sdk 1.3, its gRPC transport) against the gateway's A2A gRPC binding.

    python grpc_client.py BASE_URL TOKEN LOG_JSON WEBHOOK_URL

The client picks the GRPC interface from the gateway's Agent Card and then: SendMessage (a
completed echo), SendStreamingMessage (task first, updates, the terminal status last), GetTask
(with historyLength), ListTasks (by contextId, with totalSize and a page cursor), CancelTask of a
task waiting for input, SubscribeToTask of a working one, push config create/get/list/delete,
GetExtendedAgentCard, the errors (an unknown task is NOT_FOUND with the A2A reason in an
ErrorInfo, a subscription to an ended task FAILED_PRECONDITION, no token UNAUTHENTICATED), and
verifies the receipt of every task it made with the independent verifier (a2a_verify.py).
Prints one line per check; exit 0 when every check passed.
"""

import asyncio
import json
import sys
import uuid

import grpc
import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    SubscribeToTaskRequest,
    TaskPushNotificationConfig,
    TaskState,
    a2a_pb2,
    a2a_pb2_grpc,
)
from a2a.utils.constants import TransportProtocol
from google.rpc import error_details_pb2, status_pb2

import a2a_verify

FAILS: list[str] = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def with_token(d, token):
    md = list(d.metadata or []) + [("authorization", f"Bearer {token}")]
    return d._replace(metadata=md)


# grpc.aio files an interceptor under the first call kind it implements only: one class each.
class BearerUnary(grpc.aio.UnaryUnaryClientInterceptor):
    """Adds `authorization: Bearer <token>` to unary calls."""

    def __init__(self, token):
        self.token = token

    async def intercept_unary_unary(self, cont, d, request):
        return await cont(with_token(d, self.token), request)


class BearerStream(grpc.aio.UnaryStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to server-streaming calls."""

    def __init__(self, token):
        self.token = token

    async def intercept_unary_stream(self, cont, d, request):
        return await cont(with_token(d, self.token), request)


def req(text, task_id="", context_id="", skill=None, immediately=False):
    m = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)],
                task_id=task_id, context_id=context_id)
    r = SendMessageRequest(message=m, configuration=SendMessageConfiguration(return_immediately=immediately))
    if skill:
        r.metadata.update({"skill": skill})
    return r


def reason(e):
    """The ErrorInfo reason in a gRPC error's google.rpc.Status details."""
    for k, v in (e.trailing_metadata() or []):
        if k == "grpc-status-details-bin":
            st = status_pb2.Status.FromString(v)
            for d in st.details:
                info = error_details_pb2.ErrorInfo()
                if d.Unpack(info):
                    return info.reason
    return None


async def main(base, token, log_path, webhook):
    log = a2a_verify.LogDescriptor.from_json(json.load(open(log_path)))
    made = []
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        card = await A2ACardResolver(http, base).get_agent_card()
        grpc_if = [i for i in card.supported_interfaces if i.protocol_binding == "GRPC"]
        check(len(grpc_if) == 1, f"the card lists a GRPC interface ({[i.protocol_binding for i in card.supported_interfaces]})")
        target = grpc_if[0].url
        channel_factory = lambda url: grpc.aio.insecure_channel(url, interceptors=[BearerUnary(token), BearerStream(token)])  # noqa: E731
        def client(streaming):
            cfg = ClientConfig(streaming=streaming, grpc_channel_factory=channel_factory,
                               supported_protocol_bindings=[TransportProtocol.GRPC], use_client_preference=True)
            return ClientFactory(cfg).create(card)

        c, s = client(False), client(True)

        # SendMessage, blocking: a completed echo.
        out = [ev async for ev in c.send_message(req("echo over grpc"))]
        task = out[-1].task
        check(task.status.state == TaskState.TASK_STATE_COMPLETED, f"SendMessage completes ({task.status.state})")
        made.append(task.id)
        ctx = task.context_id

        # GetTask with historyLength 0.
        got = await c.get_task(GetTaskRequest(id=task.id, history_length=0))
        check(got.id == task.id and len(got.history) == 0, "GetTask with historyLength 0")
        got = await c.get_task(GetTaskRequest(id=task.id))
        check(len(got.history) >= 1 and got.history[0].parts[0].text == "echo over grpc", "GetTask: the history")

        # Streaming: the task first, then status updates, the terminal one last.
        events = [ev async for ev in s.send_message(req("slow", skill="slow"))]
        kinds = [ev.WhichOneof("payload") if hasattr(ev, "WhichOneof") else None for ev in events]
        check(len(events) >= 3, f"the stream carries several events ({len(events)})")
        last = events[-1]
        final = last.status_update if last.HasField("status_update") else None
        check(final is not None and final.status.state == TaskState.TASK_STATE_COMPLETED,
              f"the stream ends at the terminal status ({kinds})")
        made.append(events[0].task.id if events[0].HasField("task") else final.task_id)

        # ListTasks by contextId, and paging.
        lst = await c.list_tasks(ListTasksRequest(context_id=ctx, page_size=10))
        check([t.id for t in lst.tasks] == [task.id] and lst.total_size == 1, f"ListTasks by contextId ({lst.total_size})")
        page = await c.list_tasks(ListTasksRequest(page_size=1))
        check(len(page.tasks) == 1 and page.next_page_token != "", "ListTasks pages with a cursor")

        # A task waiting for input: cancel it.
        ask = [ev async for ev in c.send_message(req("ask"))][-1]
        ask = ask.task if ask.HasField("task") else None
        check(ask is not None and ask.status.state == TaskState.TASK_STATE_INPUT_REQUIRED, "ask waits for input")
        canceled = await c.cancel_task(CancelTaskRequest(id=ask.id))
        check(canceled.status.state == TaskState.TASK_STATE_CANCELED, f"CancelTask ({canceled.status.state})")
        made.append(ask.id)

        # SubscribeToTask of a working task, to its end.
        working = [ev async for ev in c.send_message(req("slow", skill="slow", immediately=True))][-1]
        wid = working.task.id if working.HasField("task") else working.status_update.task_id
        subs = [ev async for ev in s.subscribe(SubscribeToTaskRequest(id=wid))]
        check(len(subs) >= 2 and subs[-1].HasField("status_update")
              and subs[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED,
              f"SubscribeToTask follows the task to its end ({len(subs)} events)")
        made.append(wid)

        # Push configs: create, get, list, delete.
        pending = [ev async for ev in c.send_message(req("ask"))][-1].task
        cfg_in = TaskPushNotificationConfig(task_id=pending.id, id="hook-1", url=webhook, token="secret-1")
        created = await c.create_task_push_notification_config(cfg_in)
        check(created.id == "hook-1" and created.url == webhook, "CreateTaskPushNotificationConfig")
        got_cfg = await c.get_task_push_notification_config(
            GetTaskPushNotificationConfigRequest(task_id=pending.id, id="hook-1"))
        check(got_cfg.url == webhook, "GetTaskPushNotificationConfig")
        lst = await c.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=pending.id))
        check([x.id for x in lst.configs] == ["hook-1"], "ListTaskPushNotificationConfigs")
        await c.delete_task_push_notification_config(
            DeleteTaskPushNotificationConfigRequest(task_id=pending.id, id="hook-1"))
        lst = await c.list_task_push_notification_configs(ListTaskPushNotificationConfigsRequest(task_id=pending.id))
        check(len(lst.configs) == 0, "DeleteTaskPushNotificationConfig")
        await c.cancel_task(CancelTaskRequest(id=pending.id))
        made.append(pending.id)

        card2 = await c.get_extended_agent_card(GetExtendedAgentCardRequest())
        check(card2.name == card.name, "GetExtendedAgentCard")

        # Errors, read with the raw stub to see the status and its details.
        async with grpc.aio.insecure_channel(target) as ch:
            stub = a2a_pb2_grpc.A2AServiceStub(ch)
            md = [("authorization", f"Bearer {token}"), ("a2a-version", "1.0")]
            try:
                await stub.GetTask(a2a_pb2.GetTaskRequest(id="no-such-task"), metadata=md)
                check(False, "an unknown task is refused")
            except grpc.aio.AioRpcError as e:
                check(e.code() == grpc.StatusCode.NOT_FOUND and reason(e) == "TASK_NOT_FOUND",
                      f"an unknown task: NOT_FOUND, TASK_NOT_FOUND ({e.code()}, {reason(e)})")
            try:
                stream = stub.SubscribeToTask(a2a_pb2.SubscribeToTaskRequest(id=task.id), metadata=md)
                await stream.read()
                check(False, "a subscription to an ended task is refused")
            except grpc.aio.AioRpcError as e:
                check(e.code() == grpc.StatusCode.FAILED_PRECONDITION and reason(e) == "UNSUPPORTED_OPERATION",
                      f"a subscription to an ended task: FAILED_PRECONDITION ({e.code()}, {reason(e)})")
            try:
                await stub.GetTask(a2a_pb2.GetTaskRequest(id=task.id), metadata=[("a2a-version", "1.0")])
                check(False, "a call without a token is refused")
            except grpc.aio.AioRpcError as e:
                check(e.code() == grpc.StatusCode.UNAUTHENTICATED, f"no token: UNAUTHENTICATED ({e.code()})")

        for run in made:
            resp = await http.get(f"{base}/runs/{run}/receipt", params={"wait": "10"})
            check(resp.status_code == 200, f"receipt of {run} served ({resp.status_code})")
            if resp.status_code == 200:
                res = a2a_verify.verify_receipt(resp.json(), log)
                check(res["status"] in ("completed", "canceled"), f"receipt of {run} verifies ({res['status']})")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:])))
