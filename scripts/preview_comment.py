"""Build the pull-request comment of offline previews: for every stack, its cost per hour before and after the
change (stacks/cost.py) and the `--diff` of the PR against the base.

  python scripts/preview_comment.py BASE_DIR OUT.md
BASE_DIR holds `<stack>.json` from `python -m stacks.preview <stack> --json` run on the base branch (a stack
new in the PR has none). Needs no cloud credentials, so it works for pull requests from forks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacks.cost import cost, credit_price  # noqa: E402
from stacks.offline import preview  # noqa: E402
from stacks.preview import diff  # noqa: E402

MARKER = "<!-- ray-platform-offline-preview -->"


def stacks() -> list[str]:
    return sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


def cost_line(base: dict | None, head: dict) -> str:
    """Min and max cost per hour before and after, and the delta; base None: a stack new in this PR."""
    after = head.get("cost") or cost(head)
    # A base written before `--json` had `cost` is priced now from its recorded resources.
    before = None if base is None else base.get("cost") or cost(base)
    currency = after["currency"]
    parts = []
    for end in ("min", "max"):
        new = after["per_hour"][end]
        if before is None:
            parts.append(f"{end} {new:.2f} (new stack)")
        else:
            old = before["per_hour"][end]
            parts.append(f"{end} {old:.2f} → {new:.2f} ({new - old:+.2f})")
    unknown = f"; not priced: {', '.join(after['unknown'])}" if after["unknown"] else ""
    unchecked = f"; UNCHECKED estimates: {', '.join(after['unchecked'])}" if after.get("unchecked") else ""
    return f"Cost per hour ({currency}, prices as of {after['prices_as_of']}): {', '.join(parts)}{unknown}{unchecked}"


def section(stack: str, base_dir: Path) -> str:
    base_file = base_dir / f"{stack}.json"
    base_doc = json.loads(base_file.read_text()) if base_file.exists() else None
    base = base_doc or {"resources": [], "outputs": {}}
    try:
        recording = preview(stack)
        head = recording.to_json()
        head["cost"] = cost(head, credit_price(recording))
    except Exception as exc:  # noqa: BLE001 a broken stack is reported in the comment, not hidden
        return f"### `{stack}`\n\n:x: the offline preview failed:\n\n```\n{exc}\n```\n"
    text = diff(base, head)
    summary = text.splitlines()[0]
    return f"**`{stack}`** {cost_line(base_doc, head)}\n\n" \
        f"<details><summary><code>{stack}</code>: {summary}</summary>\n\n```diff\n{text}\n```\n</details>\n"


def main(argv: list[str]) -> int:
    base_dir, out = Path(argv[0]), Path(argv[1])
    body = [MARKER, "## Offline preview (Pulumi mocks, no credentials)", ""]
    body += [section(stack, base_dir) for stack in stacks()]
    body.append("Secrets print as `[secret]`. Real previews (with credentials) are posted by `pulumi/actions`.")
    out.write_text("\n".join(body) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
