"""Bounds of detector settings, read by both the config and the detectors' constructors.

A value the config accepts must not be refused by the detector it builds (a config error found
only when the model loads), and a detector built from Python must not accept what the config
would refuse. Each bound is therefore written once, here, in the core layer that the config and
the detectors may both import.
"""

from __future__ import annotations

# Minimum score a detector may keep: below it, every background texture becomes a "face".
MIN_CONFIDENCE = 0.01
# Input scales of the fully convolutional backends, relative to the source size.
MIN_SCALE = 0.1
MAX_SCALE = 8.0
# Network pixels of mirror padding around a window.
MAX_EDGE_PAD = 256
# Rows a network input may be raised to (min_input_height) or a cheap pass may use
# (focus.coarse_height): 8K video.
MAX_INPUT_HEIGHT = 4320
# Tile edges in source pixels: the backends' tile grid, and the focus windows.
MIN_TILE_SIZE = 64
MIN_FOCUS_TILE_SIZE = 32
MAX_TILE_SIZE = 4096
# Overlap of neighbouring tiles; at 0.9 a 256-px tile grid would step 25 px.
MAX_TILE_OVERLAP = 0.9
# Grey-level change that counts as motion (8-bit picture).
MIN_MOTION_THRESHOLD = 1
MAX_MOTION_THRESHOLD = 255
# Inference threads of one detector.
MAX_THREADS = 64
