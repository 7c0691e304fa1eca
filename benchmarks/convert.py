"""Time to read, map and build MobileNetV2-1.4/224 from its checkpoint: tf2torch vs TF's reader.

Each route runs in its own fresh process, several rounds, so imports count as a user pays
them. The TensorFlow route includes `import tensorflow` and reads with
`tf.train.load_checkpoint`, then maps the same arrays with the same rules.

    .venv/bin/python benchmarks/convert.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

OURS = """
import time, json, sys
t_start = time.perf_counter()
import torch
t0 = time.perf_counter()
from tf2torch.sources import open_source
from tf2torch.conversion.convert import convert_zoo
conversion = convert_zoo(open_source(sys.argv[1]))
t1 = time.perf_counter()
assert "tensorflow" not in sys.modules
print(json.dumps({"seconds": t1 - t0, "torch_import": t0 - t_start}))
"""

TF_ROUTE = """
import time, json, sys
t_start = time.perf_counter()
import numpy as np
import torch
t0 = time.perf_counter()
import tensorflow as tf
from tf2torch.sources.model import SourceModel, TensorStore, TensorInfo
from tf2torch.conversion.convert import convert_zoo
from pathlib import Path
reader = tf.train.load_checkpoint(sys.argv[1])
store = TensorStore()
for name, shape in reader.get_variable_to_shape_map().items():
    store.add(TensorInfo(name, tuple(shape), np.dtype("float32")),
              lambda name=name: reader.get_tensor(name))
conversion = convert_zoo(SourceModel("tf-checkpoint", Path(sys.argv[1]), store,
                                     meta={"input_size": 224}))
t1 = time.perf_counter()
print(json.dumps({"seconds": t1 - t0, "torch_import": t0 - t_start}))
"""


def run_round(script: str, prefix: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", script, str(prefix)], check=True,
                         capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3",
                                                              "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tf2torch-bench")
    args = parser.parse_args()

    import torch  # noqa: F401 - before tensorflow

    from tf2torch.references import standin

    name = standin.release_name(1.4, 224)
    prefix = args.workdir / name / name / f"{name}.ckpt"
    if not prefix.with_name(prefix.name + ".index").exists():
        standin.make_standin_release(args.workdir / name, 1.4, 224, tflite=False, pack=False)
    # in-process (warm) figure too: what a long-running service pays per conversion
    import time

    from tf2torch.conversion.convert import convert_zoo
    from tf2torch.sources import open_source

    warm = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        convert_zoo(open_source(prefix))
        warm.append(time.perf_counter() - t0)

    ours = [run_round(OURS, prefix) for _ in range(args.rounds)]
    theirs = [run_round(TF_ROUTE, prefix) for _ in range(args.rounds)]
    m_ours = statistics.median(r["seconds"] for r in ours)
    m_tf = statistics.median(r["seconds"] for r in theirs)
    torch_import = statistics.median(r["torch_import"] for r in ours + theirs)
    print(f"## Conversion: MobileNetV2-1.4/224 checkpoint → PyTorch module ({date.today()}, "
          f"{cpu_name()}, {torch_threads()} threads, {args.rounds} rounds, median)\n")
    print("Each route in a fresh process, after `import torch` (which both pay: "
          f"{torch_import:.2f} s median): import of the route's own libraries + read + map + "
          "build.\n")
    print("| route | fresh process (s) | in-process, warm (s) |")
    print("|---|---|---|")
    print(f"| tf2torch reader (no TensorFlow) | {m_ours:.3f} | {statistics.median(warm):.3f} |")
    print(f"| TensorFlow's checkpoint reader, incl. `import tensorflow` | {m_tf:.3f} | - |")
    print(f"\nspeed-up: {m_tf / m_ours:.1f}×")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
