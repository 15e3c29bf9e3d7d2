"""Choices, quotas and launch plans as pure functions (no hub, no files).

The same checks run for every launch path; here they are exercised directly, with a
small catalog built in code. The hub-level tests send the same hostile table through
the real form, links and REST API.
"""

from __future__ import annotations

import dataclasses

import pytest

from onyxia_hub.catalog.model import (
    Catalog,
    CpuRange,
    GpuOptions,
    GpuType,
    Limits,
    MemoryRange,
    Quotas,
    Service,
    Version,
    frozen_map,
)
from onyxia_hub.choices import Choice, ChoiceError, check, entered, from_form
from onyxia_hub.plan import Contribution, Launcher, build_plan
from onyxia_hub.quotas import Claim, Ledger, gauges
from tests.helpers.hostile import HOSTILE

GiB = 2**30


def service(name, **kw) -> Service:
    base = dict(
        name=name,
        display_name=name.replace("-", " ").title(),
        description="",
        versions=(Version("v2", f"example.org/{name}:2"), Version("v1", f"example.org/{name}:1")),
        cpu=CpuRange((0.5, 1, 2, 4), 1, 0.5, 4),
        memory=MemoryRange((GiB, 2 * GiB, 4 * GiB), 2 * GiB, 512 * 2**20, 16 * GiB),
    )
    base.update(kw)
    return Service(**base)


GPU = GpuOptions(
    counts=(1, 2),
    default_count=1,
    default_type="a100",
    types=(
        GpuType(
            "a100",
            "NVIDIA A100",
            "nvidia.com/gpu",
            frozen_map({"gpu.product": "A100"}),
            (frozen_map({"key": "nvidia.com/gpu", "operator": "Exists"}),),
        ),
        GpuType("mig", "A100 MIG 1g", "nvidia.com/mig-1g.5gb"),
    ),
)
CATALOG = Catalog(
    services=(
        service("jupyter-python", default=True),
        service("jupyter-r"),
        service("pytorch-gpu", gpu=GPU),
        service("teachers-only", groups=frozenset({"teachers"})),
    ),
    quotas=Quotas(
        Limits(servers=2, cpu=4, memory=8 * GiB, gpus=0),
        frozen_map({"gpu-users": Limits(2, 4, 8 * GiB, 2), "teachers": Limits(5, 16, 32 * GiB, 0)}),
    ),
)


def test_defaults_fill_every_field():
    assert check({}, CATALOG, []) == Choice("jupyter-python", "v2", 1, 2 * GiB, 0, None)
    assert check({"service": "pytorch-gpu"}, CATALOG, []) == Choice(
        "pytorch-gpu", "v2", 1, 2 * GiB, 1, "a100"
    )


def test_every_path_shape_gives_the_same_choice():
    api = {"service": "jupyter-r", "version": "v1", "cpu": 2, "memory": "4Gi"}
    query = {"service": ["jupyter-r"], "version": ["v1"], "cpu": ["2"], "memory": ["4Gi"]}
    form = from_form(
        {
            "service": ["jupyter-r"],
            "_xsrf": ["token"],
            "version--jupyter-r": ["v1"],
            "cpu--jupyter-r": ["2"],
            "memory--jupyter-r": ["4Gi"],
            "cpu--jupyter-python": ["0.5"],
            "memory--jupyter-python": ["1Gi"],
        }
    )
    stored = check(api, CATALOG, []).as_user_options()  # what the database keeps
    expected = Choice("jupyter-r", "v1", 2, 4 * GiB)
    for raw in (api, query, form, stored):
        assert check(raw, CATALOG, []) == expected
    assert stored["profile"] == "jupyter-r"  # the admin panel's Profile column


@pytest.mark.parametrize("case", HOSTILE, ids=[c.id for c in HOSTILE])
def test_hostile_options_are_refused_with_a_clear_message(case):
    with pytest.raises(ChoiceError) as error:
        check(case.options, CATALOG, [])
    assert error.value.status_code == case.status
    assert case.message in error.value.message
    assert len(error.value.message) <= 300
    assert "Traceback" not in error.value.message


