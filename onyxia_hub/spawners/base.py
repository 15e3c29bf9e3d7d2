"""What both spawners share: the catalog, the spawn form, choices, quotas and the plan.

`OnyxiaSpawnerMixin` goes in front of a JupyterHub spawner class (`LocalProcessSpawner`
for one machine, `KubeSpawner` for Kubernetes). It

- renders the spawn form from the catalog (cards, options, quota gauges, availability),
- parses the form, and treats a link's `?opt-...` query as a way to *pre-fill* the form,
  never to start a server (a link on another site cannot start one),
- after a refused form, link or spawn-page launch, shows the form again with exactly what
  the user sent, the refused field marked and the message beside it (`Sent`), and nothing
  of an earlier launch,
- at every start, checks the stored options against the catalog and the user's groups
  as they are now, claims the quota atomically, asks the providers for their
  contributions and builds the `LaunchPlan` that the adapter realises,
- reports progress in words a user understands,
- keeps refusals to one log line, without a traceback,
- assembles the server's environment from the plan (`plan_environment`, the same layers on
  both adapters: `environment.assemble`),
- keeps the quota claim across hub restarts (`claim_state` into the spawner's state,
  `restore_claim` from it).

What an adapter does with it:

1. call `make_plan()` first in its own start sequence (the local spawner's `start`,
   KubeSpawner's `load_user_options`) and realise the plan it returns;
2. build the server's variables with `plan_environment(self.get_env()...)`;
3. put `claim_state()` into `get_state()`, call `restore_claim(state)` in `load_state()`;
4. call `release_plan()` when the server stops, is found dead or fails to start;
5. optionally override `unavailable_reason(service)` (missing programs, GPUs...).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.handlers.pages import SpawnHandler
from jupyterhub.utils import maybe_future
from traitlets import Float, Instance, List, Type, Unicode, default
from traitlets.config import LoggingConfigurable

from ..catalog.loader import CatalogSource, default_catalog_path
from ..catalog.model import Catalog, Service
from ..choices import Choice, ChoiceError, check, entered, from_form, normalize
from ..plan import Launcher, LaunchPlan, build_plan
from ..providers.base import PlanProvider, PlanRequest, ProviderError
from ..quantities import parse_cpu, parse_memory
from ..quotas import LEDGER, Claim, gauges
from . import environment

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_SOURCES: dict[tuple[str, ...], CatalogSource] = {}
_JINJA = Environment(
    loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"])
)


class PrefillOnly(ChoiceError):
    """Stops JupyterHub from starting a server from a link: the form is shown instead."""

    def __init__(self):
        super().__init__("", status_code=200, reason="prefill")


@dataclass(frozen=True)
class Sent:
    """What a user sent from the spawn page (the form's fields or a link's options), kept
    until the form is next rendered for them, which shows it instead of their last launch.

    JupyterHub renders the form again at once after a refused form or link, with the
    message at the top. A refused POST for a named server is rendered by the user's
    *default* spawner (`user.spawner.get_options_form()` in SpawnHandler.post), hence one
    entry per user, not per spawner: any of the user's spawners takes a fresh refusal; a
    spawner takes an older entry of its own server only (a launch refused after the POST
    was answered: the spawn-pending page shows the message and links back to the form).
    """

    server: str  # the server's name ("" the default)
    values: Mapping[str, str]  # choices.entered: as sent, by option
    error: ChoiceError | None = None  # None: a link that pre-fills the form
    link: bool = False
    at: float = field(default_factory=time.monotonic)


_SENT: dict[str, Sent] = {}  # user name -> what they sent last, until a form shows it
_FRESH = 5.0  # seconds: a refusal this recent is the one JupyterHub is answering
_SELECTS = ("version", "cpu", "memory", "gpus", "gpu_type")  # a card's own options
_FIELDS = ("service", "repository", "branch", "init_script", "init_args")  # the form's
_NOT_A_CHOICE = "This value is not one of the choices."


def _picked(service: Service, values: Mapping[str, str]) -> tuple[dict, dict[str, str]]:
    """What each select of service's card shows for the values sent: (picked, stray).

    picked: each select's value as its options hold it (the service's defaults for what
    was not sent; a CPU or memory amount outside the presets is added to them); stray: a
    value sent that is none of the options, shown as sent (selected and marked), never
    swapped for another one.
    """
    gpu = service.gpu
    picked = {
        "version": service.default_version.name,
        "cpu": service.cpu.default,
        "memory": service.memory.default,
        "gpus": gpu.default_count if gpu else 0,
        "gpu_type": gpu.default_type if gpu else None,
    }
    counts = gpu.counts if gpu else (0,)  # "0" GPUs: any service's (stored options say so)
    readers = {
        "version": lambda text: text if service.version(text) else None,
        "cpu": lambda text: _parsed(parse_cpu, text),
        "memory": lambda text: _parsed(parse_memory, text),
        "gpus": lambda text: (
            int(text) if text.isascii() and text.isdigit() and int(text) in counts else None
        ),
        "gpu_type": lambda text: text if gpu and gpu.type(text) else None,
    }
    stray: dict[str, str] = {}
    for name, read in readers.items():
        text = values.get(name)
        if text is not None:
            picked[name] = read(text)
            if picked[name] is None:
                stray[name] = text
    return picked, stray


def _parsed(parse, text: str):
    try:
        return parse(text)
    except ValueError:
        return None


class _RefusalLogFilter(logging.Filter):
    """JupyterHub logs refused spawn forms and links with a traceback: keep one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PrefillOnly):
            return False  # a link that pre-fills the form is not an error
        if isinstance(exc, ChoiceError):
            record.msg, record.args = "Refused launch options: %s", (exc.message,)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


