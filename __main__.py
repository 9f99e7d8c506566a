"""ray-platform: one Pulumi program, four environments. See README.md and stacks/."""

from stacks.program import main

main()
