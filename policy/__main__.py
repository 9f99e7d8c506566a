"""CrossGuard entry point: wraps policy/rules.py for `pulumi preview --policy-pack policy`.

Only the Pulumi CLI runs this (constructing a PolicyPack starts its server); tests import `adapt` and
`crossguard_policies` to check the wrapping without starting anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rules import RULES, Subject  # noqa: E402


def adapt(resource_type, props, name, opts, provider) -> Subject:
    """A CrossGuard resource as our rules see it (CrossGuard exposes `protect`, not retain_on_delete)."""
    return Subject(
        type=resource_type,
        name=name,
        props=dict(props),
        protect=bool(getattr(opts, "protect", False)),
        provider=getattr(provider, "name", None),
        provider_props=dict(getattr(provider, "props", None) or {}),
    )


def _resource_policy(rule):
    def validate(args, report_violation):
        config = args.get_config() if hasattr(args, "get_config") else {}
        for message in rule.check(adapt(args.resource_type, args.props, args.name, args.opts, args.provider), config):
            report_violation(message, None)

    return ResourceValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY)


def _stack_policy(rule):
    def validate(args, report_violation):
        subjects = [adapt(r.resource_type, r.props, r.name, r.opts, r.provider) for r in args.resources]
        config = args.get_config() if hasattr(args, "get_config") else {}
        for urn_name, message in rule.check(subjects, config):
            report_violation(f"{urn_name}: {message}", None)

    return StackValidationPolicy(name=rule.name, description=rule.description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY)


def crossguard_policies() -> list:
    return [(_stack_policy if rule.stack else _resource_policy)(rule) for rule in RULES if rule.crossguard]


if __name__ == "__main__":
    PolicyPack(name="ray-platform-guardrails", enforcement_level=EnforcementLevel.MANDATORY,
               policies=crossguard_policies())
