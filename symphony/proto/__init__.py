"""Generated gRPC code for ``proto/symphony/v1/protocol.proto`` (see generate.py)."""
