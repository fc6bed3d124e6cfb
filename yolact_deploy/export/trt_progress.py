"""TensorRT build progress: the builder's phases, nested, with elapsed time (one live line on a
terminal), and the ``trt.IProgressMonitor`` that feeds it."""
from __future__ import annotations

import sys
import time
from typing import Dict, List, Optional

class BuildProgress:
    """Prints TensorRT's build phases (nested) with elapsed time; on a terminal, one live line.

    ``make_monitor(trt)`` wraps it as a ``trt.IProgressMonitor`` (10.0+). ``step_complete`` returns
    False after Ctrl-C, which cancels the build cleanly.
    """

    def __init__(self, stream=None, min_interval: float = 0.5):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, 'isatty') and self.stream.isatty()
        self.phases: Dict[str, list] = {}     # name -> [parent, steps, done, start]
        self.order: List[str] = []
        self.start = time.time()
        self.last = 0.0
        self.min_interval = min_interval
        self.cancelled = False

    def _line(self) -> str:
        parts = []
        for name in self.order:
            _, steps, done, _ = self.phases[name]
            parts.append(f'{name} {done}/{steps}' if steps else name)
        return f'[build {time.time() - self.start:6.0f}s] ' + ' > '.join(parts)

    def _emit(self, text: str, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last < self.min_interval:
            return
        self.last = now
        if self.tty:
            self.stream.write('\r\x1b[K' + text[:200])
        else:
            self.stream.write(text + '\n')
        self.stream.flush()

    def phase_start(self, name: str, parent: Optional[str], steps: int) -> None:
        self.phases[name] = [parent, int(steps), 0, time.time()]
        self.order.append(name)
        if self.tty or parent is None:       # a log file gets top-level phases only
            self._emit(self._line(), force=parent is None)

    def step_complete(self, name: str, step: int) -> bool:
        if name in self.phases:
            self.phases[name][2] = int(step) + 1
            if self.tty:
                self._emit(self._line())
        return not self.cancelled

    def phase_finish(self, name: str) -> None:
        entry = self.phases.pop(name, None)
        if name in self.order:
            self.order.remove(name)
        if entry and entry[0] is None:
            self._emit(f'[build {time.time() - self.start:6.0f}s] {name}: done in '
                       f'{time.time() - entry[3]:.1f}s', force=True)
            if self.tty:
                self.stream.write('\n')

    def close(self) -> None:
        if self.tty:
            self.stream.write('\n')
            self.stream.flush()


def make_monitor(trt, progress: BuildProgress):
    """A ``trt.IProgressMonitor`` forwarding to ``progress``."""
    class _Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            progress.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):
            try:
                return progress.step_complete(phase_name, step)
            except KeyboardInterrupt:
                progress.cancelled = True
                return False

        def phase_finish(self, phase_name):
            progress.phase_finish(phase_name)

    return _Monitor()
