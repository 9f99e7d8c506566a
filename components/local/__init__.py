"""Components for Ray on Docker hosts: images, the Ray cluster, monitoring, object store, notebook."""
