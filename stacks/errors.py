"""The error a bad stack configuration raises: every problem at once, one `key: problem` line each."""


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))

    def report(self) -> str:
        count = len(self.problems)
        header = f"invalid stack configuration ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([header, *(f"  {p}" for p in self.problems)])


# What a command-line entry point (preview, preflight, quota) gets when a stack cannot be read: a missing
# Pulumi.STACK.yaml or a bad configuration. Each prints `error_line(exc)` and exits 2.
STACK_ERRORS = (FileNotFoundError, ConfigError)


def error_line(exc: Exception) -> str:
    return f"error: {exc.report() if isinstance(exc, ConfigError) else exc}"
