"""Kubernetes' own grammar, for what the catalog hands to pods: qualified names (label and
taint keys, extended resources), label values, node selectors and tolerations, checked
as the API server would check them, so that a catalog error shows at load time and not
as a refused pod.
"""

from __future__ import annotations

import re

from . import model
from .checker import Checker, key_path, show

# DNS subdomains (label key prefixes, resource domains) and the "name" part of qualified
# names and label values.
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")
QUALIFIED_NAME_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def qualified_name(text: str) -> bool:
    """Kubernetes qualified name: [prefix/]name, prefix a DNS subdomain, name <= 63."""
    prefix, slash, name = text.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return bool(QUALIFIED_NAME_PART.fullmatch(name))


def extended_resource(c: Checker, value, field: str):
    """A Kubernetes extended resource name, domain/name: nvidia.com/gpu, nvidia.com/mig-1g.5gb."""
    text = c.string(value, field, max_length=317)
    if text is None:
        return None
    domain = text.partition("/")[0]
    if "/" not in text or not qualified_name(text):
        return c.fail(
            field,
            f"{show(text)} is not an extended resource name "
            "(domain/name, e.g. nvidia.com/gpu or nvidia.com/mig-1g.5gb)",
        )
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        return c.fail(
            field, f"{show(text)}: the kubernetes.io domain is not for extended resources"
        )
    return text


def label_value(text) -> bool:
    """Kubernetes label value: empty, or up to 63 of [A-Za-z0-9_.-] starting and ending alnum."""
    return isinstance(text, str) and (text == "" or bool(QUALIFIED_NAME_PART.fullmatch(text)))


def node_selector(c: Checker, value, field: str):
    """Node labels a pod must match: valid label keys and string values."""
    before = len(c.issues)
    labels = c.mapping(value, field, free=True)
    if labels is None:
        return None
    for key, text in labels.items():
        here = key_path(field, key)
        if not qualified_name(key):
            c.fail(here, f"{show(key)} is not a Kubernetes label key ([prefix/]name)")
        elif not isinstance(text, str):
            c.wrong_type(text, here, "a string")
        elif not label_value(text):
            c.fail(
                here,
                f"{show(text)} is not a Kubernetes label value "
                "(at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)",
            )
    return model.frozen_map(labels) if len(c.issues) == before else None


def toleration(c: Checker, value, field: str):
    """A Kubernetes toleration, checked as the API server would."""
    before = len(c.issues)
    spec = c.mapping(
        value, field, optional=("key", "operator", "value", "effect", "tolerationSeconds")
    )
    if spec is None:
        return None
    operator = spec.get("operator", "Equal")
    if "operator" in spec and operator not in TOLERATION_OPERATORS:
        c.fail(f"{field}.operator", f"{show(operator)} is not Exists or Equal")
    if "key" in spec:
        key = spec["key"]
        if not isinstance(key, str):
            c.wrong_type(key, f"{field}.key", "a string")
        elif not qualified_name(key):
            c.fail(f"{field}.key", f"{show(key)} is not a Kubernetes taint key ([prefix/]name)")
    elif operator == "Equal":
        c.fail(f"{field}.key", "is required unless operator is Exists")
    if "value" in spec:
        text = spec["value"]
        if not isinstance(text, str):
            c.wrong_type(text, f"{field}.value", "a string")
        elif operator == "Exists" and text:
            c.fail(f"{field}.value", "must be empty when operator is Exists")
        elif not label_value(text):
            c.fail(f"{field}.value", f"{show(text)} is not a Kubernetes taint value")
    if "effect" in spec and spec["effect"] not in TOLERATION_EFFECTS:
        c.fail(
            f"{field}.effect",
            f"{show(spec['effect'])} is not one of {', '.join(TOLERATION_EFFECTS)}",
        )
    if "tolerationSeconds" in spec:
        c.integer(spec["tolerationSeconds"], f"{field}.tolerationSeconds", minimum=0)
        if spec.get("effect") != "NoExecute":
            c.fail(f"{field}.tolerationSeconds", "only applies with effect NoExecute")
    return model.frozen_map(spec) if len(c.issues) == before else None
