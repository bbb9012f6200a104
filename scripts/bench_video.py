"""Speed and memory of the video modality. Prints figures; asserts nothing (timings belong here, not in tests).

    python scripts/bench_video.py                 # everything: 720p fingerprint speed, 1,000-hour index
    python scripts/bench_video.py --hours 100     # a smaller library
    python scripts/bench_video.py --skip-index    # fingerprint speed only

1. Fingerprinting vs decoding: a synthetic 720p H.264 video (x264 veryfast, CRF 23, B-frames as x264 makes them)
   is decoded in full with PyAV (defaults, then threaded), then fingerprinted; best of 3 runs each. Sizes: the
   extracted fingerprint (every query crop window) and the form a library stores (one hash a frame).
2. Search at scale: a library of `--hours` hours of random frame hashes (1-hour items, 2 frames/s) plus one real
   synthetic video; the query is a 60 s clip of the real one, re-encoded at a low bitrate, cropped and mirrored.
   Prints build time, index memory (its own estimate and what tracemalloc saw allocated), search latency.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.synth.video import Crop, HFlip, Reencode, Trim, iter_frames, make_video, transform_video, write_frames
from engine.video import VideoFingerprint, VideoModality
from engine.video.decode import SAMPLE_FPS


def best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def upscaled(seed: int, seconds: float, size: tuple[int, int], fps: float) -> Iterator[np.ndarray]:
    """Synthetic frames drawn at quarter size and scaled up by FFmpeg: same look, 16x cheaper to draw."""
    small = (size[0] // 4, size[1] // 4)
    for rgb in iter_frames(seed, seconds, small, fps):
        frame = av.VideoFrame.from_ndarray(rgb, "rgb24")
        yield frame.reformat(width=size[0], height=size[1], interpolation="BICUBIC").to_ndarray()


def decode_all(path: Path, threaded: bool) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threaded:
            stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def bench_fingerprint(tmp: Path, seconds: float) -> None:
    path = tmp / "bench720.mp4"
    print(f"[fingerprint] writing a {seconds:.0f} s 1280x720 25 fps H.264 video...", flush=True)
    write_frames(upscaled(3, seconds, (1280, 720), 25), path, 25, (1280, 720),
                 options={"preset": "veryfast", "crf": "23"})  # fmt: skip
    modality = VideoModality()
    frames = decode_all(path, threaded=False)
    plain = best_of(3, lambda: decode_all(path, threaded=False))
    threaded = best_of(3, lambda: decode_all(path, threaded=True))
    fingerprint = best_of(3, lambda: modality.extract(path))
    fp = modality.extract(path)
    assert fp is not None
    print(f"[fingerprint] {frames} frames, {path.stat().st_size / 1e6:.1f} MB, {len(fp)} sampled frames kept")
    print(f"[fingerprint] decode all frames, PyAV defaults : {plain:6.3f} s ({frames / plain:6.0f} fps)")
    print(f"[fingerprint] decode all frames, threaded      : {threaded:6.3f} s ({frames / threaded:6.0f} fps)")
    speed = seconds / fingerprint
    print(f"[fingerprint] extract fingerprint              : {fingerprint:6.3f} s ({speed:6.1f}x realtime)")
    print(f"[fingerprint] ratio fingerprint / decode-all   : {fingerprint / plain:.2f} (defaults), "
          f"{fingerprint / threaded:.2f} (threaded)")  # fmt: skip
    print(f"[fingerprint] fingerprint size, as extracted   : {len(fp.to_bytes()) / seconds:.0f} bytes/s of video "
          f"({fp.hashes.shape[1]} crop windows a frame: what a query searches with)")  # fmt: skip
    stored = len(fp.reference_only().to_bytes()) / seconds
    print(f"[fingerprint] fingerprint size, as stored      : {stored:.0f} bytes/s of video (one hash a frame)")


def random_items(hours: float, item_hours: float, seed: int) -> Iterator[tuple[int, VideoFingerprint]]:
    rng = np.random.default_rng(seed)
    per_item = int(item_hours * 3600 * SAMPLE_FPS)
    times = (np.arange(per_item) / SAMPLE_FPS).astype(np.float32)
    for item in range(int(np.ceil(hours / item_hours))):
        codes = rng.integers(0, np.iinfo(np.uint64).max, per_item, dtype=np.uint64, endpoint=True)
        yield 1_000_000 + item, VideoFingerprint(times, codes[:, None], item_hours * 3600)


def bench_index(tmp: Path, hours: float) -> None:
    modality = VideoModality()
    print("[index] making the real item (90 s) and a 60 s query of it (re-encoded 150 kb/s, cropped 10%, mirrored)",
          flush=True)  # fmt: skip
    real = make_video(tmp / "real.mp4", seed=11, seconds=90)
    query_path = transform_video(real, tmp / "query.mp4", [Trim(20, 60), Reencode(150_000), Crop(0.1, 0.1), HFlip()])
    unrelated_path = make_video(tmp / "unrelated.mp4", seed=12, seconds=60)
    real_fp, query, unrelated = (modality.extract(p) for p in (real, query_path, unrelated_path))
    assert real_fp is not None and query is not None and unrelated is not None

    index = modality.new_index()
    tracemalloc.start()  # NumPy reports its buffers to tracemalloc: this counts what the index really holds
    start = time.perf_counter()
    index.add_many(random_items(hours, 1.0, seed=5))
    index.add(7, real_fp)
    index.flush()
    build = time.perf_counter() - start
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frames = int(hours * 3600 * SAMPLE_FPS) + len(real_fp)
    print(f"[index] {hours:.0f} h library: {len(index)} items, {frames / 1e6:.2f} M frames, built in {build:.1f} s")
    print(f"[index] memory: {index.memory_bytes() / 2**20:.0f} MiB (index estimate), {held / 2**20:.0f} MiB "
          f"allocated and held (peak while building {peak / 2**20:.0f} MiB)")  # fmt: skip

    first = time.perf_counter()
    result = index.search(query, max_items=10)
    first = time.perf_counter() - first
    latency = [best_of(1, lambda: index.search(query, max_items=10)) for _ in range(5)]
    print(f"[index] search, 60 s query: first {first * 1000:.0f} ms, then median {np.median(latency) * 1000:.0f} ms "
          f"(min {min(latency) * 1000:.0f}, max {max(latency) * 1000:.0f})")  # fmt: skip
    for match in result:
        segs = ", ".join(
            f"in {s.input_start:.1f}-{s.input_end:.1f} s = ref {s.ref_start:.1f}-{s.ref_end:.1f} s @ {s.similarity:.2f}"
            for s in match.segments
        )
        print(f"[index]   item {match.item_id}: similarity {match.similarity:.2f}: {segs}")
    print("[index]   (expected: item 7, input 0-60 s = ref 20-80 s)")
    noise = index.search(unrelated, max_items=10)
    unrelated_ms = best_of(3, lambda: index.search(unrelated, max_items=10)) * 1000
    print(f"[index] unrelated 60 s query: {len(noise)} matches (expected 0), {unrelated_ms:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=1000.0, help="library size for the search benchmark")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the 720p video to fingerprint")
    parser.add_argument("--skip-fingerprint", action="store_true")
    parser.add_argument("--skip-index", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_video_") as tmp:
        if not args.skip_fingerprint:
            bench_fingerprint(Path(tmp), args.seconds)
        if not args.skip_index:
            bench_index(Path(tmp), args.hours)


if __name__ == "__main__":
    main()
