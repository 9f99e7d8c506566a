"""The cluster's network: a VPC and subnet (or an existing pair), firewall rules and Cloud NAT.

Ray's ports are open only between the cluster's own VMs (by network tag); SSH and the dashboard tunnel
only from the configured ranges (Google's IAP range by default); nothing from 0.0.0.0/0.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

IAP_SSH_PORT = "22"


@dataclass(frozen=True)
class ClusterNetworkArgs:
    prefix: str  # names every resource: <prefix>-vpc, <prefix>-internal, ...
    project: str
    region: str
    network_tag: str  # every cluster VM carries it
    head_tag: str  # only the head carries it
    subnet_cidr: str = "10.10.0.0/20"
    existing_network: str | None = None
    existing_subnet: str | None = None
    tunnel_source_ranges: list[str] = field(default_factory=lambda: ["35.235.240.0/20"])
    dashboard_port: int = 8265
    nat: bool = True

    def __post_init__(self) -> None:
        if (self.existing_network is None) != (self.existing_subnet is None):
            raise ValueError("existing_network and existing_subnet go together")
        for cidr in self.tunnel_source_ranges:
            if ipaddress.ip_network(cidr).prefixlen == 0:
                raise ValueError(f"tunnel_source_ranges: {cidr} is the whole internet")


class ClusterNetwork(pulumi.ComponentResource):
    network_name: pulumi.Output[str]
    subnetwork: pulumi.Output[str]  # projects/P/regions/R/subnetworks/S, as the autoscaler config names it

    def __init__(self, name: str, args: ClusterNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gcpvm:ClusterNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        p = args.prefix
        if args.existing_network is None:
            vpc = gcp.compute.Network(f"{name}-vpc", name=f"{p}-vpc", project=args.project,
                                      auto_create_subnetworks=False, opts=child)
            subnet = gcp.compute.Subnetwork(
                f"{name}-subnet", name=f"{p}-subnet", project=args.project, region=args.region, network=vpc.id,
                ip_cidr_range=args.subnet_cidr,
                private_ip_google_access=True,  # Google APIs (Secret Manager, GCS, registries) without public IPs
                opts=child,
            )
            self.network_name = vpc.name
            subnet_name: pulumi.Input[str] = subnet.name
            nat_scope = "ALL_SUBNETWORKS_ALL_IP_RANGES"
        else:
            self.network_name = pulumi.Output.from_input(args.existing_network)
            subnet_name = args.existing_subnet
            nat_scope = "LIST_OF_SUBNETWORKS"
        self.subnetwork = pulumi.Output.concat("projects/", args.project, "/regions/", args.region, "/subnetworks/",
                                               subnet_name)
        self.internal = gcp.compute.Firewall(
            f"{name}-internal", name=f"{p}-internal", project=args.project, network=self.network_name,
            description="Ray (GCS, raylets, object transfer, dashboard agents) and SSH between cluster VMs only",
            direction="INGRESS",
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp"), gcp.compute.FirewallAllowArgs(protocol="udp"),
                    gcp.compute.FirewallAllowArgs(protocol="icmp")],
            source_tags=[args.network_tag], target_tags=[args.network_tag], opts=child,
        )
        self.ssh = gcp.compute.Firewall(
            f"{name}-tunnel-ssh", name=f"{p}-tunnel-ssh", project=args.project, network=self.network_name,
            description="SSH through IAP TCP forwarding (authenticated by IAM) to every cluster VM",
            direction="INGRESS", allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[IAP_SSH_PORT])],
            source_ranges=list(args.tunnel_source_ranges), target_tags=[args.network_tag], opts=child,
        )
        self.dashboard = gcp.compute.Firewall(
            f"{name}-tunnel-dashboard", name=f"{p}-tunnel-dashboard", project=args.project, network=self.network_name,
            description="The Ray dashboard / Jobs API through an IAP TCP tunnel to the head only",
            direction="INGRESS",
            allows=[gcp.compute.FirewallAllowArgs(protocol="tcp", ports=[str(args.dashboard_port)])],
            source_ranges=list(args.tunnel_source_ranges), target_tags=[args.head_tag], opts=child,
        )
        if args.nat:
            router = gcp.compute.Router(f"{name}-router", name=f"{p}-router", project=args.project,
                                        region=args.region, network=self.network_name, opts=child)
            subnetworks = None
            if nat_scope == "LIST_OF_SUBNETWORKS":
                subnetworks = [gcp.compute.RouterNatSubnetworkArgs(name=self.subnetwork,
                                                                   source_ip_ranges_to_nats=["ALL_IP_RANGES"])]
            gcp.compute.RouterNat(
                f"{name}-nat", name=f"{p}-nat", project=args.project, region=args.region, router=router.name,
                nat_ip_allocate_option="AUTO_ONLY", source_subnetwork_ip_ranges_to_nat=nat_scope,
                subnetworks=subnetworks, opts=child,
            )
        self.register_outputs({"network_name": self.network_name, "subnetwork": self.subnetwork})
