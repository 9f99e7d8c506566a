"""RdmaNetwork: the three VPCs an a3-ultragpu-8g node plugs its ten NICs into.

eth0 -> the primary gVNIC VPC (the cluster's network, with pod and service ranges), eth1 -> a second gVNIC VPC,
eth2..eth9 -> one RoCE VPC (the zone's RoCE network profile, MTU 8896) with eight subnets. Firewall rules and
Cloud NAT for private nodes exist on the gVNIC VPCs only; the RoCE VPC takes no classic firewall rules.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

ROCE_MTU = 8896
# Assumption (Cluster Toolkit's A3 Ultra blueprint does the same): the gVNIC VPCs use the large MTU too.
GVNIC_MTU = 8896
RDMA_NICS = 8
PODS_RANGE = "pods"
SERVICES_RANGE = "services"
PROTOCOLS = ("tcp", "udp", "icmp")


@dataclass(frozen=True)
class RdmaNetworkArgs:
    project: str
    region: str
    zone: str
    prefix: str
    roce_network_profile: str
    nodes_cidr: str
    pods_cidr: str
    services_cidr: str
    gvnic_1_cidr: str
    rdma_cidrs: list[str]
    proxy_only_cidr: str | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)  # e.g. the compute API being enabled

    def __post_init__(self) -> None:
        if len(self.rdma_cidrs) != RDMA_NICS:
            raise ValueError(f"rdma_cidrs: {len(self.rdma_cidrs)} ranges (allowed: exactly {RDMA_NICS}, one per RDMA NIC)")
        if not self.zone.startswith(f"{self.region}-"):
            raise ValueError(f"zone: {self.zone!r} is not in region {self.region!r} (allowed: a zone of the region)")
        if not self.roce_network_profile.endswith(f"/networkProfiles/{self.zone}-vpc-roce"):
            raise ValueError(f"roce_network_profile: {self.roce_network_profile!r} is not the RoCE profile of "
                             f"{self.zone} (allowed: projects/<project>/global/networkProfiles/{self.zone}-vpc-roce)")
        for cidr in [self.nodes_cidr, self.pods_cidr, self.services_cidr, self.gvnic_1_cidr, *self.rdma_cidrs]:
            ipaddress.IPv4Network(cidr)  # raises ValueError naming the bad value


class RdmaNetwork(pulumi.ComponentResource):
    """Names, in NIC order, are what the node pools (`additional_node_networks`) and the GKENetworkParamSets use."""

    primary: gcp.compute.Network
    primary_subnet: gcp.compute.Subnetwork
    gvnic_1: gcp.compute.Network
    gvnic_1_subnet: gcp.compute.Subnetwork
    rdma: gcp.compute.Network
    rdma_subnets: list[gcp.compute.Subnetwork]
    pods_range_name: str = PODS_RANGE
    services_range_name: str = SERVICES_RANGE

    def __init__(self, name: str, args: RdmaNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ray-platform:gke:RdmaNetwork", name, None, opts)
        self._base, self._args = name, args
        self.primary = self._vpc(f"{name}-gvnic-0", f"{args.prefix}-gvnic-0", GVNIC_MTU)
        self.primary_subnet = gcp.compute.Subnetwork(
            f"{name}-gvnic-0",
            name=f"{args.prefix}-gvnic-0",
            project=args.project,
            region=args.region,
            network=self.primary.id,
            ip_cidr_range=args.nodes_cidr,
            private_ip_google_access=True,  # private nodes reach Google APIs (Artifact Registry, GCS) without NAT
            secondary_ip_ranges=[
                {"range_name": PODS_RANGE, "ip_cidr_range": args.pods_cidr},
                {"range_name": SERVICES_RANGE, "ip_cidr_range": args.services_cidr},
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.gvnic_1 = self._vpc(f"{name}-gvnic-1", f"{args.prefix}-gvnic-1", GVNIC_MTU)
        self.gvnic_1_subnet = gcp.compute.Subnetwork(
            f"{name}-gvnic-1",
            name=f"{args.prefix}-gvnic-1",
            project=args.project,
            region=args.region,
            network=self.gvnic_1.id,
            ip_cidr_range=args.gvnic_1_cidr,
            private_ip_google_access=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.rdma = gcp.compute.Network(
            f"{name}-rdma",
            name=f"{args.prefix}-rdma",
            project=args.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            mtu=ROCE_MTU,  # pulumi-gcp would default to 1460
            network_profile=args.roce_network_profile,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.rdma_subnets = [
            gcp.compute.Subnetwork(
                f"{name}-rdma-{i}",
                name=f"{args.prefix}-rdma-{i}",
                project=args.project,
                region=args.region,
                network=self.rdma.id,
                ip_cidr_range=cidr,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for i, cidr in enumerate(args.rdma_cidrs)
        ]
        self._internal_firewall("gvnic-0", self.primary, [args.nodes_cidr, args.pods_cidr, args.services_cidr])
        self._internal_firewall("gvnic-1", self.gvnic_1, [args.gvnic_1_cidr])
        self._nat("gvnic-0", self.primary)
        self._nat("gvnic-1", self.gvnic_1)
        self.proxy_only_subnet = None
        if args.proxy_only_cidr:
            # For an internal Application Load Balancer (gce-internal Ingress) in front of the Ray dashboard.
            self.proxy_only_subnet = gcp.compute.Subnetwork(
                f"{name}-proxy-only",
                name=f"{args.prefix}-proxy-only",
                project=args.project,
                region=args.region,
                network=self.primary.id,
                ip_cidr_range=args.proxy_only_cidr,
                purpose="REGIONAL_MANAGED_PROXY",
                role="ACTIVE",
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({
            "primary": self.primary.name, "gvnic_1": self.gvnic_1.name, "rdma": self.rdma.name,
            "rdma_subnets": [s.name for s in self.rdma_subnets],
        })

    def _vpc(self, resource_name: str, vpc_name: str, mtu: int) -> gcp.compute.Network:
        return gcp.compute.Network(
            resource_name,
            name=vpc_name,
            project=self._args.project,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            mtu=mtu,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._args.depends_on),
        )

    def _internal_firewall(self, key: str, network: gcp.compute.Network, sources: list[str]) -> None:
        """Traffic between nodes and pods of one gVNIC VPC; nothing from outside it."""
        gcp.compute.Firewall(
            f"{self._base}-{key}-internal",
            name=f"{self._args.prefix}-{key}-allow-internal",
            project=self._args.project,
            network=network.id,
            direction="INGRESS",
            source_ranges=sources,
            allows=[{"protocol": p} for p in PROTOCOLS],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _nat(self, key: str, network: gcp.compute.Network) -> None:
        """Egress for private nodes (images and packages from outside Google)."""
        router = gcp.compute.Router(
            f"{self._base}-{key}-router",
            name=f"{self._args.prefix}-{key}-router",
            project=self._args.project,
            region=self._args.region,
            network=network.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        gcp.compute.RouterNat(
            f"{self._base}-{key}-nat",
            name=f"{self._args.prefix}-{key}-nat",
            project=self._args.project,
            region=self._args.region,
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
            log_config={"enable": True, "filter": "ERRORS_ONLY"},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def additional_node_networks(self) -> list[dict[str, pulumi.Output[str]]]:
        """The node pools' 9 extra NICs, in order: eth1 (gVNIC VPC 1), eth2..eth9 (RDMA subnets 0..7).
        GKE takes network and subnetwork NAMES here, not self links."""
        out = [{"network": self.gvnic_1.name, "subnetwork": self.gvnic_1_subnet.name}]
        out += [{"network": self.rdma.name, "subnetwork": s.name} for s in self.rdma_subnets]
        return out
