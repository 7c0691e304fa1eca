"""TensorFlow's graph messages, parsed by the `protobuf` library without TensorFlow.

The message definitions are TensorFlow's own `.proto` files, shipped as one compiled
FileDescriptorSet (`tf2torch/data/tensorflow_protos.binpb`, written by
`tools/make_tf_protos.py`). They are loaded into a private descriptor pool, so nothing here
clashes with a TensorFlow that may be imported in the same process, and no generated code
ties us to one protobuf release.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from tf2torch.errors import SourceError

_DESCRIPTORS = "tensorflow_protos.binpb"


@functools.cache
def message_class(full_name: str) -> type:
    """The message class of `full_name` (e.g. "tensorflow.GraphDef")."""
    return _classes()[full_name]


@functools.cache
def _classes() -> dict[str, type]:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(resources.files("tf2torch.data").joinpath(_DESCRIPTORS).read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    names = [f"tensorflow.{n}" for n in (
        "SavedModel", "MetaGraphDef", "GraphDef", "TrackableObjectGraph", "TensorProto")]
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
            for name in names}


def parse(full_name: str, data: bytes, path: Path | str) -> Any:
    """`data` parsed as a `full_name` message; a SourceError naming `path` if it is not one."""
    from google.protobuf.message import DecodeError

    message = message_class(full_name)()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as err:
        kind = full_name.rpartition(".")[2]
        raise SourceError(f"{path}: not a readable {kind} (truncated or corrupt: {err})") \
            from None
    return message
