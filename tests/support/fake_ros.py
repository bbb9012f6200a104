"""A loopback stand-in for ROS (Resource Orchestration Service, API 2019-09-10) that the official SDK
(`alibabacloud_ros20190910`) talks to: it verifies each request's signature with engine/service/auth.py (ACS3 and
RPC v1, as the real gateway), checks the template it receives against ROS's resource specifications
(tests/support/ros_spec.py) and the parameters against the template's, and plays CreateStack, UpdateStack,
GetStack, ListStacks, ListStackEvents and DeleteStack through the states ROS goes through.

A stack operation advances one step per GetStack: every resource goes IN_PROGRESS on the first poll and
COMPLETE on the second (or FAILED, for the resource named in `fail_resource`, which also fails the stack).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from engine.service.auth import AuthError, NonceCache, error_body, new_request_id, parse_query, verify_request
from engine.template import TemplateError, parse_template
from tests.support.ros_spec import check_template

API_VERSION = "2019-09-10"
HOST_ID = "ros.aliyuncs.com"
AK, SK = "rosTestAK", "rosTestSecret"


class _Reply(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class FakeStack:
    stack_id: str
    name: str
    region: str
    template: dict[str, Any]
    parameters: dict[str, str]
    status: str
    operation: str  # CREATE, UPDATE, DELETE
    status_reason: str = ""
    steps: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Call:
    action: str
    style: str
    params: dict[str, str]


class FakeRos:
    def __init__(self, *, account_id: str = "1234567890123456", fail_resource: str | None = None) -> None:
        self.account_id = account_id
        self.fail_resource = fail_resource
        self.stacks: dict[str, FakeStack] = {}
        self.calls: list[Call] = []
        self._nonces = NonceCache()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> FakeRos:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def actions(self) -> list[str]:
        return [call.action for call in self.calls]

    # -------------------------------------------------------------------------------------- handling
    def handle(self, method: str, path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes) -> Any:
        try:
            auth = verify_request(
                method,
                path,
                parse_query(raw_query),
                headers,
                body,
                secrets={AK: SK},
                now=time.time(),
                nonce_cache=self._nonces,
                expected_version=API_VERSION,
            )
        except AuthError as exc:
            return exc.http_status, exc.to_body(host_id=HOST_ID)
        with self._lock:
            self.calls.append(Call(auth.action, auth.style, auth.params))
            route = {
                "CreateStack": self._create,
                "UpdateStack": self._update,
                "GetStack": self._get,
                "ListStacks": self._list,
                "ListStackEvents": self._events,
                "DeleteStack": self._delete,
            }.get(auth.action)
            try:
                if route is None:
                    raise _Reply(400, "InvalidAction.NotFound", f"Specified api is not found: {auth.action}")
                reply = route(auth.params)
            except _Reply as exc:
                return exc.status, error_body(exc.code, exc.message, host_id=HOST_ID)
        return 200, {"RequestId": new_request_id(), **reply}

    @staticmethod
    def _required(params: dict[str, str], name: str) -> str:
        value = params.get(name)
        if not value:
            raise _Reply(400, "MissingParameter", f"The input parameter {name} that is mandatory is not supplied.")
        return value

    def _stack(self, params: dict[str, str]) -> FakeStack:
        stack = self.stacks.get(self._required(params, "StackId"))
        if stack is None or stack.status == "DELETE_COMPLETE":
            raise _Reply(404, "StackNotFound", f"The Stack ({params.get('StackId')}) could not be found.")
        return stack

    def _template(self, params: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        """The received template, checked as ROS checks it, and its parameters (Parameters.N.ParameterKey)."""
        try:
            document = json.loads(self._required(params, "TemplateBody"))
        except ValueError as exc:
            raise _Reply(400, "InvalidTemplate", f"TemplateBody is not JSON or YAML: {exc}") from exc
        problems = check_template(document)
        if problems:
            raise _Reply(400, "InvalidTemplate", "; ".join(problems))
        values: dict[str, str] = {}
        n = 1
        while f"Parameters.{n}.ParameterKey" in params:
            values[params[f"Parameters.{n}.ParameterKey"]] = params.get(f"Parameters.{n}.ParameterValue", "")
            n += 1
        declared = document.get("Parameters") or {}
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise _Reply(400, "StackValidationFailed", f"Unknown parameters {unknown}")
        missing = sorted(k for k, spec in declared.items() if "Default" not in spec and k not in values)
        if missing:
            raise _Reply(400, "StackValidationFailed", f"The Parameter ({missing[0]}) was not provided.")
        return document, values

    def _begin(self, stack: FakeStack, operation: str) -> None:
        stack.operation, stack.status, stack.steps, stack.status_reason = operation, f"{operation}_IN_PROGRESS", 0, ""
        self._event(stack, stack.name, "ALIYUN::ROS::Stack", f"{operation}_IN_PROGRESS", "")

    def _event(self, stack: FakeStack, logical: str, rtype: str, status: str, reason: str) -> None:
        stack.events.append(
            {
                "EventId": str(uuid.uuid4()),
                "StackId": stack.stack_id,
                "StackName": stack.name,
                "LogicalResourceId": logical,
                "PhysicalResourceId": "",
                "ResourceType": rtype,
                "Status": status,
                "StatusReason": reason,
                "CreateTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            }
        )

    def _advance(self, stack: FakeStack) -> None:
        if not stack.status.endswith("_IN_PROGRESS"):
            return
        op = stack.operation
        resources = stack.template.get("Resources") or {}
        stack.steps += 1
        if stack.steps == 1:
            for name, body in resources.items():
                self._event(stack, name, body["Type"], f"{op}_IN_PROGRESS", "")
            return
        failed = False
        for name, body in resources.items():
            if op != "DELETE" and name == self.fail_resource:
                failed = True
                reason = f"Resource {name} failed: code: 400, The specified parameter is invalid."
                self._event(stack, name, body["Type"], f"{op}_FAILED", reason)
            else:
                self._event(stack, name, body["Type"], f"{op}_COMPLETE", "")
        stack.status = f"{op}_FAILED" if failed else f"{op}_COMPLETE"
        stack.status_reason = "Resource failed" if failed else f"Stack {op} completed successfully"
        self._event(stack, stack.name, "ALIYUN::ROS::Stack", stack.status, stack.status_reason)

    def _create(self, params: dict[str, str]) -> dict[str, Any]:
        name = self._required(params, "StackName")
        region = self._required(params, "RegionId")
        if any(s.name == name and s.status != "DELETE_COMPLETE" for s in self.stacks.values()):
            raise _Reply(409, "StackExists", f"The Stack ({name}) already exists.")
        document, values = self._template(params)
        stack = FakeStack(str(uuid.uuid4()), name, region, document, values, "", "CREATE")
        self.stacks[stack.stack_id] = stack
        self._begin(stack, "CREATE")
        return {"StackId": stack.stack_id}

    def _update(self, params: dict[str, str]) -> dict[str, Any]:
        stack = self._stack(params)
        document, values = self._template(params)
        if document == stack.template and values == stack.parameters:
            raise _Reply(400, "NotSupported", f"Update the completely same stack ({stack.name}) is not supported.")
        stack.template, stack.parameters = document, values
        self._begin(stack, "UPDATE")
        return {"StackId": stack.stack_id}

    def _delete(self, params: dict[str, str]) -> dict[str, Any]:
        stack = self._stack(params)
        self._begin(stack, "DELETE")
        return {}

    def _get(self, params: dict[str, str]) -> dict[str, Any]:
        stack = self.stacks.get(self._required(params, "StackId"))
        if stack is None or (stack.status == "DELETE_COMPLETE" and stack.steps > 2):
            raise _Reply(404, "StackNotFound", f"The Stack ({params.get('StackId')}) could not be found.")
        if stack.status == "DELETE_COMPLETE":
            stack.steps += 1  # one more GetStack shows DELETE_COMPLETE, then the stack is gone
        self._advance(stack)
        return {
            "StackId": stack.stack_id,
            "StackName": stack.name,
            "RegionId": stack.region,
            "Status": stack.status,
            "StatusReason": stack.status_reason,
            "Outputs": self._outputs(stack) if stack.status.endswith("_COMPLETE") else [],
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in stack.parameters.items()],
        }

    def _outputs(self, stack: FakeStack) -> list[dict[str, Any]]:
        values: dict[str, Any] = {
            **stack.parameters,
            "ALIYUN::Region": stack.region,
            "ALIYUN::AccountId": self.account_id,
            "ALIYUN::StackName": stack.name,
            "ALIYUN::StackId": stack.stack_id,
        }
        try:
            outputs = parse_template(stack.template, path=Path(HOST_ID), parameters=values).outputs
        except TemplateError:
            return []
        return [
            {"OutputKey": k, "OutputValue": v.get("Value"), "Description": v.get("Description", "")}
            for k, v in outputs.items()
        ]

    def _list(self, params: dict[str, str]) -> dict[str, Any]:
        names = {v for k, v in params.items() if k.startswith("StackName.")}
        stacks = [
            {"StackId": s.stack_id, "StackName": s.name, "Status": s.status, "RegionId": s.region}
            for s in self.stacks.values()
            if not names or s.name in names
        ]
        return {"Stacks": stacks, "TotalCount": len(stacks), "PageNumber": 1, "PageSize": 50}

    def _events(self, params: dict[str, str]) -> dict[str, Any]:
        stack = self.stacks.get(self._required(params, "StackId"))
        if stack is None:
            raise _Reply(404, "StackNotFound", f"The Stack ({params.get('StackId')}) could not be found.")
        statuses = {v for k, v in params.items() if k.startswith("Status.")}
        events = [e for e in stack.events if not statuses or e["Status"] in statuses]
        size = int(params.get("PageSize") or 10)
        page = int(params.get("PageNumber") or 1)
        chunk = events[(page - 1) * size : page * size]
        return {"Events": chunk, "TotalCount": len(events), "PageNumber": page, "PageSize": size}


class _Handler(BaseHTTPRequestHandler):
    server_version = "fake-ros"
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake: FakeRos = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        status, reply = fake.handle(self.command, split.path or "/", split.query, list(self.headers.items()), body)
        payload = json.dumps(reply, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def fake_ros() -> Iterator[FakeRos]:
    with FakeRos() as server:
        yield server
