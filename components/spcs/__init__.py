"""Ray on Snowpark Container Services: access, storage, egress, images, compute pools, services, status page.

`families`, `specs` and `spec_lint` are pure (no Pulumi import) so the Native App can render the same specs.
"""
