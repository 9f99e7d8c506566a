"""Runs in the policy pack's own venv: feeds resources (JSON on stdin) through the CrossGuard policies
exactly as `pulumi preview --policy-pack` would call them, and prints the violations as JSON."""

import importlib.util
import json
import sys
from pathlib import Path

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

pack_main = Path(__file__).resolve().parents[2] / "policy" / "__main__.py"
spec = importlib.util.spec_from_file_location("ray_platform_pack", pack_main)
pack = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pack)  # not run as __main__: no PolicyPack server is started


def options(item):
    return PolicyResourceOptions(protect=item["protect"], ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])


def provider(item):
    if not item.get("provider"):
        return None
    return PolicyProviderResource("pulumi:providers:x", item.get("provider_props", {}), "urn:x", item["provider"])


resources = json.load(sys.stdin)
violations = []
for policy in pack.crossguard_policies():
    def report(message, urn=None, _name=policy.name):
        violations.append([_name, message])

    if isinstance(policy, ResourceValidationPolicy):
        for item in resources:
            args = ResourceValidationArgs(item["type"], item["props"], f"urn:{item['name']}", item["name"],
                                          options(item), provider(item))
            policy.validate(args, report)
    else:
        stack = [PolicyResource(item["type"], item["props"], f"urn:{item['name']}", item["name"], options(item),
                                provider(item), None, [], {}) for item in resources]
        policy.validate(StackValidationArgs(stack), report)
print(json.dumps({"policies": [p.name for p in pack.crossguard_policies()], "violations": violations}))
