"""Recorded offline previews as the policy rules see them."""

from __future__ import annotations

from pathlib import Path

from policy.rules import Subject
from stacks.offline import Recording, preview

ROOT = Path(__file__).resolve().parents[2]


def stack_names() -> list[str]:
    return sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def subjects(recording: Recording, revealed: bool = False) -> list[Subject]:
    """`revealed`: secret values in the clear, as CrossGuard hands them to policies (the offline preview masks them)."""
    providers = {r.name: r.inputs for r in recording.resources if r.type.startswith("pulumi:providers:")}
    return [
        Subject(type=r.type, name=r.name, props=r.revealed if revealed else r.inputs, protect=r.protect,
                retain_on_delete=r.retain_on_delete,
                provider=r.provider, provider_props=providers.get(r.provider or "", {}))
        for r in recording.resources
        if r.custom
    ]


def stack_subjects(stack: str) -> list[Subject]:
    return subjects(preview(stack))
