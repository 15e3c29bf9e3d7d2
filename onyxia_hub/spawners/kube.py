"""`OnyxiaSpawner`: a launch plan realised as a Kubernetes pod and Secret (KubeSpawner).

Registered as the `onyxia` spawner (`c.JupyterHub.spawner_class = "onyxia"`). At each
start, in `load_user_options` (KubeSpawner's override point, the first step of its
`start()`), it checks the choice, claims the quota and builds the plan
(`OnyxiaSpawnerMixin.make_plan`), then sets KubeSpawner's settings from it: image,
resources (requests equal limits), GPUs as the catalog's extended resource with the GPU
type's node selector and tolerations, the plan's environment and files.
KubeSpawner's own `profile_list` stays empty: the catalog is the spawn form.

Secrets never appear in the pod. Every secret value (the hub's `JUPYTERHUB_API_TOKEN` and
`JPY_API_TOKEN`, the plan's secret environment, variables whose names look secret, and the
plan's files) goes into one Secret per server, `<pod name>-secret`, which the pod reads
through `valueFrom.secretKeyRef` and a Secret volume. Its lifecycle:

1. the pod is created first; its container cannot start before the Secret exists (the
   kubelet waits, `CreateContainerConfigError`; that brief wait is not reported);
2. the Secret is created right after, immutable, with an owner reference to the pod's
   UID: Kubernetes' garbage collector deletes it with the pod, whoever deletes the pod
   and even while the hub is down;
3. the spawner also deletes it itself: when the server stops, when it is found dead,
   and when a start fails at any step after the pod was requested (with the pod).

Nothing is logged about a pod or a Secret but its name; when the API refuses one, the
log line and the error carry the HTTP status and reason only (KubeSpawner logs the
whole pod, environment included). See docs/kubernetes-spawner.md.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from functools import partial

from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import TraitError, Unicode, validate

from ..choices import ChoiceError
from ..quantities import format_cpu, human_memory
from .base import OnyxiaSpawnerMixin
from .k8s_objects import (
    DEFAULT_SECRET_PATTERN,
    SECRETS_DIR,
    env_from_plan,
    event_message,
    files_from_plan,
    init_settings,
    make_secret,
    plan_overrides,
    split_environment,
)

_PLAN_SETTINGS = (
    "image",
    "cpu_guarantee",
    "cpu_limit",
    "mem_guarantee",
    "mem_limit",
    "extra_resource_limits",
    "node_selector",
    "tolerations",
    "volumes",
    "volume_mounts",
    "default_url",
    "cmd",
    "http_timeout",
)


class KubernetesRefusal(RuntimeError):
    """The Kubernetes API refused a request; the message has its status and reason only."""


class _NoResponseBodies(logging.Filter):
    """kubernetes_asyncio logs every response body at DEBUG: pods, and Secrets' data."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("response body")


def _quiet_kubernetes_client() -> None:
    logger = logging.getLogger("kubernetes_asyncio.client.rest")
    if not any(isinstance(f, _NoResponseBodies) for f in logger.filters):
        logger.addFilter(_NoResponseBodies())


