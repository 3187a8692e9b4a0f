"""Rendering on Ray: a local runtime with 2 workers (1 torch thread each) started by these tests and shut down
after. Frames must be byte-identical to the in-process render whatever the workers, survive a killed worker,
and resume after an interruption."""

import pytest

from bendlab import cluster
from bendlab.video import Mapping, render_frames
from conftest import same_frames, spec_for, write_clip

pytest.importorskip("ray", reason="ray is installed by `make install`")
BATCH = 2  # 6 batches of the 12 frames: work for both workers


@pytest.fixture(scope="module")
def ray_runtime():
    from bendlab import cluster
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """conftest's clip, once for the module (the reference render is shared)."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.wav")


@pytest.fixture(scope="module")
def reference(pipe, clip, tmp_path_factory):
    """The in-process render (1 torch thread, as the workers)."""
    out = tmp_path_factory.mktemp("ref") / "v.mp4"
    return render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, progress=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_render_the_same_frames_as_one_process(ray_runtime, reference, clip, tmp_path, workers):
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4",
                           source=cluster.RaySource(workers, threads=1), progress=False)
    assert same_frames(folder, reference)


def test_a_killed_worker_loses_no_frame(ray_runtime, reference, clip, tmp_path):
    import ray
    killed = []

    def kill_once(i):
        if not killed:
            killed.append(i)
            ray.kill(ray.get_actor("bendlab-worker-0"))  # as if its node were lost
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=cluster.RaySource(2, threads=1),
                           progress=False, on_frame=kill_once)
    assert killed and same_frames(folder, reference)


def test_an_interrupted_ray_render_resumes(ray_runtime, reference, clip, tmp_path):
    def interrupt(i):
        if i >= 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=cluster.RaySource(2, threads=1),
                      progress=False, on_frame=interrupt)
    from bendlab.frames import LOG, frames_dir
    done = {int(line.split()[0]) for line in (frames_dir(tmp_path / "v.mp4") / LOG).read_text().splitlines()}
    assert 3 in done and len(done) < 12
    rendered = []
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=cluster.RaySource(2, threads=1),
                           progress=False, on_frame=rendered.append)
    assert sorted(rendered) == sorted(set(range(12)) - done)  # only the missing frames were written
    assert same_frames(folder, reference)


def test_img2img_chain_is_refused_on_several_workers(clip, tmp_path):
    with pytest.raises(ValueError, match="img2img renders each frame from the previous one"):
        render_frames(spec_for(clip, method="img2img", mappings=[Mapping("rms", "add", 1, 0, 1)]),
                      tmp_path / "v.mp4", source=cluster.RaySource(2))
