"""Launching catalog services on the embedded hub, through every path a launch can take.

Hostile options go through the spawn form, links, the REST API (JupyterHub 6 body and
the legacy one) and options stored by PUT or PATCH: every one is refused with a clear
4xx, none starts anything, and the hub (consecutive_failure_limit = 5) keeps running.
Real launches then check what users rely on: the chosen resources and environment are
visible inside, quotas hold (also for launches arriving together), GPUs are handed out
one server per device, other groups' services stay invisible, and a catalog changed or
broken while the hub runs is handled.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time
from html import unescape

import pytest

from tests.helpers import procs
from tests.helpers.client import HubClient
from tests.helpers.hostile import HOSTILE, as_form, as_query
from tests.helpers.kernels import Kernel

GiB = 2**30


def join_group(admin: HubClient, group: str, user: str) -> None:
    admin.api("POST", f"/groups/{group}")  # 201, or 409 when it exists
    r = admin.api("POST", f"/groups/{group}/users", json={"users": [user]})
    assert r.status_code == 200, r.text


def spawn_error(html: str) -> str:
    start = html.find('class="spawn-error-msg')
    if start < 0:
        return ""
    return unescape(html[html.find(">", start) + 1 : html.find("</p>", start)]).strip()


def server_names(admin: HubClient, user: str) -> dict:
    return admin.api("GET", f"/users/{user}").json()["servers"]


@pytest.fixture(scope="module")
def mallory(admin, make_user):
    """A user who tries every hostile option (in gpu-users, so GPU options are checked)."""
    client = make_user("mallory")
    join_group(admin, "gpu-users", "mallory")
    return client


# -- hostile options, every path ------------------------------------------------------
PATHS = ["form", "link", "api", "api-legacy", "put-then-start", "patch-then-start"]


def attempt(client: HubClient, path: str, case, server: str) -> tuple[int, str]:
    """Send case.options through one path; (HTTP status, message shown to the user)."""
    if path == "form":
        r = client.post_form("/hub/spawn", as_form(case))
        return r.status_code, spawn_error(r.text)
    if path == "link":
        r = client.get("/hub/spawn?" + as_query(case))
        return r.status_code, spawn_error(r.text)
    if path == "api":
        r = client.api(
            "POST", f"/users/mallory/servers/{server}", json={"user_options": case.options}
        )
        client.api("DELETE", f"/users/mallory/servers/{server}", json={"remove": True})
    elif path == "api-legacy":
        r = client.api("POST", "/users/mallory/server", json=case.options)
    else:
        if path == "put-then-start":
            stored = client.api(
                "PUT", f"/users/mallory/servers/{server}", json={"user_options": case.options}
            )
        else:
            client.api("PUT", f"/users/mallory/servers/{server}", json={"user_options": {}})
            stored = client.api(
                "PATCH", f"/users/mallory/servers/{server}", json={"user_options": case.options}
            )
        assert stored.status_code in (200, 201), stored.text  # stored verbatim: not checked yet
        r = client.api("POST", f"/users/mallory/servers/{server}")  # no body: stored options
        client.api("DELETE", f"/users/mallory/servers/{server}", json={"remove": True})
    try:
        message = r.json().get("message", "")
    except ValueError:
        message = r.text
    return r.status_code, message


@pytest.mark.parametrize("path", PATHS)
def test_hostile_options_are_refused_on_every_path(hub, mallory, path):
    refused = 0
    for i, case in enumerate(HOSTILE):
        status, message = attempt(mallory, path, case, server=f"h{i}")
        assert status == case.status, (case.id, status, message)
        assert case.message in message, (case.id, message)
        assert "Traceback" not in message and len(message) < 400
        refused += 1
    assert refused == len(HOSTILE) >= 40
    # nothing started, and the hub is still there (consecutive_failure_limit = 5)
    assert not [s for s in server_names(mallory, "mallory").values() if s.get("started")]
    assert not procs.user_servers("mallory")
    assert hub.api_ready()


def test_refusals_are_logged_in_one_bounded_line(hub, mallory):
    log = (hub.state_dir / "logs" / "hub.log").read_text()
    refusals = [
        line
        for line in log.splitlines()
        if "Refused launch options" in line or "Not starting mallory" in line
    ]
    assert len(refusals) >= 2 * len(HOSTILE)
    assert max(len(line) for line in refusals) < 600
    # no traceback around refusals, and the 5000-character service name never hits the log
    assert "Traceback" not in "\n".join(line for line in log.splitlines() if "mallory" in line)
    assert "a" * 1000 not in log


def test_a_link_prefills_the_form_and_never_starts_a_server(hub, mallory):
    # as a page on another site would have the browser do it
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    r = mallory.get(
        "/hub/spawn?opt-service=jupyter-python&opt-cpu=2&opt-memory=1Gi", headers=headers
    )
    assert r.status_code == 200
    assert 'id="prefill-notice"' in r.text
    assert 'value="2" selected' in r.text  # the link's CPU is preselected
    time.sleep(1)
    assert not server_names(mallory, "mallory")
    assert not procs.user_servers("mallory")
    # and a cross-site form POST lacks the XSRF token
    r = mallory.post_form("/hub/spawn", {"service": "jupyter-python"}, xsrf=False, headers=headers)
    assert r.status_code == 403
    assert not procs.user_servers("mallory")


def test_unavailable_services_say_what_is_missing(hub, admin, mallory):
    page = mallory.get("/hub/spawn").text
    assert "Unavailable here: needs the program code-server." in page
    gpu_note = page.split('id="unavailable-pytorch-gpu"')[1].split("</p>")[0]
    assert "needs the Python module torch" in unescape(gpu_note)
    r = mallory.api(
        "POST", "/users/mallory/servers/vs", json={"user_options": {"service": "vscode-python"}}
    )
    assert r.status_code == 409
    assert r.json()["message"] == (
        "VS Code Python cannot start here: needs the program code-server."
    )
    mallory.api("DELETE", "/users/mallory/servers/vs", json={"remove": True})
    # a service whose environment is not built here (tests/profiles/unbuilt.yaml)
    missing = (
        "needs the julia environment: it is not built here (scripts/setup --with julia builds it)"
    )
    assert f"Unavailable here: {missing}." in unescape(page)
    r = mallory.api(
        "POST", "/users/mallory/servers/jl", json={"user_options": {"service": "unbuilt"}}
    )
    assert r.status_code == 409
    assert r.json()["message"] == f"Julia (not built) cannot start here: {missing}."
    mallory.api("DELETE", "/users/mallory/servers/jl", json={"remove": True})


def test_other_groups_services_are_invisible_and_cannot_be_launched(hub, admin, make_user):
    student = make_user("student")
    assert 'value="teachers-only"' not in student.get("/hub/spawn").text
    r = student.api(
        "POST", "/users/student/servers/t", json={"user_options": {"service": "teachers-only"}}
    )
    assert r.status_code == 400
    assert r.json()["message"].startswith("There is no service 'teachers-only' in your catalog")
    student.api("DELETE", "/users/student/servers/t", json={"remove": True})
    join_group(admin, "teachers", "student")
    assert 'value="teachers-only"' in student.get("/hub/spawn").text


# -- real launches -------------------------------------------------------------------
@pytest.fixture(scope="module")
def python_server(admin, make_user):
    """quota-user's first server: Jupyter Python with 0.5 CPU and 1 GiB, started by the form."""
    user = make_user("quota-user")
    r = user.post_form(
        "/hub/spawn/quota-user/one",
        {
            "service": "jupyter-python",
            "version--jupyter-python": "2026.06",
            "cpu--jupyter-python": "0.5",
            "memory--jupyter-python": "1Gi",
        },
        allow_redirects=False,
    )
    assert r.status_code == 302, spawn_error(r.text)
    user.wait_ready("quota-user", "one")
    yield user
    for name in list(server_names(admin, "quota-user")):
        admin.stop_server("quota-user", name)


