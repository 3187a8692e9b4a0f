"""Local CPU workers as plain processes (`--workers N` on a CPU): this process and spawned workers take batches from
one queue; frames byte-identical to the in-process render, a killed worker loses no frame, a render that ends
before a worker is ready does not wait for it, and a failed check leaves no process behind."""

import multiprocessing
import os
import signal
import time

import pytest

from bendlab.mapping import Mapping
from bendlab.ui.cli import main
from bendlab.video import ProcessSource, frames_dir, render_frames
from conftest import same_frames, spec_for, wait_until, write_clip

BATCH = 2  # 6 batches of the 12 frames: work for both processes


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.wav")


@pytest.fixture(scope="module")
def reference(pipe, clip, tmp_path_factory):
    """The in-process render (1 torch thread, as the workers)."""
    return render_frames(spec_for(clip, batch=BATCH), tmp_path_factory.mktemp("ref") / "v.mp4", pipe=pipe,
                         progress=False)


class PatientDriver(ProcessSource):
    """After its first batch this process waits until a worker is ready, so the worker renders some frames
    whatever the machine's speed (a worker's start is one import and one model load)."""

    def _render_here(self, idx):
        if self.local_frames:
            wait_until(lambda: self.started is not None, 300, "a worker to be ready")
        return super()._render_here(idx)


def no_children() -> bool:
    return not [p for p in multiprocessing.active_children() if p.name.startswith("bendlab-worker")]


def test_two_local_workers_render_the_frames_of_one_process(reference, clip, tmp_path):
    source = PatientDriver(2)
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False)
    assert same_frames(folder, reference)
    assert 0 < source.local_frames < 12  # both took batches
    assert no_children()


def test_a_killed_worker_loses_no_frame(reference, clip, tmp_path):
    source = PatientDriver(2)
    killed = []

    def kill_once(i):
        busy = [w for w in source.pool if w.idx is not None]
        if not killed and busy:
            killed.append(busy[0].idx)
            os.kill(busy[0].proc.pid, signal.SIGKILL)
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False,
                           on_frame=kill_once)
    assert same_frames(folder, reference)
    assert no_children()
    if killed:  # the worker may finish its last batch before the kill lands: then nothing was lost either
        assert source.failures <= 1


def test_a_render_that_ends_before_a_worker_is_ready_does_not_wait_for_it(reference, clip, tmp_path):
    """A short song: this process renders it all while the worker loads; the worker is stopped, not awaited."""
    source = ProcessSource(2)
    t0 = time.perf_counter()
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False)
    took = time.perf_counter() - t0
    assert same_frames(folder, reference)
    if source.started is None:  # on a fast machine the worker can be ready in time: then it helped
        assert source.local_frames == 12
    assert no_children(), f"a worker outlived a render of {took:.1f} s"


def test_a_failed_check_after_the_workers_began_leaves_no_process(clip, tmp_path):
    spec = spec_for(clip, mappings=[Mapping("rms", "rotate1", 3, 0, 3.14, where="row:99")])
    with pytest.raises(ValueError, match="row 99"):
        render_frames(spec, tmp_path / "v.mp4", source=ProcessSource(2), progress=False)
    assert no_children()
    assert not frames_dir(tmp_path / "v.mp4").exists()


def test_the_command_line_renders_local_workers_as_processes(monkeypatch, reference, clip, tmp_path):
    """`bendlab video --workers 2` on a CPU: no Ray, the frames of one process (the mp4 muxed as usual)."""
    import sys
    started = []
    monkeypatch.setattr(ProcessSource, "begin", lambda self: started.append(self) or None)  # this process alone
    code = main(["video", str(clip), "--op", "rotate1", "--range", "0", "3.14159", "--layer", "3", "--steps", "4",
                 "--batch", str(BATCH), "--workers", "2", "--out", str(tmp_path / "v.mp4")])
    assert code in (0, None) and started
    assert not ("ray" in sys.modules and sys.modules["ray"].is_initialized())