FIELDS = [  # (options, the option a refusal names: the spawn form marks that field)
    ({"service": "nope"}, "service"),
    ({"profile": "jupyter-python", "service": "jupyter-r"}, "service"),
    ({"version": "latest"}, "version"),
    ({"cpu": "lots"}, "cpu"),
    ({"cpu": 64}, "cpu"),
    ({"cpu": ["1", "2"]}, "cpu"),
    ({"cpu": True}, "cpu"),
    ({"cpu": float("nan")}, "cpu"),
    ({"memory": "4GB"}, "memory"),
    ({"memory": "1Ti"}, "memory"),
    ({"gpus": 1}, "gpus"),
    ({"gpu_type": "a100"}, "gpu_type"),
    ({"service": "pytorch-gpu", "gpus": 3}, "gpus"),
    ({"service": "pytorch-gpu", "gpus": "1.5"}, "gpus"),
    ({"service": "pytorch-gpu", "gpu_type": "h100"}, "gpu_type"),
    ({"repository": "file:///etc"}, "repository"),
    ({"repository": 42}, "repository"),
    ({"repository": "https://h/" + "r" * 3000}, "repository"),
    ({"branch": "--orphan"}, "branch"),
    ({"branch": 42}, "branch"),
    ({"init_script": "ftp://scripts.example.org/x.sh"}, "init_script"),
    ({"init_args": "--verbose"}, "init_args"),
    ({"init_script": "https://scripts.example.org/x.sh", "init_args": "a\x01"}, "init_args"),
    # not about one option: the message at the top of the form is all
    ({"image": "evil.example/miner"}, None),
    ({f"key{i}": "x" for i in range(20)}, None),
    (["service"], None),
]


@pytest.mark.parametrize("options, field", FIELDS, ids=[f"{i:02}" for i in range(len(FIELDS))])
def test_a_refusal_names_the_option_it_refuses(options, field):
    with pytest.raises(ChoiceError) as error:
        check(options, CATALOG, [])
    assert error.value.field == field
    assert field is None or field in error.value.message  # the message names it too


def test_form_refusals_of_no_option_name_none():
    with pytest.raises(ChoiceError) as error:
        from_form({"service": ["jupyter-r"], "privileged--jupyter-python": ["1"]})
    assert error.value.field is None


def test_entered_keeps_what_was_sent_as_text_within_bounds():
    form = {
        "service": ["jupyter-r"],
        "_xsrf": ["token"],
        "cpu--jupyter-r": ["2"],
        "cpu--jupyter-python": ["4"],  # another card's
        "version--jupyter-r": ["no such version"],  # kept: the form shows it, refused
        "memory--jupyter-r": ["1Gi", "2Gi"],  # repeated: left out
        "repository": [" https://git.example.org/x.git "],  # as typed, not stripped
        "branch": [""],
        "image": ["evil"],  # no option
        "init_script": ["https://s.example.org/" + "x" * 2000],  # longer than allowed
    }
    assert entered(form, form=True) == {
        "service": "jupyter-r",
        "cpu": "2",
        "version": "no such version",
        "repository": " https://git.example.org/x.git ",
    }
    stored = {"profile": "jupyter-r", "gpus": 1, "cpu": 0.5, "memory": float("inf")}
    assert entered(stored | {"version": True, "branch": {"a": 1}}) == {
        "service": "jupyter-r",
        "gpus": "1",
        "cpu": "0.5",
    }
    assert entered("not a mapping") == {}
    assert entered({f"key{i}": "x" for i in range(2000)}) == {}


def test_other_groups_services_are_invisible_and_refused():
    names = [s.name for s in CATALOG.visible_to([])]
    assert "teachers-only" not in names
    with pytest.raises(ChoiceError) as error:
        check({"service": "teachers-only"}, CATALOG, ["students"])
    # the same words as for a service that does not exist: nothing leaks
    assert error.value.message.startswith("There is no service 'teachers-only' in your catalog")
    assert check({"service": "teachers-only"}, CATALOG, ["teachers"]).service == "teachers-only"


def test_choices_are_checked_against_the_catalog_as_it_is_now():
    stored = check({"service": "jupyter-r", "cpu": 4}, CATALOG, []).as_user_options()
    smaller = dataclasses.replace(
        CATALOG,
        services=(
            service("jupyter-python", default=True),
            service("jupyter-r", cpu=CpuRange((1,), 1, 0.5, 2)),
        ),
    )
    with pytest.raises(ChoiceError, match="cpu: 4 cores is outside what Jupyter R allows"):
        check(stored, smaller, [])
    gone = dataclasses.replace(CATALOG, services=(service("jupyter-python", default=True),))
    with pytest.raises(ChoiceError, match="There is no service 'jupyter-r'"):
        check(stored, gone, [])


def test_plan_is_pure_immutable_and_complete():
    choice = check({"service": "pytorch-gpu", "gpus": 2, "cpu": 2, "memory": "4Gi"}, CATALOG, [])
    launcher = Launcher("alice", "gpu", frozenset({"gpu-users"}))
    secret = Contribution(
        environment=frozen_map({"AWS_S3_ENDPOINT": "s3.example.org"}),
        secret_environment=frozen_map({"AWS_SECRET_ACCESS_KEY": "s3cr3t"}),
    )
    plan = build_plan(CATALOG, choice, launcher, (secret,))
    assert plan == build_plan(CATALOG, choice, launcher, (secret,))
    assert plan.image == "example.org/pytorch-gpu:2"
    assert (plan.resources.cpu_limit, plan.resources.memory_limit) == (2, 4 * GiB)
    assert (plan.gpu.count, plan.gpu.resource) == (2, "nvidia.com/gpu")
    assert dict(plan.node_selector) == {"gpu.product": "A100"}
    assert plan.tolerations[0]["key"] == "nvidia.com/gpu"
    assert plan.environment["ONYXIA_HUB_SERVICE"] == "pytorch-gpu"
    assert plan.environment["AWS_S3_ENDPOINT"] == "s3.example.org"
    assert "AWS_SECRET_ACCESS_KEY" not in plan.environment
    assert plan.secret_environment["AWS_SECRET_ACCESS_KEY"] == "s3cr3t"
    assert "s3cr3t" not in plan.summary()
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.image = "evil/image"
    with pytest.raises(TypeError):
        plan.environment["LD_PRELOAD"] = "x"
    assert plan.claim == Claim("pytorch-gpu", 2, 4 * GiB, 2)


