"""A server's environment, assembled one way for both adapters (a pure function).

The layers, each overriding the one before:

1. `base`: what JupyterHub gives every server (its API token and URLs, `Spawner.environment`
   from the operator), as the adapter's `get_env()` returns it;
2. the plan's public variables (the catalog's `environment`, the providers' public ones);
3. the adapter's own share of the catalog (on one machine, the service's
   `local.environment`; nothing on Kubernetes);
4. the plan's secret variables (providers' credentials): last, so nothing overrides them;
5. `ONYXIA_HUB_SECRETS_DIR`: where the adapter puts the plan's secret files, when it has
   some. It is a path: public, although its name contains SECRET.

What an adapter adds after this is its own business (on one machine the process tag, the
runtime directory and the GPUs it holds; on Kubernetes nothing); how it keeps secrets
out of sight is too (the process's environment on one machine, the server's Secret in a
pod: `k8s_objects.split_environment` with `secret_names` and `public_names` from here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..plan import SECRETS_DIR_ENV, LaunchPlan


@dataclass(frozen=True)
class ServerEnvironment:
    variables: dict[str, object]  # every variable, in the order of the layers
    secret_names: frozenset[str]  # the plan's secret variables
    public_names: frozenset[str]  # look secret by name, are not (a directory's path)


def assemble(
    base: Mapping[str, object],
    plan: LaunchPlan | None,
    *,
    secrets_dir: str,
    adapter_environment: Mapping[str, str] | None = None,
) -> ServerEnvironment:
    """The server's variables from base and plan (see the module docstring). Without a
    plan (a server resumed after a restart, being stopped), base alone."""
    variables = dict(base)
    if plan is None:
        return ServerEnvironment(variables, frozenset(), frozenset())
    variables.update(plan.environment)
    variables.update(adapter_environment or {})
    variables.update(plan.secret_environment)
    public = frozenset()
    if any(f.secret for f in plan.files):
        variables[SECRETS_DIR_ENV] = secrets_dir
        public = frozenset({SECRETS_DIR_ENV})
    return ServerEnvironment(variables, frozenset(plan.secret_environment), public)
