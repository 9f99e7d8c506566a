"""Offline preview: `./bin/preview STACK [--json | --cost | --diff BASE.json | --graph] [--set KEY=VALUE ...]`.

`./bin/preview` creates .venv and runs `python -m stacks.preview` in it. It runs the real program under
Pulumi mocks with the stack's own Pulumi.STACK.yaml (no Pulumi CLI, Docker or cloud account), checks nested
inputs against the provider SDKs, and prints a table, JSON, what the stack costs per hour (stacks/cost.py),
a diff against an earlier JSON, or a Mermaid graph. A bad config fails exactly as `pulumi up` would;
documentation placeholders left in the stack file are warnings (errors with --for-deploy, which bin/deploy uses).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import pulumi

from stacks import cost
from stacks.errors import STACK_ERRORS, error_line
from stacks.offline import PROJECT_DIR, Recording, flatten, preview, qualify
from stacks.sdk_check import check_inputs
from stacks.stack_file import placeholders


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {flag} {item!r}: expected key=value")
        out[key] = value
    return out


def sdk_problems(recording: Recording) -> list[str]:
    return [f"{r.type}::{r.name}: {p}" for r in recording.resources if r.custom for p in check_inputs(r.type, r.inputs)]


def table(recording: Recording) -> str:
    rows = [("TYPE", "NAME", "PARENT", "PROVIDER")]
    rows += sorted((r.type, r.name, (r.parent or "").split("::")[-1], r.provider or "") for r in recording.resources)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    document = recording.to_json()
    lines += ["", f"{len(recording.resources)} resources", "",
              "Outputs (values marked computed are made up offline; a real deploy knows them):"]
    computed = document["computed"]["outputs"]
    for key, value in document["outputs"].items():
        marked = [p for p in computed if p == key or p.startswith((f"{key}.", f"{key}["))]
        note = "" if not marked else "  # computed" if marked == [key] else f"  # computed: {', '.join(marked)}"
        lines.append(f"  {key}: {json.dumps(value)}{note}")
    return "\n".join(lines)


def diff(base: dict[str, Any], head: dict[str, Any]) -> str:
    """Created, changed (only the fields that differ) and removed resources, grouped by parent component."""
    def index(doc):
        return {f"{r['type']}::{r['name']}": r for r in doc.get("resources", [])}

    old, new = index(base), index(head)
    groups: dict[str, list[str]] = {}

    def add(resource: dict, line: str) -> None:
        groups.setdefault(resource.get("parent") or "(stack)", []).append(line)

    for ref in sorted(new.keys() - old.keys()):
        add(new[ref], f"  + {ref}")
    for ref in sorted(old.keys() - new.keys()):
        add(old[ref], f"  - {ref}")
    changed = 0
    secrets_a, secrets_b = base.get("secrets", {}), head.get("secrets", {})
    for ref in sorted(old.keys() & new.keys()):
        a = flatten({k: v for k, v in old[ref].items() if k not in ("type", "name")})
        b = flatten({k: v for k, v in new[ref].items() if k not in ("type", "name")})
        fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        # Secrets print as "[secret]" on both sides; their fingerprints tell whether the value changed.
        hidden = secrets_a.get(ref, {}), secrets_b.get(ref, {})
        changed_secrets = sorted(k for k in hidden[0].keys() & hidden[1].keys()
                                 if hidden[0][k] != hidden[1][k] and k not in fields)
        if fields or changed_secrets:
            changed += 1
            add(new[ref], f"  ~ {ref}")
            lines = [f"      {f}: {json.dumps(a.get(f))} => {json.dumps(b.get(f))}" for f in fields]
            lines += [f"      {f}: [secret] changed (value hidden; `pulumi up` updates or replaces the resource)"
                      for f in changed_secrets]
            groups[new[ref].get("parent") or "(stack)"] += sorted(lines)
    out_a, out_b = flatten(base.get("outputs", {})), flatten(head.get("outputs", {}))
    output_lines = [f"  ~ {k}: {json.dumps(out_a.get(k))} => {json.dumps(out_b.get(k))}"
                    for k in sorted(out_a.keys() | out_b.keys()) if out_a.get(k) != out_b.get(k)]
    hidden = secrets_a.get("(outputs)", {}), secrets_b.get("(outputs)", {})
    output_lines += [f"  ~ {k.removeprefix('outputs.')}: [secret] changed (value hidden)"
                     for k in sorted(hidden[0].keys() & hidden[1].keys()) if hidden[0][k] != hidden[1][k]]
    created, removed = len(new.keys() - old.keys()), len(old.keys() - new.keys())
    lines = [f"{created} to create, {changed} to change, {removed} to remove"]
    for group in sorted(groups):
        lines += ["", group, *groups[group]]
    if output_lines:
        lines += ["", "Outputs:", *output_lines]
    return "\n".join(lines)


def graph(recording: Recording) -> str:
    """Mermaid: components as subgraphs, resources as nodes, dependencies as arrows."""
    ids = {r.ref: f"r{i}" for i, r in enumerate(recording.resources)}
    children: dict[str | None, list] = {}
    for r in recording.resources:
        children.setdefault(r.parent, []).append(r)
    lines = ["graph LR"]

    def emit(parent: str | None, indent: str) -> None:
        for r in children.get(parent, []):
            label = f"{r.name}<br/><small>{r.type.split(':')[-1]}</small>"
            if r.ref in children:
                lines.append(f'{indent}subgraph {ids[r.ref]}["{label}"]')
                emit(r.ref, indent + "  ")
                lines.append(f"{indent}end")
            else:
                lines.append(f'{indent}{ids[r.ref]}["{label}"]')

    emit(None, "  ")
    for r in recording.resources:
        for dep in r.dependencies:
            if dep in ids and dep not in children:
                lines.append(f"  {ids[dep]} --> {ids[r.ref]}")
    return "\n".join(lines)


def read_base(path: str) -> dict[str, Any]:
    """The earlier `--json` output to diff against; a missing or non-JSON file is one clear error."""
    try:
        document = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SystemExit(f"error: --diff {path}: cannot read it ({exc.strerror}) (allowed: a file written by "
                         "`./bin/preview STACK --json > BASE.json`)") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SystemExit(f"error: --diff {path}: not JSON (allowed: a file written by "
                         "`./bin/preview STACK --json > BASE.json`)") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise SystemExit(f"error: --diff {path}: not a preview (no `resources` list) (allowed: a file written by "
                         "`./bin/preview STACK --json > BASE.json`)")
    return document


def placeholder_report(stack: str, overridden: set[str]) -> list[str]:
    """Documentation placeholders still in Pulumi.STACK.yaml (keys given with --set/--set-secret excepted)."""
    path = PROJECT_DIR / f"Pulumi.{stack}.yaml"
    return [f"{path.name} {p}" for p in placeholders(path) if p.key.split(".")[0].split("[")[0] not in overridden]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./bin/preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack name: reads Pulumi.STACK.yaml")
    parser.add_argument("--json", action="store_true", help="print resources and outputs as JSON")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--set-secret", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key with a secret value")
    parser.add_argument("--diff", metavar="BASE.json", help="what changes against an earlier --json output")
    parser.add_argument("--graph", action="store_true", help="print a Mermaid diagram")
    parser.add_argument("--cost", action="store_true", help="print what the stack costs per hour at min and max scale")
    parser.add_argument("--credit-price", type=float, metavar="USD",
                        help="price of one Snowflake credit (default: the stack's credit_price_usd, else "
                             "prices/snowflake.yaml credit_price)")
    parser.add_argument("--for-deploy", action="store_true",
                        help="fail on documentation placeholders left in the stack file (bin/deploy uses this)")
    args = parser.parse_args(argv)
    if args.credit_price is not None and args.credit_price <= 0:
        raise SystemExit(f"error: --credit-price {args.credit_price}: a credit costs more than 0 USD "
                         "(allowed: a positive number, e.g. 3.00 for the Enterprise edition)")
    overrides, secret_overrides = _pairs(args.set, "--set"), _pairs(args.set_secret, "--set-secret")
    base = read_base(args.diff) if args.diff else None
    try:
        recording = preview(args.stack, overrides, secret_overrides)
    except STACK_ERRORS as exc:
        print(error_line(exc), file=sys.stderr)
        return 2
    except pulumi.RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = sdk_problems(recording)
    if problems:
        print("error: inputs the provider would reject:\n" + "\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 2
    found = placeholder_report(args.stack, {qualify(k) for k in {**overrides, **secret_overrides}})
    if found and args.for_deploy:
        print(f"error: documentation placeholders to replace before deploying (edit Pulumi.{args.stack}.yaml):\n"
              + "\n".join(f"  {p}" for p in found), file=sys.stderr)
        return 2
    for line in found + recording.warnings:
        print(f"warning: {line}", file=sys.stderr)
    document = recording.to_json()
    document["cost"] = cost.cost(document, cost.credit_price(recording, args.credit_price))
    if base is not None:
        print(diff(base, document))
    elif args.graph:
        print(graph(recording))
    elif args.cost:
        print(cost.text(document["cost"]))
    elif args.json:
        print(json.dumps(document, indent=2, sort_keys=False))
    else:
        print(table(recording))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `./bin/preview dev --graph | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
