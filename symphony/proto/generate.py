"""Regenerate the protocol's Python code from ``proto/symphony/v1/protocol.proto``.

Run ``python -m symphony.proto.generate`` after editing the ``.proto``; a test checks
that the committed files match what this produces. protoc writes absolute imports
(``from symphony.v1 import protocol_pb2``); we rewrite them package-relative so the
generated modules live inside ``symphony.proto``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
PROTO_FILE = "symphony/v1/protocol.proto"
OUTPUTS = ("protocol_pb2.py", "protocol_pb2.pyi", "protocol_pb2_grpc.py")


def render() -> dict[str, str]:
    """Run protoc (grpcio-tools) into a temporary folder; return {file name: text}."""
    from grpc_tools import protoc  # build/test-time dependency only

    with tempfile.TemporaryDirectory() as tmp:
        include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            str(PROTO_ROOT / PROTO_FILE),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        out = Path(tmp) / "symphony" / "v1"
        texts = {name: (out / name).read_text() for name in OUTPUTS}
    texts["protocol_pb2_grpc.py"] = texts["protocol_pb2_grpc.py"].replace(
        "from symphony.v1 import protocol_pb2", "from . import protocol_pb2"
    )
    return texts


def main() -> int:
    for name, text in render().items():
        (HERE / name).write_text(text)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
