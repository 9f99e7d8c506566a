"""Client side of ray-platform: read a stack's outputs, submit Ray jobs to it and follow them.

`./bin/jobs submit --stack STACK -- ENTRYPOINT` (see docs/jobs.md; bin/jobs runs `python -m jobs` in the
project's .venv). Never imports the Pulumi runtime: stack outputs come from the `pulumi` CLI or a JSON file.
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Exit codes of `./bin/jobs` (documented in docs/jobs.md).
EXIT_OK = 0  # job SUCCEEDED, or the command did what it was asked
EXIT_JOB_FAILED = 1  # job FAILED
EXIT_USAGE = 2  # bad flags, unreadable or incomplete stack outputs, cluster unreachable
EXIT_JOB_STOPPED = 3  # job STOPPED
EXIT_NEVER_FITS = 4  # the entrypoint asks for more than any node type can ever offer
EXIT_AUTH = 5  # the cluster refused the request: Ray's token missing or wrong
EXIT_INTERRUPTED = 130  # Ctrl-C while following; the job was left running


class JobsError(Exception):
    """A problem the user can fix; printed as one `error: ...` line, no traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def client_wrapper() -> str:
    """How hints name this client so that they work pasted into any shell, in or outside the venv."""
    return "./bin/jobs" if Path.cwd().resolve() == PROJECT_ROOT else str(PROJECT_ROOT / "bin" / "jobs")
