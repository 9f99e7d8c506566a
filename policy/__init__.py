"""The policy pack: security rules (rules.py) for `pulumi preview --policy-pack policy` and for the tests."""
