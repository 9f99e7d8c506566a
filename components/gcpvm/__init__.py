"""The gcpvm environment's rooms: network, identities, registry access, results bucket, head VM, worker cleanup."""
