"""A launch plan as tests write one: every field of `LaunchPlan` with a plain default,
`a_plan(resources=..., files=...)` changing what a test is about."""

from __future__ import annotations

from onyxia_hub.catalog.model import frozen_map
from onyxia_hub.plan import LaunchPlan, Requirements, Resources

GIB = 1024**3


def a_plan(**changes) -> LaunchPlan:
    fields = dict(
        username="alice",
        server_name="",
        service="jupyter-python",
        service_display_name="Jupyter Python",
        version="2026.08",
        image="quay.io/jupyter/scipy-notebook:2026-08-03",
        software="python",
        command=None,
        default_url="/lab",
        requires=Requirements(),
        resources=Resources(1.0, 1.0, 2 * GIB, 2 * GIB),
        gpu=None,
        environment=frozen_map({"LANG": "C.UTF-8"}),
        local_environment=frozen_map(),
        secret_environment=frozen_map(),
        files=(),
        repository=None,
    )
    fields.update(changes)
    return LaunchPlan(**fields)
