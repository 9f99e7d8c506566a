"""Per-environment stacks: compose components into a deployable Ray cluster.

Importing this package registers nothing; `stacks.program.main()` runs the Pulumi program.
"""
