"""Load test of `tf2torch serve`'s try-it: parallel clients posting a photo, on loopback only.

    .venv/bin/python benchmarks/web_load.py [--model mobilenet_v2_1.4_224] [--clients 8]
        [--requests 50] [--image photo.jpg] [--concurrency 1]

Starts `tf2torch serve MODEL` on a free 127.0.0.1 port over $TF2TORCH_HOME (run `make demo`
first for the default model), warms it up, then has every client post the image to the
model's try-it form (multipart, as the browser does) `--requests` times over one keep-alive
connection. Every answer must be a 200 page with the top-5 table. The server's resident
memory (VmRSS) is sampled every 0.2 s. For comparison, before the server starts, the same
image is classified `--requests` times in a fresh process by `tf2torch.load(MODEL,
inference=True).classify` (what `predict --backend torch-fast` runs per image, without HTTP).
Both run with `OMP_WAIT_POLICY=--omp-wait-policy` (PASSIVE, as `serve` sets it; ACTIVE is
libgomp's default).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(image: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{image.name}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    body += image.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(model: str, image: Path, count: int) -> list[float]:
    """Milliseconds per `classify` of one image with the inference form, `count` times
    (run in a fresh process, so the OpenMP wait policy of its environment applies)."""
    import tf2torch

    loaded = tf2torch.load(model, inference=True)
    loaded.classify(image)  # warm-up, as the server's first load does
    times = []
    for _ in range(count):
        start = time.perf_counter()
        loaded.classify(image, top=5)
        times.append(1000 * (time.perf_counter() - start))
    return times


def start_server(model: str, port: int, concurrency: int, env: dict) -> subprocess.Popen:
    command = [str(REPO / ".venv" / "bin" / "tf2torch"), "serve", model, "--port", str(port),
               "--concurrency", str(concurrency)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start: " + (server.stderr.read() if server.stderr else ""))


def client(port: int, path: str, body: bytes, content_type: str, count: int,
           latencies: list[float], failures: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for _ in range(count):
        start = time.perf_counter()
        try:
            connection.request("POST", path, body, {"Content-Type": content_type})
            response = connection.getresponse()
            page = response.read()
            ok = response.status == 200 and b'<td class="label">' in page
        except OSError as exc:
            ok, page = False, str(exc).encode()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        latencies.append(1000 * (time.perf_counter() - start))
        if not ok:
            failures.append(page[:200].decode("utf-8", "replace"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="mobilenet_v2_1.4_224")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    parser.add_argument("--image", type=Path, help="default: the demo's astronaut.jpg")
    parser.add_argument("--concurrency", type=int, default=2, help="the server's --concurrency")
    parser.add_argument("--omp-wait-policy", choices=("PASSIVE", "ACTIVE"), default="PASSIVE")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--in-process-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from tf2torch.packages import repository

    image = args.image or repository.home() / "demo" / "astronaut.jpg"
    if not image.is_file():
        raise SystemExit(f"{image}: no such image (run `make demo`, or give --image)")
    if args.in_process_only:
        print(json.dumps(in_process(args.model, image, args.requests)))
        return
    env = {**os.environ, "OMP_WAIT_POLICY": args.omp_wait_policy}
    direct = json.loads(subprocess.run(
        [sys.executable, __file__, "--in-process-only", "--model", args.model, "--image",
         str(image), "--requests", str(args.requests)],
        env=env, check=True, capture_output=True, text=True).stdout.splitlines()[-1])

    port = free_port()
    server = start_server(args.model, port, args.concurrency, env)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), rss_mib(server.pid)))
            stop.wait(0.2)

    try:
        body, content_type = multipart(image)
        path = f"/models/{args.model}/try"
        # warm-up at full parallelism: the model loads once, every worker thread and its
        # allocator arena exist, the result store is in use; growth after this would be a leak
        warm = [threading.Thread(target=client, args=(port, path, body, content_type, 3, [], []))
                for _ in range(args.clients)]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
        rss_warm = rss_mib(server.pid)
        threading.Thread(target=sample, daemon=True).start()
        latencies: list[float] = []
        failures: list[str] = []
        threads = [threading.Thread(target=client, args=(port, path, body, content_type,
                                                         args.requests, latencies, failures))
                   for _ in range(args.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        stop.set()
        rss_end = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(20)

    quarters = [samples[min(len(samples) - 1, int(q * len(samples)))][1] for q in (0, .25, .5, .75)]
    result = {
        "model": args.model, "clients": args.clients, "requests": len(latencies),
        "failed": len(failures), "wall_s": wall, "throughput_rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies), "p95_ms": percentile(latencies, 0.95),
        "max_ms": max(latencies),
        "rss_mib": {"after_warmup": rss_warm, "quarters": quarters, "end": rss_end,
                    "peak": max(r for _, r in samples)},
        "in_process_classify_ms": {"p50": statistics.median(direct),
                                   "p95": percentile(direct, 0.95)},
        "load_average": os.getloadavg(), "server_concurrency": args.concurrency,
        "omp_wait_policy": args.omp_wait_policy,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(f"OMP_WAIT_POLICY={args.omp_wait_policy}, server --concurrency {args.concurrency}")
    print(f"{result['requests']} try-it requests from {args.clients} clients in {wall:.1f} s "
          f"({result['throughput_rps']:.1f}/s), {len(failures)} failed")
    print(f"latency: p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, "
          f"max {result['max_ms']:.0f} ms")
    print(f"in-process classify (no HTTP, one at a time): p50 {result['in_process_classify_ms']['p50']:.1f}"
          f" ms, p95 {result['in_process_classify_ms']['p95']:.1f} ms")
    print(f"server RSS (MiB): {rss_warm:.0f} after warm-up; at 0/25/50/75% of the run "
          f"{' / '.join(f'{q:.0f}' for q in quarters)}; {rss_end:.0f} at the end; peak "
          f"{result['rss_mib']['peak']:.0f}")
    print(f"load average during the run: {' '.join(f'{x:.1f}' for x in result['load_average'])}")
    if failures:
        print("first failure:", failures[0])
        raise SystemExit(1)


if __name__ == "__main__":
    main()
