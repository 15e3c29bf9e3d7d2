"""From a choice to the objects sent to Kubernetes: OnyxiaSpawner against vanilla KubeSpawner.

Both run side by side in one process, without a cluster (KubeSpawner's configuration
loading and API client patched out), for the same catalog service:

- vanilla: `KubeSpawner` with the catalog translated into the equivalent `profile_list`
  (one profile per service: image, CPU, memory, environment, GPU resource, node selector,
  tolerations as `kubespawner_override`); a launch is `load_user_options()` (profile
  applied) then `get_pod_manifest()`. Its pod carries every variable, the hub's token
  included, in clear.
- onyxia: `OnyxiaSpawner`; a launch is `load_user_options()` (choice checked against the
  catalog as it is now, quota claimed, plan built, settings applied), `get_pod_manifest()`
  and `get_server_secret_manifest()` (the Secret with the token), then the claim released.

Launches alternate between the two (A B A B ...) so that machine noise hits both alike.
Prints the median time per launch of each and their ratio (onyxia / vanilla):

    .venv/bin/python benchmarks/pod_manifest.py --service jupyter-python --rounds 2000
    .venv/bin/python benchmarks/pod_manifest.py --catalog-recheck 0   # stat at every launch
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubespawner import KubeSpawner  # noqa: E402

from onyxia_hub.catalog.loader import default_catalog_path, load_catalog  # noqa: E402
from onyxia_hub.spawners.kube import OnyxiaSpawner  # noqa: E402
from tests.helpers.k8s_double import hub_user  # noqa: E402

TOKEN = "benchmark-token-0123456789abcdef"  # noqa: S105 (a fake hub token)


HUB = SimpleNamespace(
    public_host="", url="http://hub:8081/hub/", base_url="/hub/", api_url="http://hub:8081/hub/api"
)


def profile_list(catalog) -> list[dict]:
    """The catalog as KubeSpawner profiles, each service at its defaults."""
    profiles = []
    for service in catalog.services:
        override = {
            "image": service.default_version.image,
            "cpu_guarantee": service.cpu.default,
            "cpu_limit": service.cpu.default,
            "mem_guarantee": service.memory.default,
            "mem_limit": service.memory.default,
            "default_url": service.local.default_url,
            "environment": {
                **service.environment,
                "ONYXIA_HUB_SERVICE": service.name,
                "ONYXIA_HUB_SERVICE_VERSION": service.default_version.name,
            },
        }
        if service.gpu is not None:
            gpu = service.gpu.type(service.gpu.default_type)
            override.update(
                extra_resource_limits={gpu.resource: str(service.gpu.default_count)},
                node_selector=dict(gpu.node_selector),
                tolerations=[dict(t) for t in gpu.tolerations],
            )
        profiles.append(
            {
                "slug": service.name,
                "display_name": service.display_name,
                "default": service.default,
                "kubespawner_override": override,
            }
        )
    return profiles


async def vanilla_launch(spawner: KubeSpawner, options: dict):
    spawner.user_options = options
    await spawner.load_user_options()
    return await spawner.get_pod_manifest()


async def onyxia_launch(spawner: OnyxiaSpawner, options: dict):
    spawner.user_options = options
    try:
        await spawner.load_user_options()
        pod = await spawner.get_pod_manifest()
        secret = spawner.get_server_secret_manifest("0b5c6a52-1d0e-4a57-9b7c-2f3c9e1d2a10")
    finally:
        spawner.release_plan()
    return pod, secret


async def main(args) -> None:
    catalog = load_catalog([default_catalog_path()])
    service = catalog.get(args.service)
    if service is None:
        raise SystemExit(f"no service {args.service!r} in the catalog")
    groups = sorted(service.groups)
    common = dict(hub=HUB, api_token=TOKEN, oauth_client_id="jupyterhub-user-bench", namespace="b")
    vanilla = KubeSpawner(
        user=hub_user("bench", groups), profile_list=profile_list(catalog), **common
    )
    onyxia = OnyxiaSpawner(
        user=hub_user("bench", groups), catalog_recheck_interval=args.catalog_recheck, **common
    )
    runs = [
        ("vanilla", vanilla_launch, vanilla, {"profile": service.name}, []),
        ("onyxia", onyxia_launch, onyxia, {"service": service.name}, []),
    ]
    for _, launch, spawner, options, _ in runs:  # warm-up: imports, caches, catalog
        for _ in range(args.warmup):
            await launch(spawner, options)
    for _ in range(args.rounds):
        for _, launch, spawner, options, times in runs:
            begin = time.perf_counter()
            await launch(spawner, options)
            times.append(time.perf_counter() - begin)

    medians = {name: statistics.median(times) * 1000 for name, _, _, _, times in runs}
    recheck = f"catalog re-checked every {args.catalog_recheck:g} s"
    print(f"service {service.name}, {args.rounds} launches each, alternating ({recheck})")
    for name, _, _, _, times in runs:
        p90 = statistics.quantiles(times, n=10)[-1] * 1000
        print(f"  {name:8} median {medians[name]:.3f} ms   p90 {p90:.3f} ms")
    print(f"  ratio onyxia / vanilla: {medians['onyxia'] / medians['vanilla']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", default="jupyter-python")
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--catalog-recheck",
        type=float,
        default=OnyxiaSpawner.catalog_recheck_interval.default_value,
        help="OnyxiaSpawner.catalog_recheck_interval (0: stat the catalog at every launch)",
    )
    arguments = parser.parse_args()
    with (
        mock.patch("kubespawner.spawner.load_config"),
        mock.patch("kubespawner.spawner.shared_client"),
    ):
        asyncio.run(main(arguments))
