"""Write TensorFlow's graph message definitions as one protobuf FileDescriptorSet.

`tf2torch.sources.tensorflow.protos` parses SavedModels, GraphDefs and meta graphs with the
`protobuf` library from these definitions, so reading a model needs neither TensorFlow nor
TensorBoard (whose wheel carries the same `.proto` files but pulls grpcio, werkzeug, a data
server binary and more). The set is data: TensorFlow's own `.proto` definitions (Apache-2.0),
compiled by TensorFlow's build, read here from its installed `_pb2` modules.

Run with the `[tf]` extra installed, after a TensorFlow upgrade that changes the formats:

    .venv/bin/python tools/make_tf_protos.py
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/tf2torch/data/tensorflow_protos.binpb"
# The roots; their imports come along.
ROOTS = (
    "tensorflow.core.protobuf.saved_model_pb2",
    "tensorflow.core.protobuf.trackable_object_graph_pb2",
)


def main() -> int:
    import importlib

    from google.protobuf import descriptor_pb2

    files: dict[str, object] = {}

    def visit(file_descriptor) -> None:
        if file_descriptor.name in files:
            return
        for dependency in file_descriptor.dependencies:
            visit(dependency)
        files[file_descriptor.name] = file_descriptor  # dependencies first

    for root in ROOTS:
        visit(importlib.import_module(root).DESCRIPTOR)
    out = descriptor_pb2.FileDescriptorSet()
    for descriptor in files.values():
        proto = out.file.add()
        descriptor.CopyToProto(proto)
    OUT.write_bytes(out.SerializeToString(deterministic=True))
    print(f"{OUT}: {len(files)} files, {OUT.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
