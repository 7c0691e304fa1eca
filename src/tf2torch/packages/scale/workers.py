"""What runs on Ray's workers: decode + encode tasks (CPU), and the model actor.

Both reuse local predict's pieces unchanged (`load_rgb`, the package's `Encoder` and
`Decoder`), so the two engines compute the same numbers. Batches travel as numpy columns:
`path`, `error` ("" when the file decoded) and `pixels` (the encoded input tensor).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tf2torch.errors import SourceError, Tf2TorchError
from tf2torch.packages.codecs import Encoder, load_rgb
from tf2torch.packages.predict import strict_float32
from tf2torch.packages.scale.rows import arrow_schema, prediction_row
from tf2torch.packages.scale.shipping import Shipment, receive

BACKENDS = ("torch", "torch-fast")
ROUTE_COLUMN = "package_route"  # dropped on the driver before rows are written


def encode_images(batch: dict[str, np.ndarray], encoder: dict[str, Any]) -> dict[str, np.ndarray]:
    """Read, decode and encode each file of the batch; a file that fails carries its error."""
    enc = Encoder.from_dict(encoder)
    paths = batch["path"]
    pixels = np.zeros((len(paths), *enc.sample_shape), np.float32)
    errors = np.full(len(paths), "", dtype=object)
    for i, path in enumerate(paths):
        try:
            pixels[i] = enc.encode_rgb(load_rgb(Path(path))).numpy()
        except (SourceError, OSError) as exc:  # as local predict: report the file, go on
            errors[i] = str(exc)
    return {"path": paths, "error": errors, "pixels": pixels}


class PackagePredictor:
    """A model actor: the package loaded once, then batches of pixels → top-k rows."""

    def __init__(self, shipment: Shipment, top: int, backend: str, num_gpus: float,
                 threads: int) -> None:
        torch.set_num_threads(threads)
        strict_float32()
        model, route = receive(shipment)
        if model.decoder is None:
            raise Tf2TorchError(f"{shipment.path}: the package has no decoder; it cannot classify")
        self.device = torch.device("cuda" if num_gpus > 0 else "cpu")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise Tf2TorchError(f"actor on {os.uname().nodename} was given a GPU but torch "
                                "sees none (is a CUDA build of torch installed there?)")
        if backend == "torch-fast":
            from tf2torch.packages.inference import configure_allocator, inference_form

            configure_allocator()
            model.net = inference_form(model.net, model.card.input["shape"],
                                       input_layout=model.card.input.get("layout", "nchw"))
        self.net, self.decoder, self.top = model.net.to(self.device), model.decoder, top
        # How this actor got the package travels with its rows (Ray forwards worker stderr
        # to the driver only eventually, so the line below is for people, the column for
        # the summary).
        self.route = route
        print(f"tf2torch: {model.card.name} loaded from the {route} on {os.uname().nodename} "
              f"({self.device})", file=sys.stderr, flush=True)

    def __call__(self, batch: dict[str, np.ndarray]) -> Any:
        import pyarrow as pa

        errors = batch["error"]
        ok = np.flatnonzero(errors == "")
        predictions: list[list] = [[] for _ in errors]
        if ok.size:
            x = torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok])).to(self.device)
            with torch.inference_mode():
                logits = self.net(x).float().cpu()
            for i, top in zip(ok, self.decoder(logits, top=self.top), strict=True):
                predictions[i] = top
        rows = [prediction_row(str(path), predictions[i], errors[i] or None)
                for i, path in enumerate(batch["path"])]
        table = pa.Table.from_pylist(rows, schema=arrow_schema())
        return table.append_column(ROUTE_COLUMN, pa.array([self.route] * table.num_rows))
