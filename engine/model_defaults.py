"""The official GEN3C numbers, in one place.

``Gen3CConfig``'s defaults (the ``gen3c.json`` of converted official weights) and every default argument
of the engine, the CLI and the studio read these. What a run actually uses comes from the weights
folder's ``gen3c.json`` (the tiny test models differ); these are the official values.
"""
from __future__ import annotations

MODEL_HEIGHT = 704
MODEL_WIDTH = 1280
MODEL_SIZE = (MODEL_HEIGHT, MODEL_WIDTH)
# Frames per generated chunk; consecutive chunks share one frame, so long videos have 120 N + 1 frames.
CHUNK_FRAMES = 121
FPS = 24
# Cache buffers the DiT is conditioned on (official frame_buffer_max).
FRAME_BUFFER_MAX = 2
# The official depth-edge filter (--filter_points_threshold; the foreground boundary mask uses the same
# value, fixed): (max - min) / mean depth over a 5 x 5 window below this keeps a point.
FILTER_THRESHOLD = 0.05
# EDM sigma_data and the condition-augmentation sigma of the official sampler.
SIGMA_DATA = 0.5
AUGMENT_SIGMA = 0.001
