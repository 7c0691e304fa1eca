"""Check converted models on a CUDA GPU against the originals' recorded outputs; time them.

    python tools/gpu_check.py --kit .gpu/kit --package .gpu/models/NAME --images .gpu/images \\
        --expected .gpu/expected.json --out OUT

Runs where there is a GPU and no TensorFlow: the originals' outputs travel in the kit
(tools/gpu_kit.py records them from the test suite's comparisons) and in each package
(`reference_outputs.safetensors`). Three modes: the CPU, the GPU in strict float32, and the
GPU with TF32 (PyTorch's default for cuDNN convolutions on Ampere and later), so that a
difference from TF32 is not mistaken for a conversion fault. With `--images`, also Ray Data
predict with GPU actors, against the rows local predict gave on a CPU (`--expected`).
Writes `gpu_check.json` to `--out`; prints a summary.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from tf2torch.conversion.graph import build_from_ir
from tf2torch.verification.report import GRAPH_TOLERANCE, compare_arrays

# Without a GPU only the CPU mode runs: a dry run of the kit and of this script.
MODES = ("cpu", "cuda-fp32", "cuda-tf32") if torch.cuda.is_available() else ("cpu",)


def set_mode(mode: str) -> torch.device:
    tf32 = mode == "cuda-tf32"
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    return torch.device("cpu" if mode == "cpu" else "cuda")


class OnDevice(torch.nn.Module):
    """A net on `device` behind the CPU interface the package's checks use."""

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.net, self.device = net.to(device), device

    def forward(self, *args: torch.Tensor) -> Any:
        out = self.net(*[a.to(self.device) for a in args])
        return tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu()


def check_entry(folder: Path) -> dict:
    meta = json.loads((folder / "entry.json").read_text())
    net = build_from_ir(meta["ir"], meta["layout"])
    net.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
    net.eval()
    arrays = load_file(str(folder / "cases.safetensors"))
    result: dict[str, Any] = {"entry": folder.name, "test": meta["test"]}
    for mode in MODES:
        device = set_mode(mode)
        try:
            result[mode] = _run_entry(net.to(device), device, meta, arrays)
        except Exception as exc:  # one entry's failure is a finding, not the end of the run
            result[mode] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:600]}
    return result


def _run_entry(net: torch.nn.Module, device: torch.device, meta: dict, arrays: dict) -> dict:
    worst_cpu, worst_ratio, passed = 0.0, 0.0, True
    for i, case in enumerate(meta["cases"]):
        args = [arrays[f"{i}.arg{j}"].to(device) for j in range(case["args"])]
        with torch.no_grad():
            out = net(*args)
        outs = [o.cpu() for o in (out if isinstance(out, tuple) else (out,))]
        for j, o in enumerate(outs):
            cpu = arrays[f"{i}.cpu{j}"]
            if o.dtype != cpu.dtype or o.shape != cpu.shape:
                return {"passed": False, "error": f"output {j}: {o.dtype} {tuple(o.shape)} "
                        f"here, {cpu.dtype} {tuple(cpu.shape)} on the CPU that recorded it"}
            if o.is_floating_point():
                worst_cpu = max(worst_cpu, float((o - cpu).abs().max()) if o.numel() else 0.0)
            elif not torch.equal(o, cpu):
                worst_cpu = float("inf")
        for j, name in enumerate(meta["outputs"]):
            key = f"{i}.ref.{name}"
            if key not in arrays:
                continue
            x = outs[j].numpy()
            if meta["layout"] == "nchw" and x.ndim == 4:
                x = x.transpose(0, 2, 3, 1)
            cmp = compare_arrays(case["case"], name, x, arrays[key].numpy(), GRAPH_TOLERANCE)
            passed &= cmp.passed
            if cmp.bound:
                worst_ratio = max(worst_ratio, cmp.max_abs / cmp.bound)
    return {"passed": passed, "max_abs_vs_recording_cpu": worst_cpu,
            "worst_diff_over_bound": worst_ratio}


def check_package(path: Path) -> dict:
    import tf2torch
    from tf2torch.verification.checks import check_port

    model = tf2torch.load(path)
    result: dict[str, Any] = {"package": model.card.name}
    for mode in MODES:
        device = set_mode(mode)
        try:
            report, against = check_port(model, OnDevice(model.net, device),
                                         f"the module in mode {mode}")
            worst = max(report["comparisons"], key=lambda c: c["max_abs"] / c["bound"])
            result[mode] = {"passed": True, "against": against,
                            "worst": {k: worst[k] for k in ("case", "output", "max_abs",
                                                            "bound", "top1_agreement")}}
        except Exception as exc:
            result[mode] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:1500]}
    model.net.to("cpu")
    return result


