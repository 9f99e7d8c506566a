"""The pure parts of jobs/: argument parsing, outputs validation, preflight, access modes, headers, storage env."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from jobs_testing import EXAMPLES

from jobs import EXIT_NEVER_FITS, PROJECT_ROOT, JobsError, access, auth, cli, outputs, preflight, snowflake, storage
from stacks.contract import OUTPUT_KEYS

GIB = 1024**3
CAPACITY = {
    "cpu": {"resources": {"CPU": 8, "memory": 32 * GIB}, "min_nodes": 0, "max_nodes": 4},
    "gpu": {"resources": {"CPU": 4, "GPU": 1, "memory": 16 * GIB, "a100": 1}, "min_nodes": 0, "max_nodes": 2},
    "retired": {"resources": {"CPU": 64}, "min_nodes": 0, "max_nodes": 0},
}


def contract_outputs(**changes: object) -> dict:
    base = dict.fromkeys(OUTPUT_KEYS)
    base.update(ray_dashboard_url="http://127.0.0.1:8265", access={"mode": "direct"}, ray_capacity=CAPACITY)
    base.update(changes)
    return base


# ---------------------------------------------------------------- arguments


def test_submit_flags_follow_ray_job_submit() -> None:
    args = cli.parse_args([
        "submit", "--stack", "dev", "--entrypoint-num-cpus", "2", "--entrypoint-num-gpus", "0.5",
        "--entrypoint-memory", "1073741824", "--entrypoint-resources", '{"a100": 1}', "--working-dir", ".",
        "--runtime-env-json", '{"pip": ["x"]}', "--submission-id", "s1", "--metadata-json", '{"k": "v"}',
        "--no-wait", "--", "python", "train.py", "--lr", "0.1",
    ])  # fmt: skip
    assert (args.command, args.stack, args.entrypoint_num_cpus, args.entrypoint_num_gpus) == ("submit", "dev", 2, 0.5)
    assert (args.entrypoint_memory, args.entrypoint_resources, args.submission_id) == (GIB, {"a100": 1}, "s1")
    assert (args.runtime_env_json, args.metadata_json, args.no_wait) == ({"pip": ["x"]}, {"k": "v"}, True)
    assert args.entrypoint == ["python", "train.py", "--lr", "0.1"]  # flags after `--` belong to the entrypoint
    assert cli.request_from_args(args) == {"CPU": 2, "GPU": 0.5, "memory": GIB, "a100": 1}


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "--stack", "dev"],  # no entrypoint
        ["submit", "--entrypoint-num-cpus", "-1", "--", "x"],
        ["submit", "--entrypoint-resources", "[1]", "--", "x"],
        ["submit", "--entrypoint-memory", "1.5", "--", "x"],
        ["submit", "--runtime-env", "a.yaml", "--runtime-env-json", "{}", "--", "x"],
        ["logs"],  # no ID
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1  # no usage block: one line


def test_jobs_api_errors_become_the_server_reason() -> None:
    traceback = ('Request failed with status code 500: Traceback (most recent call last):\n  File "job_head.py"\n'
                 "RuntimeError: Request failed with status code 400: Traceback (most recent call last):\n"
                 '  File "job_manager.py", line 553\n    raise ValueError(\nValueError: Job with submission_id j1 '
                 "already exists. Please use a different submission_id.\n.\n.")
    assert cli.api_error(RuntimeError(traceback)) == (
        "the Ray Jobs API refused the request (HTTP 500): Job with submission_id j1 already exists. "
        "Please use a different submission_id")
    plain = RuntimeError("Request failed with status code 404: Job zz does not exist.")
    assert cli.api_error(plain) == "the Ray Jobs API refused the request (HTTP 404): Job zz does not exist"
    assert cli.api_error(RuntimeError("something else\nmore")) == "something else"


def test_submission_ids_ray_cannot_serve_are_refused() -> None:
    for good in (None, "job-1", "a_b.c", "raysubmit_XYZ"):
        cli.check_submission_id(good)
    for bad, named in (("a/b", "'/'"), ("x?y#z", "'#' '?'"), ("50%", "'%'"), ("", "an empty ID")):
        with pytest.raises(JobsError, match=re.escape(f"--submission-id {bad!r}: {named} cannot be used")):
            cli.check_submission_id(bad)


def test_entrypoint_words_are_quoted_a_single_word_is_a_shell_line() -> None:
    assert cli.entrypoint_command(["python", "-c", "print('a b')"]) == "python -c 'print('\"'\"'a b'\"'\"')'"
    assert cli.entrypoint_command(["echo a && echo b"]) == "echo a && echo b"


def test_runtime_env_from_file_with_working_dir_on_top(tmp_path: Path) -> None:
    env_file = tmp_path / "env.yaml"
    env_file.write_text("working_dir: elsewhere\nenv_vars:\n  A: '1'\n")
    args = cli.parse_args(["submit", "--runtime-env", str(env_file), "--working-dir", str(tmp_path), "--", "x"])
    assert cli.runtime_env_from_args(args) == {"working_dir": str(tmp_path), "env_vars": {"A": "1"}}
    missing = cli.parse_args(["submit", "--working-dir", str(tmp_path / "nope"), "--", "x"])
    with pytest.raises(JobsError, match="is not a directory"):
        cli.runtime_env_from_args(missing)


def test_builtin_resources_in_entrypoint_resources_are_refused() -> None:
    args = cli.parse_args(["submit", "--entrypoint-resources", '{"CPU": 2}', "--", "x"])
    with pytest.raises(JobsError, match="ask for CPU with --entrypoint-num-cpus"):
        cli.request_from_args(args)


def test_follow_command_reaches_the_same_cluster_from_any_shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    assert cli.follow_command("j1", outputs.Target(stack="prod")) == "./bin/jobs logs j1 --follow --stack prod"
    assert cli.follow_command("j1", outputs.Target(outputs_file="o.json")).endswith("--follow --outputs o.json")
    monkeypatch.chdir(tmp_path)  # elsewhere, the wrapper by its full path (it needs no venv on PATH)
    assert cli.follow_command("j1", outputs.Target(stack="p")) == f"{PROJECT_ROOT}/bin/jobs logs j1 --follow --stack p"
    assert (PROJECT_ROOT / "bin" / "jobs").stat().st_mode & 0o111


# ---------------------------------------------------------------- stack outputs


def test_outputs_validation_names_what_is_wrong() -> None:
    assert outputs.validate(contract_outputs(), "s") == contract_outputs()
    with pytest.raises(JobsError, match="lacks the stack outputs ray_capacity, access"):
        outputs.validate({k: v for k, v in contract_outputs().items() if k not in ("ray_capacity", "access")}, "s")
    for bad in ("ftp://x", "127.0.0.1:8265", None, "http://", "http://h:notaport"):
        with pytest.raises(JobsError, match="ray_dashboard_url"):
            outputs.validate(contract_outputs(ray_dashboard_url=bad), "s")
    with pytest.raises(JobsError, match="access.mode must be one of direct, port-forward, snowflake"):
        outputs.validate(contract_outputs(access={"mode": "vpn"}), "s")
    with pytest.raises(JobsError, match="port-forward access needs 'command'"):
        outputs.validate(contract_outputs(access={"mode": "port-forward", "local_dashboard_url": "http://x"}), "s")


def test_outputs_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps(contract_outputs()))
    assert outputs.load(outputs.Target(outputs_file=str(path)), environ={}) == contract_outputs()
    from_env = outputs.load(outputs.Target(), environ={"RAY_ADDRESS": "10.0.0.5:8265"})
    assert (from_env["ray_dashboard_url"], from_env["access"]) == ("http://10.0.0.5:8265", {"mode": "direct"})
    with pytest.raises(JobsError, match="no cluster named"):
        outputs.load(outputs.Target(), environ={})
    with pytest.raises(JobsError, match="either --stack or --outputs"):
        outputs.load(outputs.Target(stack="a", outputs_file="b"), environ={})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(JobsError, match="is not JSON"):
        outputs.from_file(str(tmp_path / "bad.json"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(outputs, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    with pytest.raises(JobsError, match="Pulumi CLI is not on PATH nor in .tools/pulumi"):
        outputs.from_pulumi("dev")
    installed = tmp_path / ".tools" / "pulumi" / "bin" / "pulumi"  # as bin/deploy installs it
    installed.parent.mkdir(parents=True)
    installed.write_text('#!/bin/sh\necho \'{"environment": "local", "args": "\'"$*"\'"}\'\n')
    installed.chmod(0o755)
    assert outputs.from_pulumi("dev") == {
        "environment": "local", "args": "stack output --json --show-secrets --non-interactive --stack dev"}


def fake_pulumi_printing_its_env(directory: Path) -> str:
    """A `pulumi` whose "outputs" are the backend, passphrase file and directory it was run with."""
    script = directory / "pulumi"
    script.write_text(
        f"#!{sys.executable}\nimport json, os\n"
        "print(json.dumps({name: os.environ.get(name) for name in ('PULUMI_BACKEND_URL', "
        "'PULUMI_CONFIG_PASSPHRASE_FILE')} | {'cwd': os.getcwd()}))\n"
    )
    script.chmod(0o755)
    return str(directory)


def test_stack_outputs_use_bin_deploy_backend_unless_told_otherwise(tmp_path: Path, monkeypatch) -> None:
    path = fake_pulumi_printing_its_env(tmp_path)
    state = tmp_path / "state"
    monkeypatch.setattr(outputs, "STATE_DIR", state)
    with pytest.raises(JobsError, match=r"no Pulumi state in .*state \(deploy first: ./bin/deploy STACK\)"):
        outputs.from_pulumi("dev", {"PATH": path})
    state.mkdir()
    (state / "passphrase").write_text("secret\n")
    seen = outputs.from_pulumi("dev", {"PATH": path})  # a new shell: nothing set
    assert seen == {"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE_FILE": str(state / "passphrase"),
                    "cwd": str(PROJECT_ROOT)}
    mine = outputs.from_pulumi("dev", {"PATH": path, "PULUMI_BACKEND_URL": "s3://b", "PULUMI_CONFIG_PASSPHRASE": "x"})
    assert (mine["PULUMI_BACKEND_URL"], mine["PULUMI_CONFIG_PASSPHRASE_FILE"]) == ("s3://b", None)
    own_passphrase = outputs.from_pulumi("dev", {"PATH": path, "PULUMI_CONFIG_PASSPHRASE": "x"})
    assert (own_passphrase["PULUMI_BACKEND_URL"], own_passphrase["PULUMI_CONFIG_PASSPHRASE_FILE"]) == (
        f"file://{state}", None)


# ---------------------------------------------------------------- preflight


def test_request_above_every_node_type_names_resource_ask_and_most() -> None:
    assert preflight.never_fits({"CPU": 64}, CAPACITY) == (
        "entrypoint asks for CPU=64 but the largest node type offers CPU=8 (ray_capacity); "
        "Ray would leave this job PENDING forever"
    )  # the 64-CPU type has max_nodes 0: it can never exist
    assert "offers GPU=1" in preflight.never_fits({"GPU": 2}, CAPACITY)
    assert "memory=64 GiB but the largest node type offers memory=32 GiB" in preflight.never_fits(
        {"memory": 64 * GIB}, CAPACITY
    )
    assert "asks for tpu=1 but the largest node type offers tpu=none" in preflight.never_fits({"tpu": 1}, CAPACITY)


def test_request_that_no_single_node_type_offers_together() -> None:
    reason = preflight.never_fits({"CPU": 8, "GPU": 1}, CAPACITY)
    assert reason.startswith("entrypoint asks for CPU=8, GPU=1 on one node, but no node type offers all of it together")


def test_requests_that_fit_or_cannot_be_judged() -> None:
    assert preflight.never_fits({"CPU": 4, "GPU": 1, "a100": 1}, CAPACITY) is None
    assert preflight.never_fits({}, CAPACITY) is None
    assert preflight.never_fits({"CPU": 1000}, {}) is None  # no capacity known (RAY_ADDRESS): Ray decides
    assert preflight.requested_resources(2, None, 0, {"x": 1}) == {"CPU": 2.0, "x": 1.0}


def test_fits_now_compares_with_live_node_totals() -> None:
    alive = [{"CPU": 2.0, "memory": 4.0 * GIB}, {"CPU": 4.0, "worker": 1.0}]
    assert preflight.fits_now({"CPU": 4, "worker": 1}, alive)
    assert not preflight.fits_now({"CPU": 4, "memory": GIB}, alive)
    assert preflight.fits_now({}, [])


def test_never_fitting_request_is_refused_before_any_network(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "o.json"
    path.write_text(json.dumps(contract_outputs(ray_dashboard_url="http://10.255.255.1:1")))  # unreachable
    started = time.monotonic()
    code = cli.main(["submit", "--outputs", str(path), "--entrypoint-num-gpus", "4", "--", "x"])
    assert time.monotonic() - started < 2
    assert code == EXIT_NEVER_FITS
    assert capsys.readouterr().err.startswith("error: entrypoint asks for GPU=4 but the largest node type offers GPU=1")


# ---------------------------------------------------------------- access


def test_direct_access_uses_the_dashboard_url() -> None:
    with access.open_endpoint(contract_outputs(ray_dashboard_url="http://h:8265/")) as endpoint:
        assert (endpoint.url, endpoint.headers) == ("http://h:8265", {})


def test_rays_token_rides_in_the_header_each_access_mode_needs() -> None:
    token = "t" * 64
    with access.open_endpoint(contract_outputs(ray_auth_token=token), environ={}) as endpoint:
        assert endpoint.headers == {"Authorization": f"Bearer {token}"}
    # SPCS ingress owns Authorization (Snowflake's token), so Ray's travels in X-Ray-Authorization.
    snow = contract_outputs(access={"mode": "snowflake"}, ray_auth_token=token,
                            ray_dashboard_url="https://abc-org-acct.snowflakecomputing.app")
    with access.open_endpoint(snow, environ={"SNOWFLAKE_TOKEN": "sf"}) as endpoint:
        assert endpoint.headers == {"Authorization": 'Snowflake Token="sf"', "X-Ray-Authorization": f"Bearer {token}"}


def test_the_stacks_token_wins_over_the_environment_which_fills_in_when_the_outputs_have_none() -> None:
    environ = {"RAY_AUTH_TOKEN": "from-env"}
    assert auth.request_headers(contract_outputs(ray_auth_token="from-stack"), environ) == {
        "Authorization": "Bearer from-stack"}
    assert auth.request_headers(contract_outputs(), environ) == {"Authorization": "Bearer from-env"}
    assert auth.request_headers(contract_outputs(), {}) == {}


def test_a_ray_auth_token_output_that_is_not_a_string_is_a_clear_error() -> None:
    with pytest.raises(JobsError, match="ray_auth_token must be the token"):
        outputs.validate(contract_outputs(ray_auth_token={"secret": True}), "s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_port_forward_runs_only_inside_the_block() -> None:
    with socket.socket() as target:  # stands for the private dashboard
        target.bind(("127.0.0.1", 0))
        target.listen()
        local = free_port()
        proxy = Path(__file__).with_name("tcp_proxy.py")
        command = [sys.executable, str(proxy), f"{local}:127.0.0.1:{target.getsockname()[1]}", "--delay", "0.3"]
        with access.port_forward(command, f"http://127.0.0.1:{local}"):
            assert access.url_answers(f"http://127.0.0.1:{local}")
        assert not access.url_answers(f"http://127.0.0.1:{local}")


def test_port_forward_moves_off_a_local_port_taken_by_something_else() -> None:
    proxy = Path(__file__).with_name("tcp_proxy.py")
    with socket.socket() as target, socket.socket() as squatter:  # the private dashboard; a local Ray cluster
        for sock in (target, squatter):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        taken = squatter.getsockname()[1]
        command = [sys.executable, str(proxy), f"{taken}:127.0.0.1:{target.getsockname()[1]}", "--delay", "0.2"]
        with access.port_forward(command, f"http://127.0.0.1:{taken}") as url:
            moved = urlparse(url).port
            assert moved != taken and access.url_answers(url)
            with socket.create_connection(("127.0.0.1", moved), timeout=5):
                target.settimeout(5)
                target.accept()[0].close()  # the connection went through the forward to the target
        assert not access.url_answers(url)  # our forward is gone; the squatter was left alone
        assert access.url_answers(f"http://127.0.0.1:{taken}")


def test_port_forward_reuses_the_same_forward_already_running() -> None:
    proxy = Path(__file__).with_name("tcp_proxy.py")
    with socket.socket() as target:
        target.bind(("127.0.0.1", 0))
        target.listen()
        local = free_port()
        command = [sys.executable, str(proxy), f"{local}:127.0.0.1:{target.getsockname()[1]}"]
        own = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # the user's forward, kept open elsewhere
        try:
            deadline = time.monotonic() + 30
            while not access.url_answers(f"http://127.0.0.1:{local}"):
                assert own.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            with access.port_forward(command, f"http://127.0.0.1:{local}") as url:
                assert url == f"http://127.0.0.1:{local}"
            assert own.poll() is None  # reused, not started again nor stopped
        finally:
            own.kill()
            own.wait()


@pytest.mark.parametrize("stack", ["gke", "gcpvm"])
def test_forward_command_of_each_stack_can_move_its_local_port(stack: str) -> None:
    snapshot = json.loads((PROJECT_ROOT / "tests" / "snapshots" / f"{stack}.json").read_text())
    forward = snapshot["outputs"]["access"]
    port = urlparse(forward["local_dashboard_url"]).port
    moved = access.move_local_port(forward["command"], port, 18265)
    changed = [(a, b) for a, b in zip(forward["command"], moved, strict=True) if a != b]
    assert len(changed) == 1 and str(port) in changed[0][0] and "18265" in changed[0][1]
    ssh = ["ssh", "-N", "-L", f"{port}:127.0.0.1:{port}", "-L", "10001:127.0.0.1:10001", "me@box"]  # stacks/local.py
    assert access.move_local_port(ssh, port, 18265)[3] == f"18265:127.0.0.1:{port}"
    assert access.move_local_port(["forwarder", "--to", "box"], port, 18265) is None


def test_port_forward_that_dies_is_a_clear_error() -> None:
    command = [sys.executable, "-c", "import sys; print('unable to forward: pod not found'); sys.exit(3)"]
    with pytest.raises(JobsError, match="exited with code 3: unable to forward: pod not found"):
        with access.port_forward(command, f"http://127.0.0.1:{free_port()}"):
            pass


def test_snowflake_token_from_environment() -> None:
    snow = {"mode": "snowflake", "token_env": "MY_TOKEN"}
    with access.open_endpoint(contract_outputs(access=snow), environ={"MY_TOKEN": "abc\n"}) as endpoint:
        assert endpoint.headers == {"Authorization": 'Snowflake Token="abc"'}
    with pytest.raises(JobsError, match="snowflake access needs a token: set MY_TOKEN"):
        with access.open_endpoint(contract_outputs(access=snow), environ={}):
            pass


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "rsa_key.p8"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return key, path


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_key_pair_jwt_has_snowflake_claims_and_a_valid_signature(rsa_key: tuple) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key, _ = rsa_key
    token = snowflake.key_pair_jwt("myorg-myacct", "jdoe", key, now=1_700_000_000)
    header, claims, signature = token.split(".")
    fingerprint = snowflake.public_key_fingerprint(key)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert fingerprint == "SHA256:" + base64.b64encode(__import__("hashlib").sha256(der).digest()).decode()
    assert json.loads(_b64decode(header)) == {"alg": "RS256", "typ": "JWT"}
    assert json.loads(_b64decode(claims)) == {
        "iss": f"MYORG-MYACCT.JDOE.{fingerprint}",
        "sub": "MYORG-MYACCT.JDOE",
        "iat": 1_700_000_000,
        "exp": 1_700_000_000 + 59 * 60,
    }
    key.public_key().verify(_b64decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())


def test_account_identifier_for_jwt_drops_a_locator_region() -> None:
    assert snowflake.account_for_jwt("xy12345.us-east-1") == "XY12345"
    assert snowflake.account_for_jwt("myorg-myacct") == "MYORG-MYACCT"


def test_key_pair_is_exchanged_for_an_ingress_token(rsa_key: tuple) -> None:
    seen: dict = {}

    class FakeSnowflake(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            seen.update(path=self.path, form={k: v[0] for k, v in parse_qs(body).items()})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ingress-token-123")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), FakeSnowflake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, key_path = rsa_key
        snow = {"mode": "snowflake", "account": "myorg-myacct", "user": "jdoe", "role": "RAY_USER",
                "account_url": f"http://127.0.0.1:{server.server_port}"}  # fmt: skip
        dashboard = "https://abc-myorg-myacct.snowflakecomputing.app"
        outputs_ = contract_outputs(access=snow, ray_dashboard_url=dashboard)
        with access.open_endpoint(outputs_, environ={"SNOWFLAKE_PRIVATE_KEY_PATH": str(key_path)}) as endpoint:
            assert endpoint.headers == {"Authorization": 'Snowflake Token="ingress-token-123"'}
    finally:
        server.shutdown()
    assert seen["path"] == "/oauth/token"
    assert seen["form"]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert seen["form"]["scope"] == "session:role:RAY_USER abc-myorg-myacct.snowflakecomputing.app"
    assert json.loads(_b64decode(seen["form"]["assertion"].split(".")[1]))["sub"] == "MYORG-MYACCT.JDOE"


# ---------------------------------------------------------------- storage env and examples


def test_storage_output_becomes_job_env_vars_without_overriding_the_user() -> None:
    minio = {"uri": "s3://ray", "endpoint": "http://minio:9000"}
    merged = storage.with_storage_env({"env_vars": {"RAY_PLATFORM_STORAGE_URI": "/mine"}, "pip": ["x"]}, minio)
    assert merged == {
        "env_vars": {"RAY_PLATFORM_STORAGE_URI": "/mine", "RAY_PLATFORM_STORAGE_ENDPOINT": "http://minio:9000"},
        "pip": ["x"],
    }
    local_stack = {"uri": "s3://ray", "endpoint": "http://127.0.0.1:9000", "cluster_endpoint": "http://minio:9000"}
    assert storage.storage_env_vars(local_stack)["RAY_PLATFORM_STORAGE_ENDPOINT"] == "http://minio:9000"
    assert storage.storage_env_vars({"uri": "@db.sch.stage", "cluster_mount": "/stage"}) == {
        "RAY_PLATFORM_STORAGE_URI": "@db.sch.stage",
        "RAY_PLATFORM_STORAGE_MOUNT": "/stage",
    }
    assert storage.with_storage_env({}, None) == {}


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import autotune
    import platform_storage
    import spark_on_ray

    return autotune, platform_storage, spark_on_ray


def test_platform_storage_resolves_each_kind_of_uri(examples, tmp_path: Path, monkeypatch) -> None:
    _, platform_storage, _ = examples
    import pyarrow.fs

    filesystem, path = platform_storage.resolve(str(tmp_path))
    assert isinstance(filesystem, pyarrow.fs.LocalFileSystem) and path == str(tmp_path)
    filesystem, path = platform_storage.resolve("s3://bucket/runs", "http://127.0.0.1:9000")
    assert (filesystem.type_name, path) == ("s3", "bucket/runs")
    monkeypatch.setenv("RAY_PLATFORM_STORAGE_MOUNT", str(tmp_path))
    assert platform_storage.resolve("@db.schema.stage")[1] == str(tmp_path)
    platform_storage.write_json(pyarrow.fs.LocalFileSystem(), f"{tmp_path}/a/b.json", {"x": 1})
    assert platform_storage.read_json(pyarrow.fs.LocalFileSystem(), f"{tmp_path}/a/b.json") == {"x": 1}
    monkeypatch.delenv("RAY_PLATFORM_STORAGE_URI", raising=False)
    with pytest.raises(SystemExit, match="no storage"):
        platform_storage.resolve(None)


def test_autotune_grid_and_arguments(examples) -> None:
    autotune, _, _ = examples
    assert autotune.grid_values({"type": "int", "minmax": [40, 60], "step": 10}) == [40, 50, 60]
    assert autotune.grid_values({"type": "float", "minmax": [0.5, 1.5], "step": 0}) == [1.0]
    args = autotune.parse_args(["--config", "c.json", "tune", "--samples", "3"])
    assert (args.mode, args.samples) == ("tune", 3)
    # the objective's optimum is where its docstring says, and moving away costs more
    best = {"CORE_UTILIZATION": 55, "PLACE_DENSITY": 0.65, "CLK_PERIOD_NS": 1.1}
    assert autotune.flow_cost(best) < autotune.flow_cost({**best, "CORE_UTILIZATION": 75})


def test_spark_example_pure_parts(examples) -> None:
    _, _, spark_on_ray = examples
    assert spark_on_ray.spark_output_uri("s3://bucket/x") == "s3a://bucket/x"
    assert spark_on_ray.spark_output_uri("/data") == "file:///data"
    assert spark_on_ray.spark_output_uri("@db.s.stage", "/mnt/stage") == "file:///mnt/stage"
    configs = spark_on_ray.spark_configs("s3://bucket", "http://minio:9000", [])
    assert configs["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert configs["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert configs["spark.jars.packages"] == spark_on_ray.HADOOP_AWS
    assert spark_on_ray.spark_configs("/data", None, []) == {}
    assert spark_on_ray.parse_args(["--executors", "3"]).executors == 3
    with pytest.raises(SystemExit):
        spark_on_ray.parse_args(["--executors", "0"])