def test_chosen_resources_and_environment_are_visible_inside(python_server):
    model = python_server.api("GET", "/users/quota-user").json()["servers"]["one"]
    assert model["user_options"]["profile"] == "jupyter-python"  # the admin panel's column
    with Kernel(python_server, "quota-user", server="one") as kernel:
        out = (
            kernel.run(
                "import os\n"
                "for k in ('ONYXIA_HUB_SERVICE', 'ONYXIA_HUB_SERVICE_VERSION', 'CPU_LIMIT',"
                " 'MEM_LIMIT', 'CUDA_VISIBLE_DEVICES', 'LANG'): print(k, repr(os.environ.get(k)))\n"
                "print(open('/proc/self/cgroup').read())"
            )
            .check()
            .stdout
        )
    assert "ONYXIA_HUB_SERVICE 'jupyter-python'" in out
    assert "ONYXIA_HUB_SERVICE_VERSION '2026.06'" in out
    assert "CPU_LIMIT '0.5'" in out
    assert f"MEM_LIMIT '{GiB}'" in out
    assert "CUDA_VISIBLE_DEVICES ''" in out
    assert "LANG 'C.UTF-8'" in out
    memory_line = next(line for line in out.splitlines() if ":memory:" in line)
    cgroup = memory_line.split(":", 2)[2]
    limit = int(open(f"/sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes").read())
    assert limit == GiB