class _BoundedLogFilter(logging.Filter):
    """No log line longer than MAX_LOG_LINE: a 5000-character option is not logged whole.

    JupyterHub logs request URLs (links carry options) and the options stored by PATCH
    verbatim; attached to the hub's handlers, this bounds what any of them writes.
    """

    MAX_LOG_LINE = 1000

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > self.MAX_LOG_LINE:
            record.msg = message[: self.MAX_LOG_LINE] + f"... ({len(message)} characters)"
            record.args = None
        return True


def install_refusal_filter(log: logging.Logger) -> None:
    """Once per hub: one-line refusals on the hub's logger, bounded lines on its handlers."""
    if not any(isinstance(f, _RefusalLogFilter) for f in log.filters):
        log.addFilter(_RefusalLogFilter())
    for handler in log.handlers:
        if not any(isinstance(f, _BoundedLogFilter) for f in handler.filters):
            handler.addFilter(_BoundedLogFilter())


class OnyxiaSpawnerMixin(LoggingConfigurable):
    """Catalog-driven launches; see the module docstring."""

    catalog_paths = List(
        Unicode(),
        help="""
        Directories holding the catalog (`*.yaml`, one service per file, and
        `_catalog.yaml` for quotas). Later directories add services to earlier ones.

        Files are re-read when they change, without restarting the hub; when a change
        makes the catalog invalid, the last valid catalog stays in use and the problems
        are logged. Check a catalog with `onyxia-hub catalog check DIR`.
        Default: the `profiles/` directory shipped with Onyxia Hub.

            c.OnyxiaLocalSpawner.catalog_paths = ["/etc/onyxia-hub/profiles"]
        """,
    ).tag(config=True)

    @default("catalog_paths")
    def _catalog_paths_default(self):
        return [str(default_catalog_path())]

    catalog_recheck_interval = Float(
        1.0,
        help="""
        Seconds between two checks of the catalog's files for changes (a check stats every
        file of `catalog_paths`). A changed catalog is used at most this long after the
        change; 0 checks at every use. Default: 1 second, so that a burst of launches and
        spawn pages does not re-read the directories hundreds of times a second.

            c.OnyxiaLocalSpawner.catalog_recheck_interval = 5
        """,
    ).tag(config=True)

    provider_classes = List(
        Type(klass=PlanProvider),
        help="""
        Providers that contribute to every launch plan (storage credentials, git
        identity...), in order: a later provider's variables win over an earlier one's.

            c.OnyxiaLocalSpawner.provider_classes = [
                "onyxia_hub.providers.git.GitProvider",
                "onyxia_hub.providers.storage.StorageProvider",
            ]

        Each is a `onyxia_hub.providers.base.PlanProvider`; its settings are its own
        section (`c.StorageProvider.kind = "sts"`).
        """,
    ).tag(config=True)

    plan = Instance(
        LaunchPlan,
        allow_none=True,
        help="The plan of the running server (state; not configurable).",
    )

    # -- the catalog -------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        key = tuple(self.catalog_paths)
        if key not in _SOURCES:
            _SOURCES[key] = CatalogSource([Path(p) for p in key], log=self.log)
        source = _SOURCES[key]
        source.recheck_interval = self.catalog_recheck_interval
        return source.current()

    @property
    def group_names(self) -> frozenset[str]:
        return frozenset(g.name for g in getattr(self.user, "groups", []) or [])

    def unavailable_reason(self, service: Service) -> str | None:
        """Why this adapter cannot run the service now (missing programs...), or None."""
        return None

    @property
    def providers(self) -> list[PlanProvider]:
        if not hasattr(self, "_providers"):
            self._providers = [cls(parent=self) for cls in self.provider_classes]
        return self._providers

    # -- the spawn form ----------------------------------------------------------------
    @default("options_form")
    def _options_form_default(self):
        return OnyxiaSpawnerMixin._render_options_form

    @default("options_from_form")
    def _options_from_form_default(self):
        return self._onyxia_options_from_form

    @default("apply_user_options")
    def _apply_user_options_default(self):
        # Options are checked in start(), every time: nothing to apply beforehand (and
        # no "unhandled user_options" warning at every start).
        return lambda spawner, options: None

    def _render_options_form(self) -> str:
        """The form: what the user sent last from the spawn page if it is still to be
        shown (`Sent`: a link, or a refusal with its field marked), else their last
        launch's choice, else the catalog's defaults."""
        install_refusal_filter(self.log)
        catalog = self.catalog
        groups = self.group_names
        sent = self._take_sent()
        values = sent.values if sent else self._remembered_values(catalog, groups)
        error = sent.error if sent else None
        refused = error.field if error is not None else None
        if refused == "repository_dir":  # a hidden field: not carried again, refused
            values = {k: v for k, v in values.items() if k != "repository_dir"}
        visible = catalog.visible_to(groups)
        chosen = values.get("service")
        if chosen is None and visible:  # as choices.check picks it
            chosen = (
                catalog.default_service if catalog.default_service in visible else visible[0]
            ).name
        cards = []
        for service in visible:
            unavailable = self.unavailable_reason(service)
            picked, stray = _picked(service, values if service.name == chosen else {})
            problems = {}
            if service.name == chosen:
                problems = {name: _NOT_A_CHOICE for name in stray}
                if refused in _SELECTS:
                    problems[refused] = error.message
            shown = () if unavailable else _SELECTS if service.gpu else _SELECTS[:3]
            cards.append(
                {
                    "service": service,
                    "unavailable": unavailable,
                    "picked": picked,
                    "stray": stray,
                    "problems": problems,
                    # problems of options the card has no select for (GPUs of a CPU service)
                    "loose": [m for name, m in problems.items() if name not in shown],
                }
            )
        usage = LEDGER.usage(self.user.name, excluding=sent.server if sent else self.name)
        return _JINJA.get_template("options_form.html").render(
            cards=cards,
            selected=chosen,
            values=values,
            problems={refused: error.message} if refused in _FIELDS else {},
            gauges=gauges(usage, catalog.quotas.for_groups(groups)),
            prefilled=bool(sent and sent.link),
            init_sources=self._init_sources(),
        )

    def _init_sources(self) -> list[str] | None:
        """The URL patterns personal init scripts may come from; None: no init script
        provider (the form then has no init script field)."""
        from ..providers.initscripts import InitScriptProvider

        for provider in self.providers:
            if isinstance(provider, InitScriptProvider):
                return list(provider.allowed_personal_scripts)
        return None

    def _remembered_values(self, catalog, groups) -> dict[str, str]:
        """The last start's choice as the form's values, if it still passes the checks."""
        if not self.user_options:
            return {}
        try:
            return entered(check(self.user_options, catalog, groups).as_user_options())
        except ChoiceError:
            return {}

    # -- what the user sent, kept for the next rendering of the form (`Sent`) --------
    def _keep_sent(self, values: Mapping[str, str], error=None, *, link=False) -> None:
        _SENT[self.user.name] = Sent(self.name, dict(values), error, link)

    def _take_sent(self) -> Sent | None:
        sent = _SENT.get(self.user.name)
        if sent is None:
            return None
        fresh = sent.error is not None and time.monotonic() - sent.at < _FRESH
        if sent.server != self.name and not fresh:
            return None  # another server's: its own form shows it
        del _SENT[self.user.name]
        return sent

    def _forget_sent(self) -> None:
        sent = _SENT.get(self.user.name)
        if sent is not None and sent.server == self.name:
            del _SENT[self.user.name]

    def _onyxia_options_from_form(self, form_data):
        install_refusal_filter(self.log)
        catalog = self.catalog
        _SENT.pop(self.user.name, None)
        try:
            choice = check(from_form(form_data), catalog, self.group_names)
            self._check_runnable(choice, catalog)
        except ChoiceError as e:
            self._keep_sent(entered(form_data, form=True), e)
            raise
        return choice.as_user_options()

    def options_from_query(self, query_data):
        """A link pre-fills the form; only the form's POST (with its XSRF token) starts."""
        install_refusal_filter(self.log)
        _SENT.pop(self.user.name, None)
        try:
            check(normalize(query_data), self.catalog, self.group_names)  # a clear message
        except ChoiceError as e:
            self._keep_sent(entered(query_data), e, link=True)
            raise
        self._keep_sent(entered(query_data), link=True)
        raise PrefillOnly()

    def _check_runnable(self, choice: Choice, catalog: Catalog) -> None:
        service = catalog.get(choice.service)
        reason = self.unavailable_reason(service)
        if reason:
            raise ChoiceError(
                f"{service.display_name} cannot start here: {reason}.",
                status_code=409,
                reason="unavailable",
                field="service",
            )

    # -- progress ----------------------------------------------------------------------
    def emit(self, progress: int, message: str) -> None:
        if not hasattr(self, "_events"):
            self._events = []
        self._events.append({"progress": progress, "message": message})

    async def progress(self):
        sent, events = 0, None
        while True:
            current = getattr(self, "_events", [])
            if current is not events:  # a new start began: its events, from the first
                sent, events = 0, current
            while sent < len(events):
                yield events[sent]
                sent += 1
            await asyncio.sleep(0.25)

    # -- from options to plan ----------------------------------------------------------
    async def make_plan(self) -> LaunchPlan:
        """Check the stored options now, claim the quota, gather contributions, plan.

        Raises `ChoiceError` (a SpawnException) for anything the user can change; for a
        launch from the spawn page, what was asked for is kept for the form (`Sent`).
        """
        try:
            plan = await self._make_plan()
        except ChoiceError as e:
            if isinstance(self.handler, SpawnHandler):
                self._keep_sent(entered(self.user_options), e)
            raise
        self._forget_sent()
        return plan

    async def _make_plan(self) -> LaunchPlan:
        install_refusal_filter(self.log)
        self._events = []
        self.emit(5, "Checking your choice")
        catalog = self.catalog
        groups = self.group_names
        choice = check(self.user_options, catalog, groups)
        self._check_runnable(choice, catalog)
        service = catalog.get(choice.service)
        # canonical options: what the admin panel shows and the next start reuses
        self.user_options = choice.as_user_options()
        if self.orm_spawner is not None:
            self.orm_spawner.user_options = self.user_options

        launcher = Launcher(self.user.name, self.name, groups)
        draft = build_plan(catalog, choice, launcher)
        self.emit(10, "Reserving resources within your quota")
        LEDGER.claim(
            self.user.name,
            self.name,
            draft.claim,
            catalog.quotas.for_groups(groups),
            service.max_servers,
        )
        self._claim = draft.claim
        try:
            contributions = []
            auth_state = await self.user.get_auth_state() if self.providers else None
            request = PlanRequest(
                self.user.name,
                self.name,
                groups,
                service,
                choice,
                auth_state,
                emit=self.emit,
                refresh_auth_state=self._refresh_auth_state,
            )
            for provider in self.providers:
                if not provider.enabled_for(request):
                    continue
                try:
                    contributions.append(await provider.contribute(request))
                except ProviderError as e:
                    if provider.required:
                        raise ChoiceError(str(e), status_code=503, reason="provider") from None
                    self.emit(15, f"Starting without {type(provider).__name__}: {e}")
            plan = build_plan(catalog, choice, launcher, tuple(contributions))
            if choice.init_script and plan.init_timeout is None:  # never silently dropped
                raise ChoiceError(
                    "init_script: this datalab runs no personal init scripts "
                    "(its administrator has not set up InitScriptProvider).",
                    status_code=403,
                    reason="init-script-refused",
                    field="init_script",
                )
        except BaseException:
            self.release_plan()
            raise
        self.plan = plan
        self.log.info("Launching %s for %s: %s", self._log_name, self.user.name, plan.summary())
        return plan

    async def _refresh_auth_state(self) -> dict | None:
        """A provider's `request.refresh_auth_state()`: the authenticator renews the user's
        tokens (`refresh_user`), the hub keeps the new auth_state; None if it cannot."""
        authenticator = getattr(self, "authenticator", None)
        if authenticator is None or not hasattr(authenticator, "refresh_user"):
            return None
        refreshed = await maybe_future(authenticator.refresh_user(self.user))
        if isinstance(refreshed, dict) and refreshed.get("auth_state"):
            await self.user.save_auth_state(refreshed["auth_state"])
            return refreshed["auth_state"]
        return None

    # -- what an adapter shares ------------------------------------------------------
    def plan_environment(
        self, base: dict, *, secrets_dir: str, adapter_environment=None
    ) -> environment.ServerEnvironment:
        """The server's variables: base (the adapter's `get_env()`) under the plan's
        (`environment.assemble`: the layers and their order)."""
        return environment.assemble(
            base, self.plan, secrets_dir=secrets_dir, adapter_environment=adapter_environment
        )

    def release_plan(self) -> None:
        """Forget the claim and plan of a server that stopped or failed to start."""
        LEDGER.release(self.user.name, self.name)
        self.plan = None
        self._claim = None

    def restore_claim(self, state: dict) -> None:
        """The claim saved in state (`claim_state`), back in the quota ledger after a hub
        restart, and kept for the next `get_state`."""
        claim = state.get("claim")
        if isinstance(claim, dict):
            try:
                restored = Claim(**claim)
            except TypeError:
                self.log.warning("Ignoring an unreadable quota claim in %s's state", self._log_name)
                return
            LEDGER.restore(self.user.name, self.name, restored)
            self._claim = restored

    def claim_state(self) -> dict:
        """The running server's claim, for `get_state` (empty when it holds none)."""
        claim = getattr(self, "_claim", None)
        return {"claim": dict(claim.__dict__)} if claim else {}
