"""Load test of the HTTP endpoint: many requests, a few at a time, mixed photo sizes and methods.

    python benchmarks/app_load.py [--requests 200] [--concurrency 8] [--methods telea,navier-stokes,default]
    python benchmarks/app_load.py --large 16   # memory: 16 simultaneous uploads of a 39-megapixel photo

Starts the app in this process on a free local port, sends ``--requests`` multipart requests from
``--concurrency`` client threads, and prints a table: errors, p50/p95/max latency, throughput and
the process's resident memory before and after (after a warm-up, so lazy model loads are not
counted as growth). ``tests/test_app.py`` runs the same driver in a short setting.
"""

from __future__ import annotations

import argparse
import io
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save, table  # noqa: E402

SIZES = ((96, 128), (192, 256), (384, 512), (600, 800))


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process in MB (Linux); ``VmHWM`` for its peak so far."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Start ``VmHWM`` again from the current resident memory (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def make_uploads(sizes=SIZES, seed: int = 0) -> list[tuple[bytes, bytes, np.ndarray, np.ndarray]]:
    """One (image PNG, mask PNG, image, hole) per size: a smooth photo-like gradient with noise and a box hole."""
    rng = np.random.default_rng(seed)
    uploads = []
    for h, w in sizes:
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        base = np.stack([x, y, (x + y) / 2], axis=2) * 200 + rng.normal(0, 12, (h, w, 3))
        image = base.clip(0, 255).astype(np.uint8)
        hole = np.zeros((h, w), bool)
        hole[h // 4 : h // 2, w // 3 : w // 3 + w // 4] = True
        uploads.append((_png(image), _png(hole.astype(np.uint8) * 255), image, hole))
    return uploads


def run_load(url: str, requests: int, concurrency: int, methods: list[str], uploads, verify: bool = True) -> dict:
    """Send the requests; every response is checked (status 200, a PNG, and with ``verify`` known
    pixels untouched: that decodes the result in this process)."""
    import httpx

    def one(i: int) -> tuple[float, str | None]:
        image_png, mask_png, image, hole = uploads[i % len(uploads)]
        method = methods[(i // len(uploads)) % len(methods)]
        start = time.perf_counter()
        try:
            r = httpx.post(
                f"{url}api/inpaint", files={"image": image_png, "mask": mask_png}, data={"model": method}, timeout=300
            )
        except httpx.HTTPError as exc:
            return time.perf_counter() - start, f"{method}: {exc!r}"
        seconds = time.perf_counter() - start
        if r.status_code != 200:
            return seconds, f"{method}: HTTP {r.status_code} {r.text[:200]}"
        if not verify:
            return seconds, None if r.content.startswith(b"\x89PNG") else f"{method}: not a PNG"
        out = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
        if out.shape != image.shape or not np.array_equal(out[~hole], image[~hole]):
            return seconds, f"{method}: known pixels changed"
        return seconds, None

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - start
    latencies = sorted(s for s, _ in results)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "methods": methods,
        "errors": [e for _, e in results if e],
        "p50_s": statistics.median(latencies),
        "p95_s": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
        "max_s": latencies[-1],
        "requests_per_s": requests / wall,
    }


def serve_and_load(requests: int, concurrency: int, methods: list[str], sizes=SIZES, app_concurrency: int = 2):
    """Launch the app here, warm every method up, run the load, and report memory around it."""
    from inpaintkit.app import launch

    demo, url = launch(port=free_port(), block=False, concurrency=app_concurrency)
    try:
        uploads = make_uploads(sizes)
        run_load(url, len(methods) * len(uploads), 1, methods, uploads)  # warm-up: loads every model once
        before = rss_mb()
        stats = run_load(url, requests, concurrency, methods, uploads)
        stats.update(rss_before_mb=before, rss_after_mb=rss_mb(), sizes=[list(s) for s in sizes])
        return stats
    finally:
        demo.close()


def large_uploads(uploads: int, app_concurrency: int = 2, size: tuple[int, int] = (5400, 7200)) -> dict:
    """``uploads`` simultaneous requests with a ``size`` photo (39 megapixels by default): the peak
    resident memory above the idle level of this process, which serves the app (the client threads
    only hold the encoded bytes), and which ``--concurrency`` should bound."""
    from inpaintkit.app import launch

    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    image = (np.stack([x, y, (x + y) / 2], axis=2) * 255).astype(np.uint8)  # compresses to a few MB
    hole = np.zeros((h, w), bool)
    hole[h // 2 : h // 2 + 64, w // 2 : w // 2 + 64] = True
    upload = [(_png(image), _png(hole.astype(np.uint8) * 255), image, hole)]
    demo, url = launch(port=free_port(), block=False, concurrency=app_concurrency, max_upload_mb=100)
    try:
        run_load(url, 1, 1, ["telea"], upload)  # warm-up
        idle = rss_mb()
        reset_peak()
        stats = run_load(url, uploads, uploads, ["telea"], upload, verify=False)  # the client decodes nothing
        stats.update(idle_mb=idle, peak_mb=rss_mb("VmHWM"), photo=f"{w}x{h}", app_concurrency=app_concurrency)
        return stats
    finally:
        demo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--methods", default="telea,navier-stokes,mean-fill")
    parser.add_argument("--large", type=int, default=0, help="instead: this many 39-megapixel uploads at once")
    args = parser.parse_args()
    if args.large:
        rows = []
        for app_concurrency in (1, 2, 4):
            stats = large_uploads(args.large, app_concurrency)
            rows.append([
                str(app_concurrency), str(args.large), stats["photo"], str(len(stats["errors"])),
                f"{stats['max_s']:.1f}", f"{stats['idle_mb']:.0f}", f"{stats['peak_mb']:.0f}",
                f"{stats['peak_mb'] - stats['idle_mb']:.0f}",
            ])  # fmt: skip
        header = ["--concurrency", "uploads at once", "photo", "errors", "max s", "idle MB", "peak MB", "peak - idle"]
        print(f"{machine()}\n")
        print(table(header, rows))
        return
    stats = serve_and_load(args.requests, args.concurrency, args.methods.split(","))
    header = ["requests", "at a time", "errors", "p50 s", "p95 s", "max s", "req/s", "RSS before MB", "RSS after MB"]
    row = [
        str(stats["requests"]), str(stats["concurrency"]), str(len(stats["errors"])), f"{stats['p50_s']:.3f}",
        f"{stats['p95_s']:.3f}", f"{stats['max_s']:.3f}", f"{stats['requests_per_s']:.1f}",
        f"{stats['rss_before_mb']:.0f}", f"{stats['rss_after_mb']:.0f}",
    ]  # fmt: skip
    print(f"{machine()}\nmethods: {args.methods}; sizes: {', '.join(f'{w}x{h}' for h, w in SIZES)}\n")
    print(table(header, [row]))
    for error in stats["errors"][:5]:
        print("error:", error)
    print(f"\nwritten: {save('app_load', stats)}")


if __name__ == "__main__":
    main()
