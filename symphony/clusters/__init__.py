"""Cluster adapters: the only code that touches tmux, Kubernetes or a conductor."""