def test_the_memory_limit_holds_and_the_server_survives(python_server):
    from tests.helpers.kernels import KernelDied

    with Kernel(python_server, "quota-user", server="one") as kernel:
        kernel.run("small = bytearray(200 * 2**20); print(len(small))").check()
        with pytest.raises(KernelDied):
            kernel.run("big = bytearray(3 * 2**30)", timeout=60)
        # the kernel was ended, the server lives on and gives a fresh kernel
        assert kernel.run("print('still here')").check().stdout == "still here\n"
    r = python_server.session.get(
        python_server.url("/user/quota-user/one/api/status"),
        headers={"Authorization": f"token {python_server.new_token('quota-user')}"},
    )
    assert r.status_code == 200


def test_quota_holds_for_launches_arriving_together(hub, python_server, admin):
    """quota-user may run 2 servers: of two launches sent at once, exactly one passes."""
    token = python_server.new_token("quota-user")

    def launch(name):
        return python_server.api(
            "POST",
            f"/users/quota-user/servers/{name}",
            token=token,
            json={"user_options": {"service": "jupyter-python", "cpu": "0.5", "memory": "1Gi"}},
        )

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(launch, ["two", "three"]))
    statuses = sorted(r.status_code for r in results)
    assert statuses[0] in (201, 202) and statuses[1] == 403, [r.text for r in results]
    refused = next(r for r in results if r.status_code == 403)
    assert "exceed your quota (at most 2 server(s) at once)" in refused.json()["message"]
    # the quota gauges show it
    page = python_server.get("/hub/spawn/quota-user/four").text
    assert "Servers: 2 of 2" in page and 'data-level="alert"' in page


def test_gpus_are_handed_out_one_server_per_device(hub, admin, make_user):
    users = ["gpu-a", "gpu-b"]
    for name in users:
        make_user(name)
        join_group(admin, "gpu-users", name)
        r = admin.api(
            "POST",
            f"/users/{name}/server",
            json={"user_options": {"service": "gpu-test", "gpus": 1}},
        )
        assert r.status_code in (201, 202), r.text
    try:
        for name in users:
            admin.wait_ready(name)
        devices = [procs.user_servers(n)[0].environ["CUDA_VISIBLE_DEVICES"] for n in users]
        assert sorted(devices) == ["GPU-test-0", "GPU-test-1"]
        # both devices are held: a third GPU server is refused, and nothing starts
        make_user("gpu-c")
        join_group(admin, "gpu-users", "gpu-c")
        r = admin.api(
            "POST", "/users/gpu-c/server", json={"user_options": {"service": "gpu-test", "gpus": 1}}
        )
        assert r.status_code == 409
        assert r.json()["message"].startswith("1 GPU asked for, but only 0 of 2 are free")
        assert not procs.user_servers("gpu-c")
    finally:
        for name in users:
            admin.stop_server(name)
    # released: the next one gets a device
    r = admin.api(
        "POST", "/users/gpu-c/server", json={"user_options": {"service": "gpu-test", "gpus": 2}}
    )
    assert r.status_code in (201, 202), r.text
    admin.wait_ready("gpu-c")
    assert procs.user_servers("gpu-c")[0].environ["CUDA_VISIBLE_DEVICES"] == (
        "GPU-test-0,GPU-test-1"
    )
    admin.stop_server("gpu-c")


