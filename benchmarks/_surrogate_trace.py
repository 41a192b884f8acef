"""What the surrogate filter did with each face, for ``surrogate_reid_seeds.py --explain``.

Faces found again and faces re-identified are totals; to change either one needs to know where
the others went. :class:`Trace` records, per frame, whether the detector ran and what the
filter decided for each tracked face (drawn, undone as too close, no mesh fit, too few
identities). :func:`explain` then puts every original face (dlib) into one bucket: found again,
or lost with the reason seen at its place, split by frames the detector ran on and frames
between runs; and for every re-identified face, whether a surrogate was drawn there (a chance
match of the drawn face) or not (an original face showing: a leak).
"""

from __future__ import annotations

import collections
from typing import Any, NamedTuple

import numpy as np
from _common import iou_matrix

MATCH_IOU = 0.3
OUTCOME = {  # SurrogateCounts field that a plan-less decision increments -> bucket name
    "too_few_identities": "too few identities",
    "no_fit": "no mesh fit",
    "no_track": "no track",
    "covered": "inside other faces",
}


class Seen(NamedTuple):
    """One tracked face of a frame and what the filter did with it."""

    box: np.ndarray  # the tracked face box, float64
    what: str  # "drawn", "undone as too close", or an OUTCOME bucket
    track_id: int | None


class Trace:
    """Patches :class:`~streamdeid.obscure.surrogate.SurrogateFilter` while in a ``with``;
    ``filter`` is the (last) filter instance that ran, for its gallery."""

    def __init__(self) -> None:
        self.ran: dict[int, bool] = {}
        self.faces: dict[int, list[Seen]] = collections.defaultdict(list)
        self.filter: Any = None
        self._pending: dict[int, tuple[int, int]] = {}  # id(plan) -> (frame, index in faces)

    def __enter__(self) -> Trace:
        from streamdeid.obscure import surrogate

        cls = surrogate.SurrogateFilter
        self._saved = (cls.next_frame, cls._plan, cls.__dict__["_blend_checked"])
        next_frame, plan, blend = cls.next_frame, cls._plan, cls._blend_checked
        trace = self

        def traced_next_frame(self: Any, detector_ran: bool) -> None:
            next_frame(self, detector_ran)
            trace.ran[self._frame - 1] = detector_ran

        def traced_plan(self: Any, image: np.ndarray, box: Any, region: Any) -> Any:
            trace.filter = self
            before = dict(vars(self.counts))
            p = plan(self, image, box, region)
            frame = self._frame - 1
            if region.face is not None:
                if p is None:
                    after = vars(self.counts)
                    what = next((OUTCOME[k] for k in OUTCOME if after[k] != before[k]), "other")
                else:
                    what = "drawn"
                    trace._pending[id(p)] = (frame, len(trace.faces[frame]))
                box_ = np.asarray(region.face, np.float64)
                trace.faces[frame].append(Seen(box_, what, region.track_id))
            return p

        def traced_blend(image: np.ndarray, p: Any) -> bool:
            ok = blend(image, p)
            where = trace._pending.pop(id(p), None)
            if where is not None and not ok:
                frame, i = where
                trace.faces[frame][i] = trace.faces[frame][i]._replace(what="undone as too close")
            return ok

        cls.next_frame = traced_next_frame  # type: ignore[method-assign]
        cls._plan = traced_plan  # type: ignore[method-assign]
        cls._blend_checked = staticmethod(traced_blend)  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from streamdeid.obscure import surrogate

        cls = surrogate.SurrogateFilter
        cls.next_frame, cls._plan, cls._blend_checked = self._saved  # type: ignore[method-assign]

    def at(self, frame: int, box: np.ndarray) -> str:
        """What the filter did at ``box``: its decision for the tracked face overlapping it
        most, or that no tracked face was there or near enough."""
        faces = self.faces.get(frame, [])
        overlap = iou_matrix(box[None], np.array([f.box for f in faces]))[0] if faces else [0.0]
        best = int(np.argmax(overlap))
        if overlap[best] < 0.1:
            return "no tracked face there"
        if overlap[best] < MATCH_IOU:
            return f"tracked face off (IoU < {MATCH_IOU})"
        return faces[best].what


def bucket(trace: Trace, frame: int, box: np.ndarray, found: bool) -> str:
    """Where one original face went, prefixed by the kind of frame."""
    kind = "detector frame" if trace.ran.get(frame, False) else "between runs"
    return f"{kind}: found again" if found else f"{kind}: lost, {trace.at(frame, box)}"


def explain(trace: Trace, originals: dict[int, np.ndarray], found: dict[int, np.ndarray]) -> dict:
    """Counts per bucket; ``originals`` and ``found`` are dlib boxes per sampled frame."""
    counts: collections.Counter[str] = collections.Counter()
    for frame, boxes in originals.items():
        out = found.get(frame, np.zeros((0, 4))).astype(np.float64)
        for box in boxes.astype(np.float64):
            hit = len(out) > 0 and iou_matrix(box[None], out)[0].max() >= MATCH_IOU
            counts[bucket(trace, frame, box, bool(hit))] += 1
    return dict(sorted(counts.items()))
