"""`./bin/jobs` (`python -m jobs` in .venv): submit, follow, inspect and stop Ray jobs on a ray-platform stack.

    ./bin/jobs submit --stack dev [ray job submit flags] -- python train.py
    ./bin/jobs status|logs|stop ID --stack dev        ./bin/jobs list --stack dev

Flags follow `ray job submit`. The cluster is named by --stack (Pulumi), --outputs FILE or RAY_ADDRESS.
Requests no node type can ever meet are refused before anything is sent (and before Ray is imported).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, NoReturn

import yaml

from jobs import (
    EXIT_INTERRUPTED,
    EXIT_JOB_FAILED,
    EXIT_JOB_STOPPED,
    EXIT_NEVER_FITS,
    EXIT_OK,
    EXIT_USAGE,
    JobsError,
    auth,
    client_wrapper,
)
from jobs import (
    outputs as stack_outputs,
)
from jobs.access import Endpoint, open_endpoint, url_answers
from jobs.follow import TERMINAL, follow
from jobs.preflight import alive_node_totals, fits_now, format_resources, never_fits, requested_resources
from jobs.storage import with_storage_env

EXIT_BY_STATUS = {"SUCCEEDED": EXIT_OK, "FAILED": EXIT_JOB_FAILED, "STOPPED": EXIT_JOB_STOPPED}
STOP_WAIT_S = 60.0
PENDING_STOP_WAIT_S = 3.0
RESOURCE_FLAGS = {"CPU": "--entrypoint-num-cpus", "GPU": "--entrypoint-num-gpus", "memory": "--entrypoint-memory"}


def say(message: str) -> None:
    """Our own messages go to stderr; stdout carries job logs and IDs."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- arguments