@pytest.mark.parametrize(
    "service,kernel,code,expected",
    [
        (
            "jupyter-r",
            "ir",
            'cat(Sys.getenv("ONYXIA_HUB_SERVICE"), Sys.getenv("MEM_LIMIT"))',
            f"jupyter-r {2 * GiB}",
        ),
        (
            "jupyter-pyspark",
            "python3",
            "from pyspark.sql import SparkSession\n"
            "spark = SparkSession.builder.master('local[1]').appName('t')"
            ".config('spark.ui.enabled', 'false').getOrCreate()\n"
            "print(spark.range(1000).selectExpr('sum(id) as s').collect()[0].s)\n"
            "spark.stop()",
            "499500",
        ),
    ],
    ids=["jupyter-r", "jupyter-pyspark"],
)
def test_services_launch_for_real(hub, admin, make_user, service, kernel, code, expected):
    name = f"user-{service}"
    make_user(name)
    r = admin.api(
        "POST",
        f"/users/{name}/server",
        json={"user_options": {"service": service, "memory": "2Gi"}},
    )
    assert r.status_code in (201, 202), r.text
    try:
        admin.wait_ready(name)
        with Kernel(admin, name, kernel_name=kernel) as k:
            result = k.run(code, timeout=180).check()
        assert result.stdout.strip() == expected
    finally:
        admin.stop_server(name)


# -- the catalog while the hub runs ----------------------------------------------------
def test_catalog_changes_apply_without_restart_and_stored_options_are_rechecked(
    hub, admin, make_user, test_catalog
):
    user = make_user("changer")
    stored = admin.api(
        "PUT",
        "/users/changer/servers/later",
        json={"user_options": {"service": "mutable", "cpu": 2}},
    )
    assert stored.status_code in (200, 201), stored.text
    service_file = test_catalog / "mutable.yaml"
    original = service_file.read_text()
    try:
        # the operator lowers the bound: the stored choice is refused at start
        service_file.write_text(
            original.replace("max: 2}", "max: 1}").replace(
                "presets: [0.5, 1, 2]", "presets: [0.5, 1]"
            )
        )
        time.sleep(1.2)  # the hub checks the catalog's files at most once a second
        r = admin.api("POST", "/users/changer/servers/later")
        assert r.status_code == 400
        assert (
            "cpu: 2 cores is outside what Mutable service allows (0.5 to 1 cores)"
            in (r.json()["message"])
        )
        # a broken edit keeps the last good catalog, and says so in the log once
        service_file.write_text(
            original.replace("display_name: Mutable service", "display_name: [broken")
        )
        time.sleep(1.2)
        assert "Mutable service" in user.get("/hub/spawn").text
        user.get("/hub/spawn")
        log = (hub.state_dir / "logs" / "hub.log").read_text()
        assert "the previous catalog stays in use" in log
        assert log.count("mutable.yaml: is not valid YAML") == 1  # once per change, not per page
    finally:
        service_file.write_text(original)
        admin.api("DELETE", "/users/changer/servers/later", json={"remove": True})
    assert not procs.user_servers("changer")