def time_package(path: Path) -> list[dict]:
    """Forward passes on the GPU: float32, TF32, float16/bfloat16 autocast, channels-last,
    BatchNorm folded (the CPU inference form's module, moved), and torch.compile at batch
    256; CUDA events around each call, after warm-up. Each is compared with float32 eager."""
    import tf2torch
    from tf2torch.packages.inference import inference_form

    model = tf2torch.load(path)
    shape = tuple(model.card.input["shape"])
    eager = model.net.to("cuda")
    folded = inference_form(model.net.cpu(), shape, governed=False).to("cuda")
    eager.to("cuda")
    rows = []
    torch.backends.cudnn.benchmark = True
    for batch in (1, 32, 256):
        x = torch.randn(batch, *shape, device="cuda")
        set_mode("cuda-fp32")
        with torch.no_grad():
            ref = eager(x).float()
        variants = ["fp32", "tf32", "fp32-channels-last", "fp32-bn-folded", "fp16-autocast",
                    "bf16-autocast"] + (["fp32-compiled"] if batch == 256 else [])
        for variant in variants:
            set_mode("cuda-tf32" if variant == "tf32" else "cuda-fp32")
            net, xin, extra = eager, x, {}
            if variant == "fp32-channels-last":
                net, xin = eager.to(memory_format=torch.channels_last), x.contiguous(
                    memory_format=torch.channels_last)
            elif variant == "fp32-bn-folded":
                net = folded
            elif variant == "fp32-compiled":
                begin = time.perf_counter()
                net = torch.compile(eager)
                with torch.inference_mode():
                    net(x)
                torch.cuda.synchronize()
                extra["compile_s"] = round(time.perf_counter() - begin, 1)
            dtype = {"fp16-autocast": torch.float16, "bf16-autocast": torch.bfloat16}.get(variant)
            times = _time_calls(net, xin, dtype, 50 if batch == 1 else 20)
            with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32,
                                                        enabled=bool(dtype)):
                got = net(xin).float()
            rows.append({"batch": batch, "variant": variant,
                         "median_ms": float(np.median(times)),
                         "p10_ms": float(np.percentile(times, 10)),
                         "p90_ms": float(np.percentile(times, 90)),
                         "images_per_s": batch / float(np.median(times)) * 1000,
                         "max_abs_vs_fp32": float((got - ref).abs().max()),
                         "top1_agreement": float((got.argmax(1) == ref.argmax(1)).float().mean()),
                         **extra})
            eager.to(memory_format=torch.contiguous_format)
    model.net.to("cpu")
    return rows


def _time_calls(net: torch.nn.Module, x: torch.Tensor, dtype: Any, iters: int) -> list[float]:
    times = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32,
                                                enabled=dtype is not None):
        for _ in range(10):
            net(x)
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            net(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
    return times


def check_local(package: Path, images: Path, expected: Path) -> dict:
    """A package's net moved to the GPU: `predict --device cuda` (a process of its own),
    `predict_files` and `classify` in this one, `save` from the GPU, `replace_head` there."""
    import subprocess
    import sys
    import tempfile

    import tf2torch
    from tf2torch.packages.predict import collect_images, predict_files

    want = expected_tops(expected)
    cli = subprocess.run([sys.executable, "-c", "import sys; from tf2torch.cli import main; "
                          "sys.exit(main())", "predict", str(package), str(images), "--device",
                          "cuda", "--json", "--top", "1"], capture_output=True, text=True)
    result: dict[str, Any] = {"cli_exit": cli.returncode, "cli_stderr": cli.stderr[-500:]}
    if cli.returncode == 0:
        result["cli"] = agreement(json.loads(cli.stdout), want)
    set_mode("cuda-fp32")
    model = tf2torch.load(package)
    model.net.to("cuda")
    rows = [r.to_dict() for r in predict_files(model, collect_images([images]), top=1,
                                               batch_size=8)]
    result["predict_files"] = agreement(rows, want)
    first = sorted(images.iterdir())[0]
    got = model.classify([first], top=1)[0][0]
    result["classify"] = {"index_same": got.index == want[first.name]["index"],
                          "score_diff": abs(got.probability - want[first.name]["probability"])}
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "saved")
        again = tf2torch.load(Path(tmp) / "saved").net.state_dict()
        result["saved_from_gpu_equal"] = all(
            torch.equal(again[k], v.cpu()) for k, v in model.net.state_dict().items())
    model.replace_head(["a", "b"])
    result["replace_head_device"] = str(model.device)
    return result