def test_a_variable_cannot_be_both_public_and_secret():
    choice = check({}, CATALOG, [])
    both = Contribution(
        environment=frozen_map({"TOKEN": "a"}), secret_environment=frozen_map({"TOKEN": "b"})
    )
    with pytest.raises(ValueError, match="both public and secret: TOKEN"):
        build_plan(CATALOG, choice, Launcher("alice"), (both,))


def test_quota_sums_servers_and_refuses_overflow():
    ledger = Ledger()
    limits = CATALOG.quotas.for_groups([])
    ledger.claim("alice", "", Claim("jupyter-python", 2, 4 * GiB), limits)
    ledger.claim("alice", "b", Claim("jupyter-python", 2, 4 * GiB), limits)
    with pytest.raises(ChoiceError) as error:
        ledger.claim("alice", "c", Claim("jupyter-python", 0.5, GiB), limits)
    assert error.value.status_code == 403
    assert "at most 2 server(s) at once" in error.value.message
    assert "you use 2 server(s), 4 cores, 8 GiB, 0 GPU(s)" in error.value.message
    ledger.claim("bob", "", Claim("jupyter-python", 4, 8 * GiB), limits)  # bob is separate
    ledger.release("alice", "b")
    with pytest.raises(ChoiceError, match="at most 4 CPU cores in all"):
        ledger.claim("alice", "c", Claim("jupyter-python", 4, GiB), limits)
    ledger.claim("alice", "c", Claim("jupyter-python", 2, GiB), limits)


def test_most_generous_group_wins_per_limit():
    limits = CATALOG.quotas.for_groups(["gpu-users", "teachers", "unrelated"])
    assert limits == Limits(servers=5, cpu=16, memory=32 * GiB, gpus=2)
    assert CATALOG.quotas.for_groups([]).gpus == 0


def test_no_gpu_without_a_gpu_quota():
    ledger = Ledger()
    with pytest.raises(ChoiceError, match="no GPU"):
        ledger.claim("alice", "", Claim("pytorch-gpu", 1, GiB, 1), CATALOG.quotas.for_groups([]))
    ledger.claim(
        "alice", "", Claim("pytorch-gpu", 1, GiB, 1), CATALOG.quotas.for_groups(["gpu-users"])
    )


def test_service_cap_on_concurrent_servers():
    ledger = Ledger()
    limits = Limits()
    ledger.claim("alice", "", Claim("pytorch-gpu", 1, GiB, 1), limits, max_servers_of_service=1)
    with pytest.raises(ChoiceError, match="at most 1 server"):
        ledger.claim(
            "alice", "x", Claim("pytorch-gpu", 1, GiB, 1), limits, max_servers_of_service=1
        )
    ledger.claim("alice", "x", Claim("jupyter-python", 1, GiB), limits, max_servers_of_service=1)


def test_gauges_warn_at_75_and_alert_at_95_percent():
    limits = Limits(servers=4, cpu=4, memory=8 * GiB, gpus=None)
    from onyxia_hub.quotas import Usage

    levels = {g.label: g.level for g in gauges(Usage(3, 3.9, GiB, 7), limits)}
    assert levels == {"Servers": "warning", "CPU": "alert", "Memory": "ok", "GPUs": "ok"}
    texts = {g.label: g.text for g in gauges(Usage(3, 3.9, GiB, 7), limits)}
    assert texts["GPUs"] == "7 (no limit)" and texts["Memory"] == "1 GiB of 8 GiB"


@pytest.mark.parametrize(
    "sent, shown",
    [
        ("https://ann:glpat-secret@git.example.org/a.git", "https://git.example.org/a.git"),
        ("https://glpat-secret@git.example.org/a.git", "https://git.example.org/a.git"),
        ("https://git.example.org/a.git", "https://git.example.org/a.git"),
        ("https://[::1@x/a.git", None),  # unparsable, with an '@': not shown at all
    ],
)
def test_a_refused_urls_credentials_are_never_shown_back(sent, shown):
    from onyxia_hub.choices import entered

    for name in ("repository", "init_script"):
        assert entered({"service": "jupyter-python", name: sent}).get(name) == shown