def test_progress_events_speak_to_users(hub, admin, make_user):
    make_user("watcher")
    options = {"service": "jupyter-python", "cpu": 0.5, "memory": "1Gi"}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # the API answers only once the server is ready or after 10 s: listen meanwhile
        started = pool.submit(
            admin.api, "POST", "/users/watcher/server", json={"user_options": options}
        )
        messages = []
        deadline = time.monotonic() + 60
        while not messages and time.monotonic() < deadline:
            with admin.session.get(
                admin.url("/hub/api/users/watcher/server/progress"),
                headers={"X-XSRFToken": admin.xsrf},
                stream=True,
                timeout=90,
            ) as r:
                if r.status_code != 200:
                    time.sleep(0.05)
                    continue
                for line in r.iter_lines(decode_unicode=True):
                    if line.startswith("data:"):
                        event = json.loads(line[5:])
                        messages.append(event.get("message", ""))
                        if event.get("ready") or event.get("failed"):
                            break
        assert started.result().status_code in (201, 202)
    admin.stop_server("watcher")
    text = "\n".join(messages)
    for expected in (
        "Checking your choice",
        "Reserving resources within your quota",
        "Preparing your home directory",
        "Setting your limits (0.5 CPU, 1 GiB)",
        "Starting Jupyter Python",
    ):
        assert expected in text, text


def test_no_secret_leaks_anywhere(hub, admin, hub_admin_password, python_server, mallory):
    """Hub secrets and a running server's token: not in logs, pages, command lines, homes,
    nor in any process environment other than the server's own."""
    from tests.helpers.secrets import SecretScanner

    values = {
        f"hub {p.name}": p.read_text().strip()
        for p in (hub.state_dir / "hub" / "secrets").iterdir()
    }
    values["admin password"] = hub_admin_password
    values["mallory's password"] = mallory.password
    [server] = procs.user_servers("quota-user", "one")
    values["quota-user's server token"] = server.environ["JUPYTERHUB_API_TOKEN"]
    scanner = SecretScanner(values)
    findings = scanner.scan_logs(hub)
    findings += scanner.scan_pages(
        admin, ["/hub/home", "/hub/admin", "/hub/accounts", "/hub/spawn/admin/x", "/hub/token"]
    )
    findings += scanner.scan_pages(mallory, ["/hub/spawn", "/hub/home"])
    findings += scanner.scan_command_lines()
    findings += scanner.scan_files(hub.state_dir / "homes")
    hub_pids = [hub.proc.pid, int((hub.state_dir / "hub" / "proxy.pid").read_text())]
    findings += scanner.scan_environments(
        except_pids=[
            *hub_pids,
            *[
                p.pid
                for p in procs.processes()
                if p.environ.get("ONYXIA_HUB_SERVER_ID") == server.environ["ONYXIA_HUB_SERVER_ID"]
            ],
        ]
    )
    SecretScanner.assert_clean(findings)


def test_provider_contributions_reach_the_server_and_secrets_stay_in_memory(hub, admin, make_user):
    from tests.helpers.planted import PLANTED
    from tests.helpers.secrets import SecretScanner

    make_user("planted-user")
    r = admin.api(
        "POST", "/users/planted-user/server", json={"user_options": {"service": "mutable"}}
    )
    assert r.status_code in (201, 202), r.text
    admin.wait_ready("planted-user")
    [server] = procs.user_servers("planted-user")
    secrets_dir = server.environ["ONYXIA_HUB_SECRETS_DIR"]
    home = hub.state_dir / "homes" / "planted-user"
    try:
        assert server.environ["PLANTED_PUBLIC"] == "public-for-planted-user"
        assert server.environ["PLANTED_SECRET"] == PLANTED["planted secret variable"]
        secret_file = os.path.join(secrets_dir, "planted", "credentials")
        assert secrets_dir.startswith("/dev/shm/")  # memory, not the home's disk
        info = os.stat(secret_file)
        assert (info.st_uid, info.st_mode & 0o777) == (server.uid, 0o600)
        assert open(secret_file).read() == PLANTED["planted secret file"] + "\n"
        public = home / ".config" / "planted" / "settings.toml"
        assert public.read_text() == "public = true\n" and public.stat().st_uid == server.uid
        scanner = SecretScanner(PLANTED)
        findings = scanner.scan_files(home) + scanner.scan_logs(hub)
        findings += scanner.scan_command_lines()
        findings += scanner.scan_pages(admin, ["/hub/admin", "/hub/home"])
        SecretScanner.assert_clean(findings)
    finally:
        admin.stop_server("planted-user")
    assert not os.path.exists(secrets_dir)  # gone with the server
