"""`taskledger rebuild`: blue/green rebuild of the projections' read tables (see run.py and docs/tooling.md)."""

from taskledger.tools.rebuild.feed import Unappliable
from taskledger.tools.rebuild.plan import Plan, plan, render
from taskledger.tools.rebuild.run import Options, Refused, Switched, describe, rebuild

__all__ = ["Options", "Plan", "Refused", "Switched", "Unappliable", "describe", "plan", "rebuild", "render"]
