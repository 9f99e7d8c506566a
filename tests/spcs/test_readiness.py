"""The readiness wait against a fake cursor replaying what Snowflake documents for SHOW SERVICE CONTAINERS and
SHOW ENDPOINTS (columns as documented; "Endpoints provisioning in progress..." while ingress is being set up),
on a fake clock: waits until READY and provisioned, fails fast on FAILED, gives up after the timeout."""

from __future__ import annotations

import pytest

from components.spcs.readiness import ServiceEndpointsProvider, public_urls
from tests.fake_snowflake import FakeCursor

CONNECTION = {"account": "MYORG-MYACCOUNT", "user": "RAY_DEPLOYER", "role": "RAY_PROVIDER_ROLE"}
HEAD, CPU = '"RAY_DB"."RAY_SCHEMA"."RAY_SPCS_HEAD"', '"RAY_DB"."RAY_SCHEMA"."RAY_SPCS_CPU"'
PROPS = {"connection": CONNECTION, "timeout_s": 600, "revision": "r1",
         "containers": [f"SHOW SERVICE CONTAINERS IN SERVICE {HEAD}", f"SHOW SERVICE CONTAINERS IN SERVICE {CPU}"],
         "endpoints": f"SHOW ENDPOINTS IN SERVICE {HEAD}"}
PROVISIONING = "Endpoints provisioning in progress... check back in a few minutes"
INGRESS = "abcd1234-myorg-myaccount.snowflakecomputing.app"


def container(service: str, status: str, message: str, name: str = "ray-head") -> dict:
    """A row of SHOW SERVICE CONTAINERS IN SERVICE, with the documented columns."""
    return {"database_name": "RAY_DB", "schema_name": "RAY_SCHEMA", "service_name": service, "service_status": "RUNNING",
            "instance_id": "0", "instance_status": "READY" if status == "READY" else "PENDING",
            "container_name": name, "status": status, "message": message,
            "image_name": "/ray_db/ray_schema/ray_images/spcs-ray:t", "image_digest": "sha256:0", "restart_count": 0,
            "start_time": "2026-11-30T09:00:00Z"}


def endpoints(url: str) -> list[dict]:
    """SHOW ENDPOINTS IN SERVICE rows (name, port, port_range, protocol, is_public, ingress_url)."""
    return [{"name": "dashboard", "port": 8265, "port_range": None, "protocol": "HTTP", "is_public": "true",
             "ingress_url": url},
            {"name": "gcs", "port": 6379, "port_range": None, "protocol": "TCP", "is_public": "false",
             "ingress_url": None}]


class Clock:
    def __init__(self):
        self.now, self.sleeps = 0.0, 0

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1


def provider(cursor: FakeCursor, clock: Clock) -> ServiceEndpointsProvider:
    return ServiceEndpointsProvider(connect=lambda: cursor, sleep=clock.sleep, clock=lambda: clock.now)


def test_waits_for_ready_containers_then_for_provisioned_endpoints():
    cursor = FakeCursor({
        f"SHOW SERVICE CONTAINERS IN SERVICE {HEAD}": [
            [container("RAY_SPCS_HEAD", "PENDING", "Pending scheduling")],
            [container("RAY_SPCS_HEAD", "READY", "Running")],
            [container("RAY_SPCS_HEAD", "READY", "Running")]],
        f"SHOW SERVICE CONTAINERS IN SERVICE {CPU}": [
            [container("RAY_SPCS_CPU", "PENDING", "Waiting to start", "ray-worker")],
            [container("RAY_SPCS_CPU", "READY", "Running", "ray-worker")],
            [container("RAY_SPCS_CPU", "READY", "Running", "ray-worker")]],
        f"SHOW ENDPOINTS IN SERVICE {HEAD}": [endpoints(PROVISIONING), endpoints(INGRESS)],
    })
    clock = Clock()
    result = provider(cursor, clock).create(PROPS)
    assert result.outs["urls"] == {"dashboard": f"https://{INGRESS}"}
    assert clock.sleeps == 2  # once for the pending containers, once for the provisioning endpoint
    assert cursor.statements.count(f"SHOW ENDPOINTS IN SERVICE {HEAD}") == 2  # not asked before READY


def test_a_failed_container_stops_the_wait_with_its_message():
    cursor = FakeCursor({f"SHOW SERVICE CONTAINERS IN SERVICE {HEAD}": [
        [container("RAY_SPCS_HEAD", "FAILED", "Failed to pull image")]]})
    with pytest.raises(RuntimeError) as err:
        provider(cursor, Clock()).create(PROPS)
    assert str(err.value) == ("service containers FAILED: RAY_SPCS_HEAD/ray-head[0]: FAILED (Failed to pull image) "
                              "(see SYSTEM$GET_SERVICE_LOGS for their logs, fix, and run `pulumi up` again)")


def test_gives_up_after_the_timeout_naming_what_is_still_pending():
    ready = [container("RAY_SPCS_HEAD", "READY", "Running")]
    cursor = FakeCursor({f"SHOW SERVICE CONTAINERS IN SERVICE {HEAD}": [ready] * 100,
                         f"SHOW SERVICE CONTAINERS IN SERVICE {CPU}": [[container(
                             "RAY_SPCS_CPU", "READY", "Running", "ray-worker")]] * 100,
                         f"SHOW ENDPOINTS IN SERVICE {HEAD}": [endpoints(PROVISIONING)] * 100})
    clock = Clock()
    with pytest.raises(RuntimeError) as err:
        provider(cursor, clock).create({**PROPS, "timeout_s": 60})
    assert str(err.value) == ("not ready after 60 s: endpoint dashboard: provisioning (nothing was undone: run "
                              "`pulumi up` again to keep waiting)")
    assert clock.now >= 60


def test_waits_again_only_when_a_spec_changes_and_refresh_rereads_urls():
    p = ServiceEndpointsProvider()
    assert not p.diff("id", PROPS, dict(PROPS)).changes
    changed = p.diff("id", PROPS, {**PROPS, "revision": "r2"})
    assert changed.changes and changed.replaces == []
    cursor = FakeCursor({f"SHOW ENDPOINTS IN SERVICE {HEAD}": [endpoints(INGRESS)]})
    read = provider(cursor, Clock()).read("id", {**PROPS, "urls": {"dashboard": None}})
    assert read.outs["urls"] == {"dashboard": f"https://{INGRESS}"} and cursor.statements == [PROPS["endpoints"]]


def test_public_urls_only_for_public_endpoints_with_a_host():
    assert public_urls(endpoints(PROVISIONING)) == {"dashboard": None}
    assert public_urls(endpoints(INGRESS)) == {"dashboard": f"https://{INGRESS}"}
