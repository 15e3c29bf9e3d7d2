"""Providers feed launch plans: storage credentials, git identity... (see `base`)."""

from .base import PlanProvider, PlanRequest

__all__ = ["PlanProvider", "PlanRequest"]
