"""Components of the `gke` environment: RDMA networks, the private GKE cluster and its H200 pools, the
Kubernetes objects for multi-networking, training data, registries, Cloud Build and Binary Authorization."""
