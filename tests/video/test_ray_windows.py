"""The video method on Ray workers (a local runtime started by these tests, shut down after): a 1 s song of 20
frames in windows of 8 overlapping by 2 (at 0, 6 and 12; the tiny random adapter, 2 steps), the actors computing
windows' latents, this process blending, decoding and writing them in order. Frames byte-identical to the in-process
render (1 torch thread, as the workers), a killed actor loses no window, a render interrupted mid-song resumes from
its saved overlap with the same frames."""

import pytest

from bendlab.video import cluster, frames_dir, render_frames
from conftest import same_frames, tiny_adapter, write_clip
from test_windows import song_spec

pytest.importorskip("ray", reason="ray is installed by `make install`")
pytestmark = pytest.mark.usefixtures("ray_alone")  # one test process at a time starts Ray (tests/conftest.py)
N = 20  # 1 s at 20 fps: windows (0, 8), (6, 14), (12, 20)


@pytest.fixture(scope="module")
def ray_runtime():
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    d = tmp_path_factory.mktemp("song")
    return song_spec(write_clip(d / "song.wav", onset=0.8, seconds=N / 20), tiny_adapter(d / "adapter"), window=8,
                     overlap=2)


@pytest.fixture(scope="module")
def reference(spec, tmp_path_factory):
    """The song rendered in this process alone (1 torch thread: tests/conftest.py)."""
    return render_frames(spec, tmp_path_factory.mktemp("ref") / "v.mp4", device="cpu", progress=False)


class KillingPool(cluster.Pool):
    """Kills the first actor it hands a window to, right after: the window must come back to the queue."""
    killed = None

    def _send(self, actor, method, job):
        ref = super()._send(actor, method, job)
        if self.killed is None:
            import ray
            self.killed = job
            ray.kill(actor)  # as if its node were lost
        return ref


class Recording(cluster.RaySource):
    """Records the windows a render hands out (`jobs`); kill=True: its pool is a `KillingPool` (kept in `used`)."""

    def __init__(self, *args, kill: bool = False, **kw):
        super().__init__(*args, **kw)
        self.kill, self.used = kill, None

    def _pool(self, plan, workers):
        if not self.kill:
            return super()._pool(plan, workers)
        self.used = KillingPool(plan, workers=workers, threads=self.threads)
        return self.used

    def _finished(self, jobs, here, method):
        self.jobs = list(jobs)
        return super()._finished(jobs, here, method)


def test_ray_workers_render_the_windows_of_one_process(ray_runtime, spec, reference, tmp_path):
    """overlap=False: every window on the two actors, this process only blends, decodes and writes."""
    source = Recording(2, threads=1, overlap=False)
    folder = render_frames(spec, tmp_path / "v.mp4", source=source, progress=False)
    assert same_frames(folder, reference, N)
    assert source.jobs == [0, 1, 2] and source.local_windows == 0


class PatientDriver(Recording):
    """After its first window this process waits until the actor is ready, so the actor computes a window whatever
    the machine's speed."""

    def _window_here(self, j):
        if self.local_windows and self._future is not None:
            self._future.exception(timeout=300)  # the pool is ready (or failed)
        return super()._window_here(j)


def test_this_process_is_the_first_worker_with_the_same_frames(ray_runtime, spec, reference, tmp_path):
    """The default with local CPU workers (overlap): this process computes window 0 while the actor starts, then
    both take windows from one queue."""
    source = PatientDriver(2)
    folder = render_frames(spec, tmp_path / "v.mp4", source=source, progress=False)
    assert same_frames(folder, reference, N) and source.jobs == [0, 1, 2]
    assert 1 <= source.local_windows <= 2 and source.started is not None  # the actor computed a window too


def test_a_killed_actor_loses_no_window(ray_runtime, spec, reference, tmp_path):
    source = Recording(2, threads=1, overlap=False, kill=True)
    folder = render_frames(spec, tmp_path / "v.mp4", source=source, progress=False)
    assert source.used.killed == 0 and source.used.failures == 1  # window 0 came back and was computed again
    assert same_frames(folder, reference, N)


def test_an_interrupted_ray_render_resumes_with_the_same_frames(ray_runtime, spec, reference, tmp_path):
    """Interrupted in window 1's frames: frames 0..8 and window 0's overlap are kept; the resumed render hands out
    windows 1 and 2 only and writes frames 9..19, byte-identical to one process's."""
    out = tmp_path / "v.mp4"

    def interrupt(i):
        if i == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_frames(spec, out, source=cluster.RaySource(2, threads=1, overlap=False), progress=False,
                      on_frame=interrupt)
    folder = frames_dir(out)
    assert len(list(folder.glob("frame_*.png"))) == 9
    assert [f.name for f in folder.glob("overlap_*.npy")] == ["overlap_00000.npy"]
    source, written = Recording(2, threads=1, overlap=False), []
    render_frames(spec, out, source=source, progress=False, on_frame=written.append)
    assert source.jobs == [1, 2] and written == list(range(9, N))
    assert same_frames(folder, reference, N)
