"""A provider for the test hub that plants known secrets into launches of `mutable`.

It exercises the provider seam the way storage and git providers use it: public and
secret variables, a secret file (memory-backed, outside the home) and a public file (in
the home). The values are fixed here so that tests can look for them everywhere.
"""

from __future__ import annotations

from onyxia_hub.catalog.model import frozen_map
from onyxia_hub.plan import Contribution, PlanFile
from onyxia_hub.providers.base import PlanProvider

PLANTED = {
    "planted secret variable": "planted-secret-variable-9f3c1e7a",
    "planted secret file": "planted-secret-file-4b2d8a61",
}


class PlantedProvider(PlanProvider):
    def enabled_for(self, request) -> bool:
        return request.service.name == "mutable"

    async def contribute(self, request):
        return Contribution(
            environment=frozen_map({"PLANTED_PUBLIC": f"public-for-{request.username}"}),
            secret_environment=frozen_map({"PLANTED_SECRET": PLANTED["planted secret variable"]}),
            files=(
                PlanFile(
                    "planted/credentials",
                    PLANTED["planted secret file"] + "\n",
                    mode=0o600,
                    secret=True,
                ),
                PlanFile(".config/planted/settings.toml", "public = true\n", mode=0o644),
            ),
        )
