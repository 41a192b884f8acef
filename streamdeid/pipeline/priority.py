"""Let the stage that paces a file run when it wants a core: the others yield to it.

A file pipeline on two cores runs about eight threads that want CPU (capture and its decoder
threads, detect, track, obscure, encode and x264's threads). The detector paces the run: on
small video it is busy for nearly the whole run while the other stages have frames queued and
slack to spare. Under the scheduler's fair share, the detector still waits for a core whenever
three threads are runnable at once. On the 640×360 dev clip it was runnable for 2.18 s of a 2.25 s
run but used only 1.63 s of CPU. Lowering the priority of every *other* pipeline thread (nice
+10, inherited by the codec threads they start) gave the detector the core when it asked. The
same run then took 8-10% less time, for the same CPU. At 720p and 1080p no single thread paces
the run, and it cost 2-4% there: x264 and the decoder lost their share while the detector ran.
With +10 the detector still waited 0.16-0.19 s for a core in a 1.9 s run (the scheduler's
weights are 1024 against 110); with +19 (weight 15) 0.07-0.10 s, so 19 is the default.
So it is used only where the detector enlarges the video (``build.background_nice``): its full
pass then looks at more pixels than the codecs handle, and it is the slowest thread.

Priority only decides who runs when more threads want the CPU than there are cores; a stage
that is the bottleneck instead (the surrogate filter, an encoder on a slow preset) still gets
every cycle the pacing stage leaves. Only the pipeline's own threads are changed, never the
caller's, and only where the OS has per-thread nice values (Linux); elsewhere it does nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

MAX_NICE = 19


def lower_this_thread(by: int) -> None:
    """Raise the calling OS thread's nice value by ``by`` (capped at 19); 0 = leave it.

    Raising is always allowed, lowering back is not (without privileges), so this is only called
    on threads the pipeline starts and that end with it.
    """
    if by <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    try:
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICE, nice + by))
    except OSError as e:  # a sandbox may forbid it: the pipeline runs the same, only slower
        log.debug("cannot lower the priority of thread %d: %s", tid, e)
