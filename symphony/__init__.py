"""Symphony: run distributed programs from declarative YAML manifests."""
