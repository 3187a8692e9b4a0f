"""The video method on worker processes (`--workers N` on a CPU; issue 27, whole songs): the 40-frame song of
tests/video/test_windows.py (windows of 16 at 0, 12 and 24, the tiny random adapter) with this process and one
worker computing windows' latents, this process blending, decoding and writing them in order. Frames byte-identical
to the in-process render (1 torch thread, as the workers), a killed worker loses no window, a render killed
mid-song resumes from its saved overlap with the same frames."""

import multiprocessing
import os
import signal

import pytest

from bendlab.video import ProcessSource, frames_dir, render_frames
from conftest import same_frames, wait_until, write_clip
from test_windows import N, song_spec


@pytest.fixture(scope="module")
def spec(tmp_path_factory, adapter):
    d = tmp_path_factory.mktemp("song")
    return song_spec(write_clip(d / "song.wav", onset=1.7, seconds=N / 20), adapter)


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory):
    """The song rendered in this process alone (1 torch thread: tests/conftest.py)."""
    return render_frames(spec, tmp_path_factory.mktemp("ref") / "v.mp4", device="cpu", progress=False)


class PatientDriver(ProcessSource):
    """After its first window this process waits until the worker is ready, so the worker computes a window
    whatever the machine's speed (its start is one import and one model load); `jobs` records the windows each
    render hands out."""

    def _window_here(self, j):
        if self.local_windows:
            wait_until(lambda: self.started is not None, 300, "a worker to be ready")
        return super()._window_here(j)

    def _finished(self, queue, here):
        self.jobs = list(queue)
        return super()._finished(queue, here)


class KillingDriver(PatientDriver):
    """Kills the first worker as soon as it is handed a window: the window must come back to the queue."""
    killed = None

    def _send(self, w, message, queue):
        super()._send(w, message, queue)
        if isinstance(message, int) and self.killed is None:
            self.killed = message
            os.kill(w.proc.pid, signal.SIGKILL)


def no_children() -> bool:
    return not [p for p in multiprocessing.active_children() if p.name.startswith("bendlab-worker")]


def test_two_workers_render_the_windows_of_one_process(spec, reference, tmp_path):
    source = PatientDriver(2)
    folder = render_frames(spec, tmp_path / "v.mp4", source=source, progress=False)
    assert same_frames(folder, reference, N)
    assert source.jobs == [0, 1, 2] and source.local_windows == 2  # window 0 here, then one each
    assert no_children()


def test_a_killed_worker_loses_no_window(spec, reference, tmp_path):
    source = KillingDriver(2)
    folder = render_frames(spec, tmp_path / "v.mp4", source=source, progress=False)
    assert source.killed is not None and source.failures == 1
    assert same_frames(folder, reference, N)
    assert no_children()


def test_a_kill_mid_song_resumes_on_workers_with_the_same_frames(spec, reference, tmp_path):
    """Interrupted in window 1's frames: frames 0..14 and window 0's overlap are kept, the workers stopped; the
    resumed render hands out windows 1 and 2 only and writes frames 15..39, byte-identical to one process's."""
    out = tmp_path / "v.mp4"

    def interrupt(i):
        if i == 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_frames(spec, out, source=ProcessSource(2), progress=False, on_frame=interrupt)
    assert no_children()
    folder = frames_dir(out)
    assert len(list(folder.glob("frame_*.png"))) == 15
    assert [f.name for f in folder.glob("overlap_*.npy")] == ["overlap_00000.npy"]
    source, written = PatientDriver(2), []
    render_frames(spec, out, source=source, progress=False, on_frame=written.append)
    assert source.jobs == [1, 2] and written == list(range(15, N))
    assert same_frames(folder, reference, N)
    assert no_children()


def test_a_render_that_ends_before_the_worker_is_ready_does_not_wait_for_it(spec, tmp_path):
    """A one-window clip (16 frames): this process renders it while the worker loads; the worker is stopped."""
    from dataclasses import replace
    short = replace(spec, audio=str(write_clip(tmp_path / "short.wav", onset=0.5, seconds=0.8)))
    alone = render_frames(short, tmp_path / "alone.mp4", device="cpu", progress=False)
    source = ProcessSource(2)
    folder = render_frames(short, tmp_path / "v.mp4", source=source, progress=False)
    assert same_frames(folder, alone, 16) and source.local_windows == 1
    assert no_children()
