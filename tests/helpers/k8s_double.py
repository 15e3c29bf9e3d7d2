"""A recorded-request double of the Kubernetes API: a real HTTP server on 127.0.0.1.

    double = KubeDouble(namespace="onyxia")
    await double.start()                     # double.url: http://127.0.0.1:<port>
    double.write_kubeconfig(path)            # what kubernetes_asyncio (KubeSpawner) reads
    double.fail("POST", "pods", 500)         # the next pod creation gets HTTP 500
    ...
    double.writes()                          # [("POST", "pods", "jupyter-alice"), ...]
    double.pods, double.secrets              # what exists now, as the API would return it
    await double.stop()

It speaks, for one namespace, the few REST endpoints KubeSpawner's kubernetes_asyncio
client calls, like the API server does (the oauthenticator style: a fake peer over real
HTTP, so the client's own serialisation, URLs and error handling run for real):

- pods, secrets and events: list (label and field selectors), watch (newline-delimited
  JSON from the requested resourceVersion, closed after `timeoutSeconds`), create, read,
  delete; errors as `Status` objects (401, 404, 409, 422, injected ones);
- every object created is checked against the Kubernetes 1.32 schemas (422 otherwise) and
  gets uid, resourceVersion and creationTimestamp; a Secret's `stringData` becomes base64
  `data`; requests need the kubeconfig's bearer token;
- a kubelet: a new pod is scheduled (or held with a `FailedScheduling` event while
  `scheduling_hold` is set), pulls its image (or fails to, with `image_pull_fails`),
  waits in `CreateContainerConfigError` with a `Failed` event while a Secret it
  references is missing, then runs (podIP, ready) with an event at each step;
  `terminate()` ends its container;
- the garbage collector: a deleted pod takes the Secrets it owns (ownerReferences uid).

Every request is recorded (`requests`), with its JSON body.

The hub's side, for building spawners without a hub: `make_spawner()` (an OnyxiaSpawner
with a hub token and a provider contributing the `PLANTED` secrets: variables and a
credentials file), `hub_user()`, `hub_stub()`.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
from aiohttp import web

KINDS = {"pods": "Pod", "secrets": "Secret", "events": "Event"}
SCHEMA_VERSION = "1.32"
EPOCH = datetime(2026, 9, 1, 8, 0, 0, tzinfo=UTC)
_REASONS = {403: "Forbidden", 409: "AlreadyExists", 422: "Invalid", 500: "InternalError"}


@dataclass
class Recorded:
    method: str
    kind: str
    name: str | None
    query: dict
    body: dict | None
    status: int = 0


@dataclass
class _Failure:
    method: str
    kind: str
    status: int
    times: int
    reason: str


@dataclass
class _Watch:
    kind: str
    labels: dict
    fields: dict
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


def _selector(text: str | None) -> dict:
    if not text:
        return {}
    return dict(part.split("=", 1) for part in text.split(","))


def _get(obj: dict, dotted: str):
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _matches(obj: dict, labels: dict, fields: dict) -> bool:
    have = obj["metadata"].get("labels") or {}
    return all(have.get(k) == v for k, v in labels.items()) and all(
        str(_get(obj, k)) == v for k, v in fields.items()
    )


def _status(code: int, reason: str, message: str, **details) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


class KubeDouble:
    def __init__(self, namespace: str = "onyxia", *, step: float = 0.02):
        self.namespace = namespace
        self.step = step  # the kubelet's pace, in seconds per transition
        self.token = secrets.token_urlsafe(16)
        self.requests: list[Recorded] = []
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
        self.invalid: list[str] = []  # objects refused by the schema check (what, path)
        self.scheduling_hold: str | None = None  # a FailedScheduling message, while set
        self.image_pull_fails = False
        self.delays: dict[tuple[str, str], float] = {}
        self._failures: list[_Failure] = []
        self._history: list[tuple[int, str, str, dict]] = []
        self._watches: list[_Watch] = []
        self._kubelets: dict[str, asyncio.Task] = {}
        self._rv = 1000
        self._clock = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- control -----------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        prefix = "/api/v1/namespaces/{namespace}/{kind}"
        app.router.add_route("GET", prefix, self._list)
        app.router.add_route("POST", prefix, self._create)
        app.router.add_route("GET", prefix + "/{name}", self._read)
        app.router.add_route("DELETE", prefix + "/{name}", self._delete)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for task in self._kubelets.values():
            task.cancel()
        for watch in self._watches:
            watch.queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    def reset(self) -> None:
        """Forget objects, requests and settings (between tests sharing one double)."""
        for task in self._kubelets.values():
            task.cancel()
        self._kubelets.clear()
        for kind, objects in self.objects.items():
            for obj in list(objects.values()):
                self._remove(kind, obj)
        self.requests.clear()
        self.invalid.clear()
        self._failures.clear()
        self.delays.clear()
        self.scheduling_hold = None
        self.image_pull_fails = False

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "double", "cluster": {"server": self.url}}],
                    "users": [{"name": "hub", "user": {"token": self.token}}],
                    "contexts": [
                        {
                            "name": "double",
                            "context": {
                                "cluster": "double",
                                "user": "hub",
                                "namespace": self.namespace,
                            },
                        }
                    ],
                    "current-context": "double",
                }
            )
        )
        return path

    def fail(self, method: str, kind: str, status: int, times: int = 1, reason: str = "") -> None:
        """The next `times` matching requests get this HTTP status (a Status body)."""
        self._failures.append(_Failure(method, kind, status, times, reason))

    def put(self, kind: str, obj: dict) -> dict:
        """Create an object directly (a leftover of an earlier pod, say), unrecorded."""
        return self._store(kind, copy.deepcopy(obj))

    def remove(self, kind: str, name: str) -> None:
        """Delete an object behind the spawner's back (kubectl, an eviction), unrecorded;
        the Secrets a pod owns go with it."""
        self._remove(kind, self.objects[kind][name])

    async def terminate(self, pod_name: str, exit_code: int = 0) -> None:
        """The pod's container exits with exit_code."""
        pod = self.objects["pods"][pod_name]
        task = self._kubelets.pop(pod_name, None)
        if task:
            task.cancel()
        pod["status"].update(
            phase="Succeeded" if exit_code == 0 else "Failed",
            containerStatuses=[
                self._container_status(
                    pod,
                    False,
                    {"terminated": {"exitCode": exit_code, "reason": "Completed"}},
                )
            ],
        )
        self._changed("pods", "MODIFIED", pod)

    # -- reading what happened ----------------------------------------------------------
    @property
    def pods(self) -> dict[str, dict]:
        return self.objects["pods"]

    @property
    def secrets(self) -> dict[str, dict]:
        return self.objects["secrets"]

    def writes(self) -> list[tuple[str, str, str]]:
        """(method, kind, name) of every POST and DELETE, in order (name from the body)."""
        return [
            (r.method, r.kind, r.name or (r.body or {}).get("metadata", {}).get("name"))
            for r in self.requests
            if r.method in ("POST", "DELETE")
        ]

    def created(self, kind: str) -> list[dict]:
        """The bodies of the accepted creations of kind, as the client sent them."""
        return [
            r.body
            for r in self.requests
            if r.method == "POST" and r.kind == kind and r.status == 201
        ]

    # -- HTTP --------------------------------------------------------------------------
    async def _begin(self, request: web.Request, name=None) -> tuple[Recorded, web.Response | None]:
        kind = request.match_info.get("kind", "")
        body = None
        if request.can_read_body:
            body = await request.json()
        record = Recorded(request.method, kind, name, dict(request.query), body)
        self.requests.append(record)
        delay = self.delays.get((request.method, kind))
        if delay:
            await asyncio.sleep(delay)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return record, _status(401, "Unauthorized", "Unauthorized")
        if kind not in KINDS or request.match_info["namespace"] != self.namespace:
            return record, _status(404, "NotFound", "the server could not find the resource")
        for failure in self._failures:
            if failure.times and failure.method == request.method and failure.kind == kind:
                failure.times -= 1
                reason = failure.reason or _REASONS.get(failure.status, "InternalError")
                return record, _status(failure.status, reason, f"injected failure {failure.status}")
        return record, None

    def _answer(self, record: Recorded, response: web.StreamResponse) -> web.StreamResponse:
        record.status = response.status
        return response

    async def _unknown(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(request.method, request.path, None, dict(request.query), None)
        )
        return _status(404, "NotFound", "the server could not find the requested resource")

    async def _list(self, request: web.Request) -> web.StreamResponse:
        record, refused = await self._begin(request)
        if refused:
            return self._answer(record, refused)
        kind = record.kind
        labels = _selector(request.query.get("labelSelector"))
        fields = _selector(request.query.get("fieldSelector"))
        if request.query.get("watch", "").lower() == "true":
            return self._answer(record, await self._watch(request, kind, labels, fields))
        items = [o for o in self.objects[kind].values() if _matches(o, labels, fields)]
        return self._answer(
            record,
            web.json_response(
                {
                    "kind": KINDS[kind] + "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self._rv)},
                    "items": items,
                }
            ),
        )

    async def _watch(self, request, kind, labels, fields) -> web.StreamResponse:
        timeout = float(request.query.get("timeoutSeconds", "30"))
        since = int(request.query.get("resourceVersion") or self._rv)
        watch = _Watch(kind, labels, fields)
        for rv, k, change, obj in self._history:
            if rv > since and k == kind and _matches(obj, labels, fields):
                watch.queue.put_nowait({"type": change, "object": obj})
        self._watches.append(watch)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while (left := deadline - loop.time()) > 0:
                try:
                    item = await asyncio.wait_for(watch.queue.get(), left)
                except TimeoutError:
                    break
                if item is None:
                    break
                await response.write(json.dumps(item).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watches.remove(watch)
        return response

    async def _read(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        record, refused = await self._begin(request, name)
        if refused:
            return self._answer(record, refused)
        obj = self.objects[record.kind].get(name)
        if obj is None:
            return self._answer(record, self._not_found(record.kind, name))
        return self._answer(record, web.json_response(obj))

    def _not_found(self, kind: str, name: str) -> web.Response:
        return _status(404, "NotFound", f'{kind} "{name}" not found', name=name, kind=kind)

    async def _create(self, request: web.Request) -> web.Response:
        record, refused = await self._begin(request)
        if refused:
            return self._answer(record, refused)
        kind, body = record.kind, copy.deepcopy(record.body or {})
        name = body.get("metadata", {}).get("name", "")
        if body.get("metadata", {}).get("namespace", self.namespace) != self.namespace:
            return self._answer(record, _status(400, "BadRequest", "namespace does not match"))
        try:
            kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in getattr(e.caught, "absolute_path", []))
            self.invalid.append(f"{KINDS[kind]} {name}: {where}")
            message = f'{KINDS[kind]} "{name}" is invalid: {where}'
            return self._answer(record, _status(422, "Invalid", message, name=name, kind=kind))
        if name in self.objects[kind]:
            message = f'{kind} "{name}" already exists'
            return self._answer(
                record, _status(409, "AlreadyExists", message, name=name, kind=kind)
            )
        obj = self._store(kind, body)
        return self._answer(record, web.json_response(obj, status=201))

    async def _delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        record, refused = await self._begin(request, name)
        if refused:
            return self._answer(record, refused)
        kind = record.kind
        obj = self.objects[kind].get(name)
        if obj is None:
            return self._answer(record, self._not_found(kind, name))
        if kind == "pods" and "deletionTimestamp" in obj["metadata"]:
            return self._answer(record, web.json_response(obj))  # already terminating
        if kind == "pods":
            obj["metadata"]["deletionTimestamp"] = self._now()
            self._changed("pods", "MODIFIED", obj)
            self._event(obj, "Normal", "Killing", "Stopping container notebook")
            asyncio.get_running_loop().call_later(self.step, self._remove, "pods", obj)
            return self._answer(record, web.json_response(obj))
        self._remove(kind, obj)
        details = {"name": name, "kind": kind, "uid": obj["metadata"]["uid"]}
        body = {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": details}
        return self._answer(record, web.json_response(body))

    # -- the store ---------------------------------------------------------------------
    def _now(self) -> str:
        self._clock += 1
        return (EPOCH + timedelta(seconds=self._clock)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _store(self, kind: str, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        meta.update(namespace=self.namespace, uid=str(uuid.uuid4()), creationTimestamp=self._now())
        if kind == "secrets":
            data = obj.setdefault("data", {})
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(value.encode()).decode()
        if kind == "pods":
            obj["status"] = {"phase": "Pending", "qosClass": "Guaranteed"}
        self.objects[kind][meta["name"]] = obj
        self._changed(kind, "ADDED", obj)
        if kind == "pods":
            self._kubelets[meta["name"]] = asyncio.ensure_future(self._kubelet(obj))
        return obj

    def _remove(self, kind: str, obj: dict) -> None:
        name = obj["metadata"]["name"]
        if self.objects[kind].get(name) is not obj:
            return
        del self.objects[kind][name]
        self._changed(kind, "DELETED", obj)
        if kind == "pods":
            task = self._kubelets.pop(name, None)
            if task:
                task.cancel()
            uid = obj["metadata"]["uid"]
            for secret in list(self.objects["secrets"].values()):  # the garbage collector
                owners = secret["metadata"].get("ownerReferences") or []
                if any(o.get("uid") == uid for o in owners):
                    self._remove("secrets", secret)

    def _changed(self, kind: str, change: str, obj: dict) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        snapshot = copy.deepcopy(obj)
        self._history.append((self._rv, kind, change, snapshot))
        for watch in self._watches:
            if watch.kind == kind and _matches(snapshot, watch.labels, watch.fields):
                watch.queue.put_nowait({"type": change, "object": snapshot})

    def _event(self, pod: dict, type_: str, reason: str, message: str) -> None:
        """A new event, or one more count of the same (reason, message) for this pod."""
        for event in self.objects["events"].values():
            same = event["involvedObject"]["uid"] == pod["metadata"]["uid"]
            if same and event["reason"] == reason and event["message"] == message:
                event["count"] += 1
                event["lastTimestamp"] = self._now()
                self._changed("events", "MODIFIED", event)
                return
        now = self._now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod['metadata']['name']}.{secrets.token_hex(8)}"},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod["metadata"]["name"],
                "namespace": self.namespace,
                "uid": pod["metadata"]["uid"],
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": "kubelet", "host": "node-1"},
        }
        event["metadata"].update(namespace=self.namespace, uid=str(uuid.uuid4()))
        self.objects["events"][event["metadata"]["name"]] = event
        self._changed("events", "ADDED", event)

    # -- the kubelet -------------------------------------------------------------------
    @staticmethod
    def _secrets_of(pod: dict) -> set[str]:
        names = set()
        for container in pod["spec"]["containers"]:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
        for volume in pod["spec"].get("volumes") or []:
            if "secret" in volume:
                names.add(volume["secret"]["secretName"])
        return names

    @staticmethod
    def _container_status(pod: dict, ready: bool, state: dict) -> dict:
        container = pod["spec"]["containers"][0]
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": ready,
            "state": state,
        }

    async def _kubelet(self, pod: dict) -> None:
        name, image = pod["metadata"]["name"], pod["spec"]["containers"][0]["image"]
        await asyncio.sleep(self.step)
        while self.scheduling_hold:
            self._event(pod, "Warning", "FailedScheduling", self.scheduling_hold)
            await asyncio.sleep(self.step * 5)
        pod["spec"]["nodeName"] = "node-1"
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
        self._changed("pods", "MODIFIED", pod)
        self._event(
            pod, "Normal", "Scheduled", f"Successfully assigned {self.namespace}/{name} to node-1"
        )
        await asyncio.sleep(self.step)
        self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        await asyncio.sleep(self.step)
        while self.image_pull_fails:
            self._event(pod, "Warning", "Failed", f'Failed to pull image "{image}": not found')
            self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"')
            waiting = {"waiting": {"reason": "ImagePullBackOff"}}
            pod["status"]["containerStatuses"] = [self._container_status(pod, False, waiting)]
            self._changed("pods", "MODIFIED", pod)
            await asyncio.sleep(self.step * 5)
        self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in 1.2s')
        while missing := sorted(self._secrets_of(pod) - set(self.objects["secrets"])):
            message = f'secret "{missing[0]}" not found'
            waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            pod["status"]["containerStatuses"] = [self._container_status(pod, False, waiting)]
            self._changed("pods", "MODIFIED", pod)
            self._event(pod, "Warning", "Failed", f"Error: {message}")
            await asyncio.sleep(self.step)
        self._event(pod, "Normal", "Created", "Created container: notebook")
        self._event(pod, "Normal", "Started", "Started container notebook")
        running = {"running": {"startedAt": self._now()}}
        pod["status"].update(
            phase="Running",
            podIP="10.1.2.3",
            containerStatuses=[self._container_status(pod, True, running)],
        )
        self._changed("pods", "MODIFIED", pod)


# -- what a hub gives a spawner ------------------------------------------------------------
# Secret values planted in every launch: the hub's token, a provider's credentials and a
# credentials file. Tests scan pods and logs for them with tests.helpers.secrets.
PLANTED = {
    "hub token": "hubtok-" + secrets.token_urlsafe(18),
    "S3 secret key": "s3key-" + secrets.token_urlsafe(18),
    "S3 session token": "s3sess-" + secrets.token_urlsafe(18),
    "credentials file": "credfile-" + secrets.token_urlsafe(18),
}
S3_KEY_ID = "AKIAONYXIAHUBTEST"


def _provider_class():
    from onyxia_hub.plan import Contribution, PlanFile
    from onyxia_hub.providers.base import PlanProvider

    class PlantedSecretsProvider(PlanProvider):
        """Contributes public and secret variables, a secret file and a public one."""

        async def contribute(self, request):
            return Contribution(
                environment={"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_S3_ENDPOINT": "minio:9000"},
                secret_environment={
                    "AWS_SECRET_ACCESS_KEY": PLANTED["S3 secret key"],
                    "AWS_SESSION_TOKEN": PLANTED["S3 session token"],
                },
                files=(
                    PlanFile(
                        ".config/onyxia/credentials",
                        f"token = {PLANTED['credentials file']}\n",
                        mode=0o600,
                        secret=True,
                    ),
                    PlanFile(".config/onyxia/settings.toml", "theme = 'dark'\n", mode=0o644),
                ),
            )

    return PlantedSecretsProvider


def hub_user(name: str, groups=()):
    """The few attributes of a JupyterHub User that spawners read."""

    async def get_auth_state():
        return {}

    return SimpleNamespace(
        name=name,
        id=1,
        escaped_name=name,
        url=f"/user/{name}/",
        groups=[SimpleNamespace(name=g) for g in groups],
        get_auth_state=get_auth_state,
    )


def hub_stub():
    return SimpleNamespace(
        public_host="",
        url="http://hub:8081/hub/",
        base_url="/hub/",
        api_url="http://hub:8081/hub/api",
    )


def make_spawner(user: str = "alice", groups=(), *, server_name: str = "", **config):
    """An OnyxiaSpawner as the hub makes one (token set), with the planted-secrets provider."""
    from onyxia_hub.spawners.kube import OnyxiaSpawner

    config.setdefault("provider_classes", [_provider_class()])
    if server_name:  # a named server's name comes from its database row
        config["orm_spawner"] = SimpleNamespace(name=server_name, server=None, user_options={})
    return OnyxiaSpawner(
        user=hub_user(user, groups),
        hub=hub_stub(),
        api_token=PLANTED["hub token"],
        oauth_client_id=f"jupyterhub-user-{user}",
        **config,
    )
