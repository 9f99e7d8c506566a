"""The error a bad stack configuration raises: every problem at once, one `key: problem` line each."""


class ConfigError(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))

    def report(self) -> str:
        count = len(self.problems)
        header = f"invalid stack configuration ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([header, *(f"  {p}" for p in self.problems)])
