"""`tf2torch predict`: classify many images with a packaged model, batch by batch.

A file that cannot be decoded is reported and skipped; the rest are still classified.
"""

from __future__ import annotations

import glob
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Full, Queue

import numpy as np
import torch

from tf2torch.errors import SourceError, Tf2TorchError
from tf2torch.packages.codecs import Prediction, load_rgb
from tf2torch.packages.package import LoadedModel
from tf2torch.util.progress import counter

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}

# Runs a (batch, ...) float32 array through some backend and returns logits.
Backend = Callable[[np.ndarray], np.ndarray]


@dataclass
class ImageResult:
    path: str
    predictions: list[Prediction] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "error": self.error,
                "predictions": [{"index": p.index, "wnid": p.wnid, "label": p.label,
                                 "probability": p.probability} for p in self.predictions]}


def collect_images(arguments: Sequence[str | Path]) -> list[Path]:
    """Files, directories (their images, sorted) and glob patterns → image paths.

    A named file that does not exist is kept, so it is reported as an error rather than
    silently dropped.
    """
    found: list[Path] = []
    for argument in map(str, arguments):
        path = Path(argument)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in argument for ch in "*?["):
            found += sorted(Path(p) for p in glob.glob(argument, recursive=True)
                            if Path(p).is_file())
        else:
            found.append(path)
    return found


def torch_backend(model: LoadedModel) -> Backend:
    device = model.device

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.net(torch.from_numpy(batch).to(device)).cpu().numpy()

    return run


def strict_float32() -> None:
    """Let no float32 work run in TF32 in this process (call it only in a process of ours:
    the CLI, a Ray actor; a library must not change its caller's settings).

    PyTorch's default lets cuDNN convolutions use TF32 on Ampere and later GPUs. On an H200
    that moved the slim MobileNetV2-1.4's logits 1.2e-2 from TensorFlow's (7.9e-6 in
    float32) and a MediaPipe face detector's outputs by 0.34 (`tools/gpu_check.py`,
    BENCHMARKS.md): the answers would no longer be the verified port's."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False


def predict_files(model: LoadedModel, paths: Sequence[Path], top: int = 5,
                  batch_size: int = 16, backend: Backend | None = None,
                  prefetch: int = 2) -> list[ImageResult]:
    """Top-k for every path, in order; undecodable files carry an error instead.

    Decoding streams: a thread of its own reads, decodes and encodes the next batches (at
    most `prefetch` ahead, so a large folder never sits in memory) while this thread runs
    the model on the current one; Pillow and the encoder's resampling release the GIL, so
    the two overlap. The progress bar counts images, and shows images per second.
    """
    if model.encoder is None or model.decoder is None:
        raise Tf2TorchError(f"{model.path}: the package has no encoder/decoder; it cannot classify")
    run = backend or torch_backend(model)
    results = [ImageResult(str(p)) for p in paths]
    bar = counter("classifying", len(results), "img")
    for chunk, batch in _decoded_batches(model, results, batch_size, prefetch):
        if batch is not None:
            done = [r for r in chunk if r.error is None]
            for result, preds in zip(done, model.decoder(run(batch), top=top), strict=True):
                result.predictions = preds
        bar.update(len(chunk))
    bar.close()
    return results


def _decoded_batches(model: LoadedModel, results: list[ImageResult], size: int,
                     prefetch: int) -> Iterator[tuple[list[ImageResult], np.ndarray | None]]:
    """(chunk, its encoded batch or None when nothing in it decoded), decoded ahead in a
    thread; an error in that thread is raised here."""
    queue: Queue = Queue(maxsize=max(1, prefetch))
    stop = threading.Event()

    def put(item: tuple) -> None:
        while not stop.is_set():  # the consumer may have stopped listening
            try:
                return queue.put(item, timeout=0.1)
            except Full:
                continue

    def decode() -> None:
        try:
            for start in range(0, len(results), size):
                chunk, encoded = results[start:start + size], []
                for result in chunk:
                    try:
                        encoded.append(model.encoder.encode_rgb(load_rgb(Path(result.path))))
                    except (SourceError, OSError) as exc:
                        result.error = str(exc)
                put((chunk, torch.stack(encoded).numpy() if encoded else None, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put((None, None, exc))
        put((None, None, None))

    thread = threading.Thread(target=decode, name="tf2torch-decode", daemon=True)
    thread.start()
    try:
        while True:
            chunk, batch, error = queue.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk, batch
    finally:
        stop.set()
        thread.join(timeout=5)


def render_results(results: Sequence[ImageResult]) -> str:
    lines = []
    for result in results:
        lines.append(result.path)
        if result.error:
            lines.append(f"  error: {result.error}")
        for p in result.predictions:
            lines.append(f"  {p.probability:7.2%}  {p.index:5d}  {p.wnid or '':10}  {p.label}")
    return "\n".join(lines)