def check_ray(package: Path, images: Path, expected: Path) -> list[dict]:
    """Ray Data predict with GPU actors (and CPU actors, for the figure beside them),
    against the rows local predict gave on a CPU."""
    import ray

    import tf2torch
    from tf2torch.errors import Tf2TorchError

    want = expected_tops(expected)
    ray.init(include_dashboard=False)  # predict_dataset uses the Ray this process started
    gpus = ray.cluster_resources().get("GPU", 0)
    runs: list[dict] = [{"ray": ray.__version__, "gpus_ray_sees": gpus}]
    for name, options in (("1 GPU actor", {"num_gpus": 1, "concurrency": 1, "batch_size": 64}),
                          ("2 actors sharing the GPU", {"num_gpus": 0.5, "concurrency": 2,
                                                        "batch_size": 64}),
                          ("2 CPU actors", {"num_gpus": 0, "concurrency": 2}),
                          ("torch-fast on a GPU", {"num_gpus": 1, "backend": "torch-fast"})):
        if options["num_gpus"] and not gpus:  # a GPU actor would wait for ever
            continue
        start = time.perf_counter()
        try:
            done = tf2torch.predict_dataset(package, [images], None, **options)
        except Tf2TorchError as exc:
            runs.append({"run": name, "refused": str(exc)[:600]})
            continue
        except Exception as exc:
            runs.append({"run": name, "error": f"{type(exc).__name__}: {exc}"[:1500]})
            continue
        runs.append({"run": name, "images": done.images, "errors": done.errors,
                     "seconds": round(done.seconds, 2), "wall_s": round(time.perf_counter() - start, 2),
                     **agreement([r.to_dict() for r in done.results], want),
                     "routes": done.package_routes})
    return runs


def top_of(row: dict) -> dict:
    return row["predictions"][0]


def expected_tops(expected: Path) -> dict[str, dict]:
    """File name → the top prediction local predict gave on a CPU (`predict --json`)."""
    return {Path(r["path"]).name: top_of(r) for r in json.loads(expected.read_text())}


def agreement(rows: list[dict], want: dict[str, dict]) -> dict:
    """How many of `rows` (as `predict --json` writes them) have the CPU's top-1, and the
    largest difference of its score."""
    both = [(top_of(r), want[Path(r["path"]).name]) for r in rows]
    return {"top1_same": f"{sum(g['index'] == w['index'] for g, w in both)}/{len(want)}",
            "max_score_diff": max(abs(g["probability"] - w["probability"]) for g, w in both)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kit", type=Path)
    p.add_argument("--package", type=Path, action="append", default=[])
    p.add_argument("--images", type=Path)
    p.add_argument("--expected", type=Path)
    p.add_argument("--out", type=Path, default=Path("."))
    p.add_argument("--steps", default="packages,kit,speed,local,ray",
                   help="which checks, comma-separated (default: all)")
    args = p.parse_args()
    gpu = torch.cuda.get_device_properties(0).name if torch.cuda.is_available() else None
    results: dict[str, Any] = {
        "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
        "gpu": gpu, "tf32_defaults": {"cudnn": torch.backends.cudnn.allow_tf32,
                                             "matmul": torch.backends.cuda.matmul.allow_tf32}}
    print(json.dumps(results), flush=True)
    steps = [("packages", lambda: [check_package(p) for p in args.package]),
             ("kit", lambda: [check_entry(f) for f in sorted(args.kit.iterdir())] if args.kit else []),
             ("speed", lambda: [dict(package=p.name, rows=time_package(p)) for p in args.package]
              if gpu else []),
             ("local", lambda: check_local(args.package[0], args.images, args.expected)
              if args.images and gpu else {}),
             ("ray", lambda: check_ray(args.package[0], args.images, args.expected)
              if args.images else [])]
    for key, step in steps:
        if key not in args.steps.split(","):
            continue
        start = time.perf_counter()
        try:
            results[key] = step()
        except Exception:
            results[key] = {"error": traceback.format_exc()[-3000:]}
        print(f"== {key} ({time.perf_counter() - start:.1f} s)", flush=True)
        (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str))
    summarize(results)
    return 0


def summarize(results: dict) -> None:
    kit = results.get("kit") or []
    if isinstance(kit, list):
        for mode in MODES:
            bad = [e for e in kit if not e[mode]["passed"]]
            print(f"kit, {mode}: {len(kit) - len(bad)}/{len(kit)} match the original")
            for e in bad[:15]:
                print(f"   {e['test']}: {e[mode].get('error') or e[mode]}")
    for key in ("packages", "local", "ray"):
        print(key, json.dumps(results.get(key), default=str)[:3000])
    for package in results.get("speed") or []:
        if not isinstance(package, dict) or "rows" not in package:
            print("speed", package)
            continue
        print(f"speed, {package['package']}: batch variant median p10 p90 (ms) img/s diff top1")
        for r in package["rows"]:
            print(f"  {r['batch']:>3} {r['variant']:<18} {r['median_ms']:7.2f} {r['p10_ms']:7.2f} "
                  f"{r['p90_ms']:7.2f} {r['images_per_s']:8.0f} {r['max_abs_vs_fp32']:.1e} "
                  f"{r['top1_agreement']:.3f} {r.get('compile_s', '')}")


if __name__ == "__main__":
    raise SystemExit(main())
