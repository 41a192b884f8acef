"""The detector's schedule: four settings that files and cameras both have, defined once here.

``detect_every``, ``lookahead``, ``skip_grow`` and ``queue_size`` exist twice in what users
write: ``pipeline.*`` applies to files (:class:`streamdeid.config.PipelineConfig`) and ``live.*``
to cameras (:class:`streamdeid.live.policy.LiveConfig`);
:func:`streamdeid.build.schedule_for` picks one of them per run. The two sections want different
defaults (a file can wait for its detector, a camera cannot), but a setting must mean the same
and be checked the same in both. So each setting is one ``Annotated`` type below, holding its
type, bounds and description, and each section only gives it its default.

Annotated types rather than a shared base model: pydantic does not merge a redeclared field
with its parent's, so a subclass that changes a default would have to repeat the bounds, and
inherited fields would move to the front of ``live``, changing the order in which its errors
are listed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

DetectEvery = Annotated[
    int,
    Field(
        ge=1,
        le=100,
        description="Run the detector on every N-th frame (pipeline.detect_every for files, "
        "live.detect_every for cameras). Frames in between are masked with their tracks and, "
        "with lookahead, with the faces of the runs before and after them.",
    ),
]
Lookahead = Annotated[
    bool,
    Field(
        description="Hold frames the detector skipped until its next run and mask them with that "
        "run's faces too, so a face that appears between two runs is masked from its first "
        "frame. Off: the tracker alone carries masks between runs (new faces then show until "
        "the next run).",
    ),
]
SkipGrow = Annotated[
    float,
    Field(
        ge=1.0,
        le=4.0,
        description="With lookahead, on a frame the detector skipped, the faces of the runs "
        "before and after it are grown by this factor per frame between the run and the frame "
        "(at most 4x): faces move between runs. Every frame between two runs gets the margin "
        "of the one farthest from them.",
    ),
]
QueueSize = Annotated[
    int,
    Field(
        ge=1,
        description="Frames buffered between two stages (pipeline.queue_size for files, "
        "live.queue_size for cameras).",
    ),
]
# A file's queues only cost memory; a camera's cost latency (each queued frame waits for the
# slowest stage), so a camera may queue far fewer.
FileQueueSize = Annotated[QueueSize, Field(le=1024)]
CameraQueueSize = Annotated[QueueSize, Field(le=64)]