class OnyxiaSpawner(OnyxiaSpawnerMixin, KubeSpawner):
    """Runs catalog services as Kubernetes pods (see the module docstring)."""

    home_directory = Unicode(
        "/home/jovyan",
        help="""
        The home directory of the user inside the catalog's images, where the plan's
        files (credentials, settings written by providers) are mounted, each at
        `<home_directory>/<path>`, read-only, from the server's Secret.

        Default: `/home/jovyan`, the home of the Jupyter Docker Stacks images
        (`quay.io/jupyter/*`). With `fs_gid` set (z2jh sets 100), the files are also
        readable by that group.

            c.OnyxiaSpawner.home_directory = "/home/onyxia"
        """,
    ).tag(config=True)

    secret_env_pattern = Unicode(
        DEFAULT_SECRET_PATTERN,
        help=f"""
        A regular expression (searched in each variable's name, ignoring case): the
        variables whose names match are put in the server's Secret and read from it,
        instead of in clear in the pod.

        Whatever this says, the hub's `JUPYTERHUB_API_TOKEN` and `JPY_API_TOKEN` and
        every secret variable of the plan (`secret_environment` from providers) go to
        the Secret; the pattern adds the operator's and the catalog's variables that
        look secret. Empty: only those. Default: `{DEFAULT_SECRET_PATTERN}`.

            c.OnyxiaSpawner.secret_env_pattern = r"TOKEN|SECRET|PASSWORD|_KEY$"
        """,
    ).tag(config=True)

    @validate("secret_env_pattern")
    def _validate_secret_env_pattern(self, proposal):
        try:
            re.compile(proposal.value)
        except re.error as e:
            raise TraitError(f"secret_env_pattern is not a regular expression: {e}") from None
        return proposal.value

    @validate("profile_list")
    def _validate_profile_list(self, proposal):
        if proposal.value:
            raise TraitError(
                "OnyxiaSpawner takes its services from the catalog (catalog_paths): "
                "leave profile_list empty"
            )
        return proposal.value

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        _quiet_kubernetes_client()
        self._operator_settings: dict | None = None
        self._secret_name = ""  # the Secret believed to exist ("" none)
        self._pod_requested = False
        self._reported: set = set()
        self._environment: tuple | None = None  # (plan, token, (public, secret))

    @property
    def server_secret_name(self) -> str:
        """The name of this server's Secret: `<pod name>-secret`."""
        return f"{self.pod_name}-secret"

    # -- from plan to pod --------------------------------------------------------------
    async def load_user_options(self):
        """The plan instead of profiles: check, claim, plan, then set KubeSpawner's settings."""
        plan = await self.make_plan()
        self._reported = set()
        if self._operator_settings is None:  # the configured values, before any plan
            self._operator_settings = {
                name: copy.deepcopy(getattr(self, name)) for name in _PLAN_SETTINGS
            }
        base = self._operator_settings
        settings = plan_overrides(
            plan,
            node_selector=base["node_selector"],
            tolerations=self._sorted_dict_values(base["tolerations"]) or (),
            extra_resource_limits=base["extra_resource_limits"],
        )
        _, volume, mounts = files_from_plan(
            plan.files, self.server_secret_name, self.home_directory
        )
        volumes = list(self._sorted_dict_values(base["volumes"]) or [])
        volume_mounts = list(self._sorted_dict_values(base["volume_mounts"]) or [])
        if volume is not None:
            volumes.append(volume)
            # KubeSpawner expands {username}-style fields in mounts: keep braces literal
            volume_mounts += [
                {**m, "mountPath": m["mountPath"].replace("{", "{{").replace("}", "}}")}
                for m in mounts
            ]
        settings.update(volumes=volumes, volume_mounts=volume_mounts)
        try:
            settings.update(init_settings(plan, base["cmd"], base["http_timeout"]))
        except ValueError as e:
            self.release_plan()
            raise ChoiceError(
                str(e), status_code=409, reason="init-script-refused", field="init_script"
            ) from None
        for name, value in settings.items():
            if getattr(self, name) != value:  # traitlets validates and notifies on set
                setattr(self, name, value)

    def server_environment(self) -> tuple[dict, dict[str, str]]:
        """(public, secret) environment of the server: the hub's, the operator's, the plan's.

        Computed once per launch (plan) and token, so that the pod and its Secret are
        built from the same values (the operator's callables are called once).
        """
        plan, token = self.plan, self.api_token
        cached = self._environment
        if cached is not None and cached[0] is plan and cached[1] == token and plan is not None:
            public, secret = cached[2]
            return dict(public), dict(secret)
        env = self.plan_environment(super().get_env(), secrets_dir=SECRETS_DIR)
        public, secret = split_environment(
            env.variables, env.secret_names, self.secret_env_pattern, env.public_names
        )
        self._environment = (plan, token, (public, secret))
        return dict(public), dict(secret)

    def release_plan(self) -> None:
        """Forget the claim, the plan and the environment computed from it (secrets)."""
        super().release_plan()
        self._environment = None

    def get_env(self):
        """The pod's `env`: public values, and references into the Secret for secret ones.

        Unlike JupyterHub's, values may be `EnvVar` dicts (which KubeSpawner accepts):
        use `server_environment()` for the values themselves.
        """
        public, secret = self.server_environment()
        return env_from_plan(public, secret, self.server_secret_name)

    def get_server_secret_manifest(self, pod_uid: str | None):
        """The server's Secret: secret variables and the plan's files, owned by the pod."""
        _, data = self.server_environment()
        if self.plan is not None:
            files, _, _ = files_from_plan(
                self.plan.files, self.server_secret_name, self.home_directory
            )
            data.update(files)
        return make_secret(
            self.server_secret_name,
            self.namespace,
            data,
            owner_pod=(self.pod_name, pod_uid) if pod_uid else None,
            labels=self._build_common_labels({"component": "singleuser-secret"}),
            annotations=self._build_common_annotations({}),
        )

    # -- start -------------------------------------------------------------------------
    async def _start(self):
        self._pod_requested = False
        try:
            return await super()._start()
        except asyncio.CancelledError:
            raise  # stop() cancelled this start, and removes what it created
        except Exception as e:
            await self._clean_up_failed_start()
            if isinstance(e, ApiException):
                raise self._refusal("a request for", e) from None
            raise

    async def _clean_up_failed_start(self):
        try:
            if self._pod_requested:
                await self._delete_server_objects(now=True)
        except Exception as e:  # the start's own error is the one to report
            self.log.warning(
                "Could not remove the pod or Secret of %s after a failed start: %s",
                self._log_name,
                type(e).__name__,
            )
        finally:
            self.release_plan()

    def _refusal(self, what: str, e: ApiException) -> KubernetesRefusal:
        self.log.error(
            "Kubernetes refused %s %s: HTTP %s %s", what, self._log_name, e.status, e.reason
        )
        return KubernetesRefusal(
            f"Kubernetes refused {what} {self._log_name} (HTTP {e.status} {e.reason})"
        )

    async def _make_create_pod_request(self, pod, request_timeout):
        """Create the pod, then its Secret. For exponential_backoff: True when both exist.

        Replaces KubeSpawner's, which logs the whole pod when the API refuses it.
        """
        if not self._pod_requested and self.plan is not None:
            resources = self.plan.resources
            gpus = f", {self.plan.gpu.count} GPU" if self.plan.gpu else ""
            self.emit(
                20,
                f"Asking the cluster for {format_cpu(resources.cpu_limit)} CPU, "
                f"{human_memory(resources.memory_limit)}{gpus}",
            )
        self._pod_requested = True
        self.log.info("Creating pod %s/%s for %s", self.namespace, self.pod_name, self._log_name)
        try:
            created = await asyncio.wait_for(
                self.api.create_namespaced_pod(self.namespace, pod), request_timeout
            )
        except TimeoutError:
            return False
        except ApiException as e:
            if e.status != 409:
                raise self._refusal("the pod of", e) from None
            self.log.info("Replacing an earlier pod %s/%s", self.namespace, self.pod_name)
            await self._delete_server_objects(now=True)
            return False
        await self._create_server_secret(created.metadata.uid)
        return True

    async def _create_server_secret(self, pod_uid: str) -> None:
        secret = self.get_server_secret_manifest(pod_uid)
        self._secret_name = secret.metadata.name
        await exponential_backoff(
            partial(self._make_create_secret_request, secret),
            f"Could not create the Secret of {self._log_name}",
            timeout=self.k8s_api_request_retry_timeout,
        )

    async def _make_create_secret_request(self, secret) -> bool:
        try:
            await asyncio.wait_for(
                self.api.create_namespaced_secret(self.namespace, secret),
                self.k8s_api_request_timeout,
            )
        except TimeoutError:
            return False
        except ApiException as e:
            if e.status != 409:
                raise self._refusal("the Secret of", e) from None
            # an earlier one: of a pod being garbage-collected, or a timed-out attempt
            await self._delete_server_secret()
            self._secret_name = secret.metadata.name
            return False
        self.log.info("Created Secret %s/%s", self.namespace, secret.metadata.name)
        return True

    async def _make_create_resource_request(self, kind, manifest):
        """KubeSpawner's (its TLS Secret and Service), without logging the manifest (the
        TLS Secret holds the server's private key)."""
        create = getattr(self.api, f"create_namespaced_{kind}")
        try:
            await asyncio.wait_for(create(self.namespace, manifest), self.k8s_api_request_timeout)
        except TimeoutError:
            return False
        except ApiException as e:
            if e.status != 409:
                raise self._refusal(f"the {kind} of", e) from None
        return True

    # -- stop and poll -----------------------------------------------------------------
    async def _make_delete_secret_request(self, name: str) -> bool:
        try:
            await asyncio.wait_for(
                self.api.delete_namespaced_secret(name=name, namespace=self.namespace),
                self.k8s_api_request_timeout,
            )
        except TimeoutError:
            return False
        except ApiException as e:
            if e.status != 404:
                raise self._refusal("deleting the Secret of", e) from None
        return True

    async def _delete_server_secret(self) -> None:
        name = self._secret_name or self.server_secret_name
        await exponential_backoff(
            partial(self._make_delete_secret_request, name),
            f"Could not delete the Secret of {self._log_name}",
            timeout=self.k8s_api_request_retry_timeout,
        )
        self.log.info("Deleted Secret %s/%s", self.namespace, name)
        self._secret_name = ""

    async def _delete_server_objects(self, now: bool) -> None:
        """The Secret first (its values are the point), then the pod, even if that failed."""
        try:
            await self._delete_server_secret()
        finally:
            await KubeSpawner.stop(self, now=now)

    async def stop(self, now=False):
        start = self._start_future
        if start is not None and not start.done() and start is not asyncio.current_task():
            # a start that outlived the hub's start_timeout: end it before cleaning up
            start.cancel()
            await asyncio.wait([start])
        try:
            await self._delete_server_objects(now)
        finally:
            self.release_plan()

    async def poll(self):
        status = await super().poll()
        starting = self._start_future is not None and not self._start_future.done()
        if status is not None and self._secret_name and not starting:
            try:
                await self._delete_server_secret()
            except Exception as e:
                self.log.warning(
                    "Could not delete the Secret of %s: %s", self._log_name, type(e).__name__
                )
        return status

    # -- state -------------------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        state.update(self.claim_state())
        if self._secret_name:
            state["secret_name"] = self._secret_name
        return state

    def load_state(self, state):
        super().load_state(state)
        self._secret_name = state.get("secret_name", "")
        self.restore_claim(state)

    def clear_state(self):
        super().clear_state()
        self.release_plan()

    # -- progress ----------------------------------------------------------------------
    async def progress(self):
        """The mixin's events, then the pod's Kubernetes events in words."""
        follower = asyncio.ensure_future(self._follow_pod_events())
        try:
            async for event in super().progress():
                yield event
        finally:
            follower.cancel()

    async def _follow_pod_events(self, interval: float = 0.5) -> None:
        if not self.events_enabled:
            return
        try:
            await self._start_watching_events()
        except Exception:
            return  # KubeSpawner logged it; the spawn goes on without these messages
        while True:
            self._report_pod_events()
            await asyncio.sleep(interval)

    def _report_pod_events(self) -> None:
        plan = self.plan
        if not self._pod_requested or plan is None:
            return  # before the pod: events of an earlier pod of the same name
        for event in self.events:
            key = (event["metadata"]["uid"], event.get("count"))
            if key in self._reported:
                continue
            self._reported.add(key)
            said = event_message(
                event,
                service=plan.service_display_name,
                secret_name=self.server_secret_name,
                gpu=plan.gpu.display_name if plan.gpu else None,
            )
            if said is None:
                continue
            events = getattr(self, "_events", [])
            last = events[-1] if events else {"progress": 0, "message": ""}
            if said[1] != last["message"]:
                self.emit(max(said[0], last["progress"]), said[1])


__all__ = ["KubernetesRefusal", "OnyxiaSpawner"]
