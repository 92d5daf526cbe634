"""Benchmarks behind `python -m engine bench warp|dit|vae|pipeline`; each prints one JSON object.

`engine.bench.timing` holds what they share (device sync, warm-up, repeats, statistics, the environment
block); `warp`, `models` (dit and vae) and `pipeline` each have a `main(argv) -> int`. The warp and
pipeline benchmarks run on a bundled sample scene (`engine.samples`), so no files are needed.
"""
