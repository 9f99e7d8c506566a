"""Reusable ComponentResources, one per infrastructure concern, and the pure functions that render
their text artifacts. A component takes an Args object, never reads Pulumi config, and never knows
which environment it is in."""