def _json_object(flag: str):
    def parse(text: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{flag} is not JSON: {exc.msg}") from exc
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"{flag} must be a JSON object")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _bytes(text: str) -> int:
    value = _non_negative(text)
    if value != int(value):
        raise argparse.ArgumentTypeError(f"memory is a whole number of bytes: {text!r}")
    return int(value)


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error:` line (exit 2) like every other error of the client."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    target = Parser(add_help=False)
    where = target.add_argument_group("cluster (one of; default RAY_ADDRESS)")
    where.add_argument("--stack", help="Pulumi stack whose outputs name the cluster")
    where.add_argument("--outputs", metavar="FILE", help="JSON file holding `pulumi stack output --json`")

    parser = Parser(prog=client_wrapper(), description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser(
        "submit", parents=[target], help="submit a job and follow it", usage="%(prog)s [flags] -- ENTRYPOINT ..."
    )
    submit.add_argument("--entrypoint-num-cpus", type=_non_negative, metavar="N")
    submit.add_argument("--entrypoint-num-gpus", type=_non_negative, metavar="N")
    submit.add_argument("--entrypoint-memory", type=_bytes, metavar="BYTES")
    submit.add_argument("--entrypoint-resources", type=_json_object("--entrypoint-resources"), metavar="JSON")
    submit.add_argument("--working-dir", help="local directory (or remote URI) shipped as the job's working_dir")
    env = submit.add_mutually_exclusive_group()
    env.add_argument("--runtime-env", metavar="FILE", help="YAML file with the job's runtime_env")
    env.add_argument("--runtime-env-json", type=_json_object("--runtime-env-json"), metavar="JSON")
    submit.add_argument("--submission-id", help="ID for the job (default: Ray picks one)")
    submit.add_argument("--metadata-json", type=_json_object("--metadata-json"), metavar="JSON")
    submit.add_argument("--no-wait", action="store_true", help="print the job ID and return at once")
    submit.add_argument("--no-storage-env", action="store_true", help="do not pass the stack's storage env vars")

    for name, text in (("status", "show a job's status"), ("stop", "stop a job")):
        command = commands.add_parser(name, parents=[target], help=text)
        command.add_argument("job_id", metavar="ID")
    commands.choices["stop"].add_argument("--no-wait", action="store_true", help="do not wait until it stopped")
    logs = commands.add_parser("logs", parents=[target], help="print a job's logs")
    logs.add_argument("job_id", metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    commands.add_parser("list", parents=[target], help="list the cluster's jobs")
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse; for `submit`, everything after the first `--` is the entrypoint."""
    parser = build_parser()
    if "--" in argv and "submit" in argv[: argv.index("--")]:
        cut = argv.index("--")
        args = parser.parse_args(argv[:cut])
        args.entrypoint = argv[cut + 1 :]
    else:
        args = parser.parse_args(argv)
        args.entrypoint = []
    if args.command == "submit" and not args.entrypoint:
        parser.error("submit needs an entrypoint after `--`, e.g. `submit --stack dev -- python script.py`")
    return args


def entrypoint_command(words: list[str]) -> str:
    """One word is taken as a shell command line as is; several are quoted and joined."""
    return words[0] if len(words) == 1 else shlex.join(words)


def runtime_env_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """runtime_env from --runtime-env (YAML file) or --runtime-env-json, with --working-dir on top."""
    runtime_env: dict[str, Any] = {}
    if args.runtime_env:
        try:
            with open(args.runtime_env) as handle:
                runtime_env = yaml.safe_load(handle) or {}
        except OSError as exc:
            raise JobsError(f"cannot read --runtime-env {args.runtime_env}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise JobsError(f"--runtime-env {args.runtime_env} is not YAML: {exc}") from exc
        if not isinstance(runtime_env, dict):
            raise JobsError(f"--runtime-env {args.runtime_env} must hold a mapping")
    elif args.runtime_env_json:
        runtime_env = dict(args.runtime_env_json)
    if args.working_dir:
        if "://" not in args.working_dir and not os.path.isdir(args.working_dir):
            raise JobsError(f"--working-dir {args.working_dir} is not a directory")
        runtime_env["working_dir"] = args.working_dir
    return runtime_env


URL_PATH_CHARACTERS = "/?#%"  # Ray's Jobs API puts the ID in URL paths unescaped (/api/jobs/ID)


def check_submission_id(submission_id: str | None) -> None:
    """Refuse IDs Ray accepts but cannot serve: a job named `a/b` is created, never runs, and is unreachable."""
    if submission_id is None:
        return
    bad = sorted({char for char in submission_id if char in URL_PATH_CHARACTERS})
    if not submission_id or bad:
        shown = " ".join(repr(char) for char in bad) or "an empty ID"
        raise JobsError(
            f"--submission-id {submission_id!r}: {shown} cannot be used (Ray's Jobs API puts the ID in URL paths); "
            "use letters, digits, '-', '_' or '.'"
        )


def request_from_args(args: argparse.Namespace) -> dict[str, float]:
    resources = args.entrypoint_resources or {}
    for name, amount in resources.items():
        if not isinstance(amount, (int, float)) or amount < 0:
            raise JobsError(f"--entrypoint-resources: {name} must be a non-negative number, got {amount!r}")
        if name in RESOURCE_FLAGS:
            raise JobsError(f"--entrypoint-resources: ask for {name} with {RESOURCE_FLAGS[name]}")
    return requested_resources(args.entrypoint_num_cpus, args.entrypoint_num_gpus, args.entrypoint_memory, resources)


# ---------------------------------------------------------------- connection


@dataclass
class Session:
    client: Any  # ray.job_submission.JobSubmissionClient, imported lazily (it takes ~1 s)
    outputs: dict[str, Any]
    endpoint: Endpoint
    target: stack_outputs.Target


def target_of(args: argparse.Namespace) -> stack_outputs.Target:
    return stack_outputs.Target(stack=args.stack, outputs_file=args.outputs)


def warn_on_version_mismatch(outputs: dict[str, Any]) -> None:
    cluster = outputs.get("ray_version")
    local = version("ray")
    if cluster and cluster != local:
        say(f"warning: the cluster runs Ray {cluster} but this client has Ray {local}; they should match")


@contextmanager
def connect(outputs: dict[str, Any], target: stack_outputs.Target) -> Iterator[Session]:
    warn_on_version_mismatch(outputs)
    with open_endpoint(outputs) as endpoint:
        if not url_answers(endpoint.url, timeout_s=5):
            raise JobsError(f"cannot reach the Ray dashboard at {endpoint.url} (nothing answers there)")
        # JobSubmissionClient lets these override the address it is given: the named stack must win, and a
        # RAY_ADDRESS without a scheme (already turned into endpoint.url) it would take for a GCS address and
        # wait 35 s for a GCS there.
        for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
            os.environ.pop(name, None)
        from ray.job_submission import JobSubmissionClient

        logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)  # no "WebSocket closed" chatter

        from ray.exceptions import AuthenticationError

        try:
            client = JobSubmissionClient(endpoint.url, headers=endpoint.headers or None)
        except AuthenticationError as exc:  # the version check is the first request that needs the token
            raise auth.refused(exc, outputs, os.environ) from exc
        except (ConnectionError, RuntimeError) as exc:
            raise JobsError(f"cannot use the Ray Jobs API at {endpoint.url}: {first_line(exc)}") from exc
        try:
            yield Session(client, outputs, endpoint, target)
        except AuthenticationError as exc:
            raise auth.refused(exc, outputs, os.environ) from exc
        except RuntimeError as exc:  # the Jobs SDK reports HTTP errors (unknown job, ...) this way
            raise JobsError(api_error(exc)) from exc


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]


HTTP_ERROR = re.compile(r"Request failed with status code (\d+): (.*)", re.DOTALL)
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception): (.+)$", re.MULTILINE)


def api_error(exc: RuntimeError) -> str:
    """One line for an HTTP error of the Jobs API: the server's own reason, not the traceback it sends along."""
    match = HTTP_ERROR.match(str(exc).strip())
    if not match:
        return first_line(exc)
    code, body = match.groups()
    if "Traceback (most recent call last)" in body:
        # The dashboard wraps the job agent's traceback in its own: the innermost exception is the last one.
        reasons = [line for line in EXCEPTION_LINE.findall(body) if not HTTP_ERROR.match(line)]
        body = reasons[-1] if reasons else "(the server sent only a traceback)"
    return f"the Ray Jobs API refused the request (HTTP {code}): {body.strip().splitlines()[0].rstrip('.')}"


def follow_command(job_id: str, target: stack_outputs.Target) -> str:
    return shlex.join([client_wrapper(), "logs", job_id, "--follow", *target.flags()])


# ---------------------------------------------------------------- commands


def cmd_submit(args: argparse.Namespace) -> int:
    check_submission_id(args.submission_id)
    request = request_from_args(args)
    runtime_env = runtime_env_from_args(args)
    target = target_of(args)
    outputs = stack_outputs.load(target)
    reason = never_fits(request, outputs.get("ray_capacity") or {})
    if reason:
        raise JobsError(reason, EXIT_NEVER_FITS)
    if not args.no_storage_env:
        runtime_env = with_storage_env(runtime_env, outputs.get("storage"))
    with connect(outputs, target) as session:
        check_live_capacity(session, request, capacity_known=bool(outputs.get("ray_capacity")))
        job_id = session.client.submit_job(
            entrypoint=entrypoint_command(args.entrypoint),
            runtime_env=runtime_env or None,
            metadata={str(key): str(value) for key, value in (args.metadata_json or {}).items()} or None,
            submission_id=args.submission_id,
            entrypoint_num_cpus=args.entrypoint_num_cpus,
            entrypoint_num_gpus=args.entrypoint_num_gpus,
            entrypoint_memory=args.entrypoint_memory,
            entrypoint_resources=args.entrypoint_resources,
        )
        if args.no_wait:
            say(f"submitted job {job_id}; follow it with: {follow_command(job_id, target)}")
            print(job_id, flush=True)
            return EXIT_OK
        say(f"submitted job {job_id}")
        return wait_for(session, job_id)


def check_live_capacity(session: Session, request: dict[str, float], capacity_known: bool = True) -> None:
    """Compare the request with the nodes alive now.

    With ray_capacity known (and already checked), a request no live node meets waits for the autoscaler: say so.
    Without it (only RAY_ADDRESS), the live nodes are all we know: refuse what none of them offers.
    """
    if not request:
        return
    try:
        alive = alive_node_totals(session.client)
    except Exception as exc:  # a preflight note is not worth failing the submission for
        say(f"note: could not read the live nodes ({exc.__class__.__name__}); submitting anyway")
        return
    if fits_now(request, alive):
        return
    if capacity_known:
        say(
            f"waiting for the autoscaler: no node running now offers {format_resources(request)}, "
            "but a node type in ray_capacity does; the job stays PENDING until such a node joins"
        )
        return
    largest = {name: max((totals.get(name, 0) for totals in alive), default=0) for name in request}
    raise JobsError(
        f"entrypoint asks for {format_resources(request)} but no node of this cluster offers that now "
        f"(most on one node: {format_resources(largest)}); with only RAY_ADDRESS, what it can scale to is unknown "
        "(no ray_capacity), so Ray could leave it PENDING forever: nothing was submitted (name the cluster with "
        "--stack or --outputs to check against what its autoscaler can add)",
        EXIT_NEVER_FITS,
    )


def wait_for(session: Session, job_id: str, show_status: bool = True) -> int:
    try:
        status = follow(session.client, job_id, show_status=show_status)
    except KeyboardInterrupt:
        return interrupted(session, job_id)
    return EXIT_BY_STATUS.get(status, EXIT_JOB_FAILED)


def interrupted(session: Session, job_id: str) -> int:
    """Ctrl-C while following: ask whether to stop the job (only on a terminal); default leave it running."""
    stop = False
    if sys.stdin.isatty():
        try:
            stop = input(f"\nstop job {job_id}? [y/N] ").strip().lower() in ("y", "yes")
        except (EOFError, KeyboardInterrupt):
            stop = False
    if stop:
        session.client.stop_job(job_id)
        say(f"stop requested for job {job_id}")
        return EXIT_JOB_STOPPED
    say(f"\njob {job_id} keeps running; follow it with: {follow_command(job_id, session.target)}")
    return EXIT_INTERRUPTED


def cmd_status(args: argparse.Namespace) -> int:
    target = target_of(args)
    with connect(stack_outputs.load(target), target) as session:
        info = session.client.get_job_info(args.job_id)
        print(f"{args.job_id}: {info.status}")
        if info.message:
            print(f"  message: {info.message}")
        print(f"  entrypoint: {info.entrypoint}")
        return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    target = target_of(args)
    with connect(stack_outputs.load(target), target) as session:
        if args.follow:
            return wait_for(session, args.job_id, show_status=False)
        print(session.client.get_job_logs(args.job_id), end="", flush=True)
        return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    target = target_of(args)
    with connect(stack_outputs.load(target), target) as session:
        session.client.stop_job(args.job_id)
        if args.no_wait:
            say(f"stop requested for job {args.job_id}")
            return EXIT_OK
        started = time.monotonic()
        while (status := str(session.client.get_job_status(args.job_id))) not in TERMINAL:
            waited = time.monotonic() - started
            if status == "PENDING" and waited > PENDING_STOP_WAIT_S:
                # Ray delivers the stop to the job's supervisor actor, which does not exist until the
                # entrypoint's resources are free; there is no HTTP call that cancels it sooner.
                say(
                    f"stop requested; job {args.job_id} is still PENDING (waiting for resources): Ray stops it "
                    "as soon as it is scheduled, or fails it after RAY_JOB_START_TIMEOUT_SECONDS (default 900 s)"
                )
                return EXIT_OK
            if waited > STOP_WAIT_S:
                raise JobsError(f"job {args.job_id} is still {status} {STOP_WAIT_S:.0f} s after the stop request")
            time.sleep(0.2)
        say(f"job {args.job_id}: {status}")
        return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    target = target_of(args)
    with connect(stack_outputs.load(target), target) as session:
        jobs = sorted(session.client.list_jobs(), key=lambda job: job.start_time or 0)
        rows = [("SUBMISSION ID", "STATUS", "STARTED", "ENTRYPOINT")]
        for job in jobs:
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.start_time / 1000)) if job.start_time else "-"
            entrypoint = job.entrypoint if len(job.entrypoint) <= 60 else job.entrypoint[:57] + "..."
            rows.append((job.submission_id or job.job_id or "-", str(job.status), started, entrypoint))
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3])
        return EXIT_OK


COMMANDS = {"submit": cmd_submit, "status": cmd_status, "logs": cmd_logs, "stop": cmd_stop, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command](args)
    except JobsError as exc:
        say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # last resort: still one line, but say what it was (JOBS_DEBUG=1 shows all)
        if os.environ.get("JOBS_DEBUG"):
            raise
        say(f"error: {exc.__class__.__name__}: {first_line(exc)}")
        return EXIT_USAGE
