"""Rendering on Ray: a local runtime with 2 workers (1 torch thread each, the default) started by these tests and
shut down after. Frames must be byte-identical to the in-process render whatever the workers, survive a killed worker,
and resume after an interruption."""

import pytest

from bendlab.video import cluster
from bendlab.mapping import Mapping
from bendlab.video import render_frames
from conftest import same_frames, spec_for, write_clip

pytest.importorskip("ray", reason="ray is installed by `make install`")
pytestmark = pytest.mark.usefixtures("ray_alone")  # one test process at a time starts Ray (tests/conftest.py)
BATCH = 2  # 6 batches of the 12 frames: work for both workers


@pytest.fixture(scope="module")
def ray_runtime():
    from bendlab.video import cluster
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
    source = cluster.RaySource(workers, threads=1, overlap=False)  # every frame on the workers
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False)
    assert same_frames(folder, reference) and source.local_frames == 0


class SlowDriver(cluster.RaySource):
    """After its first batch the driver waits for the workers to be ready before each batch, so they take over
    after one or two batches whatever the machine's speed."""

    def start(self, plan):
        identity = super().start(plan)
        render, first = self._local.render, []

        def slow(idx):
            if first and self._future is not None:
                self._future.exception(timeout=300)  # the pool is ready (or failed)
            first.append(idx)
            return render(idx)
        self._local.render = slow
        return identity


def test_the_driver_renders_while_the_workers_start_and_hands_over(ray_runtime, reference, clip, tmp_path):
    """No fixed toll: the first frames come from this process (as a worker computes them) while Ray and the
    actors start; the rest from the workers; all byte-identical to the in-process render."""
    ray_runtime.shutdown()  # a cold start, as `bendlab video --workers 2` has
    source = SlowDriver(2)
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False)
    assert 0 < source.local_frames < 12 and source.started is not None  # both this process and the worker
    assert same_frames(folder, reference)


def test_stop_shuts_ray_down_once_the_frames_are_done(no_runtime, reference, clip, tmp_path):
    """What `bendlab video --workers N` asks: Ray stopped as soon as the frames are in (while the mp4 encodes)."""
    import ray
    source = SlowDriver(2, stop=True)
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False)
    assert source.started is not None and source.local_frames < 12  # the worker did render
    cluster._start_thread().submit(lambda: None).result()  # the shutdown queued on Ray's thread has run
    assert not ray.is_initialized() and same_frames(folder, reference)


def test_one_local_worker_is_this_process_and_starts_no_ray(no_runtime, reference, clip, tmp_path):
    import ray
    source = cluster.RaySource(1)
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False)
    assert source.local_frames == 12 and source.started is None and not ray.is_initialized()
    assert same_frames(folder, reference)



def test_a_killed_worker_loses_no_frame(ray_runtime, reference, clip, tmp_path):
    import ray
    killed = []

    def kill_once(i):
        if not killed:
            killed.append(i)
            ray.kill(ray.get_actor("bendlab-worker-0"))  # as if its node were lost
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4",
                           source=cluster.RaySource(2, threads=1, overlap=False), progress=False, on_frame=kill_once)
    assert killed and same_frames(folder, reference)


def test_an_interrupted_ray_render_resumes(ray_runtime, reference, clip, tmp_path):
    def interrupt(i):
        if i >= 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=cluster.RaySource(2, threads=1),
                      progress=False, on_frame=interrupt)
    from bendlab.video import LOG, frames_dir
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


def test_a_render_resumes_on_another_number_of_workers_with_the_defaults(ray_runtime, reference, clip, tmp_path):
    """No threads given: each worker computes with the same torch threads whatever the number of workers, so a
    render begun on 2 workers resumes on 1 (same manifest) and its frames are the in-process frames (1 thread)."""
    def interrupt(i):
        if i >= 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=cluster.RaySource(2), progress=False,
                      on_frame=interrupt)
    folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=cluster.RaySource(1),
                           progress=False)
    assert same_frames(folder, reference)


@pytest.fixture
def no_runtime(ray_runtime):
    """No Ray runtime in this process before the test (it must start its own), none left after it."""
    ray_runtime.shutdown()
    yield
    ray_runtime.shutdown()


@pytest.mark.parametrize("elsewhere", ["RAY_ADDRESS", "last ray start"])
def test_local_workers_start_their_own_runtime(no_runtime, monkeypatch, reference, clip, tmp_path, elsewhere):
    """`--workers N` without an address never joins another cluster: neither the one RAY_ADDRESS names nor the
    one the last `ray start` on this machine recorded (where `ray.init()` looks without an address)."""
    import shutil
    import tempfile
    from pathlib import Path
    other = "127.0.0.1:1"  # a cluster elsewhere; joining it fails at once (num_cpus is refused when joining)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must fit in 107 bytes
    try:
        if elsewhere == "RAY_ADDRESS":
            monkeypatch.setenv("RAY_ADDRESS", other)
        else:
            monkeypatch.setenv("RAY_TMPDIR", str(tmp))
            (tmp / "ray").mkdir()
            (tmp / "ray" / "ray_current_cluster").write_text(other)  # what `ray start --head` writes
        folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=cluster.RaySource(2),
                               progress=False)
        assert same_frames(folder, reference)
        import ray
        assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]  # one node, on the loopback only
    finally:
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def test_workers_times_threads_beyond_the_cpus_is_refused_before_ray(clip):
    from bendlab.models import available_cpus
    n = available_cpus()
    if n < 2:
        pytest.skip("needs 2 CPUs: 2 threads a worker")
    with pytest.raises(ValueError, match=f"workers {n} with 2 threads each need more than the {n} CPUs"):
        cluster.RaySource(n, threads=2, device="cpu").check(spec_for(clip))


@pytest.mark.slow
def test_two_nodes_and_a_node_lost_mid_render(no_runtime, reference, clip, tmp_path):
    """A two-node cluster on this machine (ray.cluster_utils.Cluster, one CPU each, as Ray's testing tips have
    it): frames byte-identical to in-process; the second node removed mid-render (its worker dies, no CPU is left
    for a replacement) and the render still completes with every frame, on the node that is left."""
    from ray.cluster_utils import Cluster
    with cluster._loopback():  # its processes on 127.0.0.1 only
        c = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "node_ip_address": "127.0.0.1",  # a lost node noticed in about a second, not 15 s
            "_system_config": {"health_check_failure_threshold": 2, "health_check_period_ms": 500,
                               "health_check_initial_delay_ms": 0}})
        node = c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    try:
        c.wait_for_nodes()
        source = cluster.RaySource(2, address=c.address)
        removed = []

        def lose_a_node(i):
            if not removed:
                removed.append(i)
                c.remove_node(node)
        folder = render_frames(spec_for(clip, batch=BATCH), tmp_path / "v.mp4", source=source, progress=False,
                               on_frame=lose_a_node)
        assert removed and same_frames(folder, reference)
    finally:
        cluster.shutdown()
        c.shutdown()


@pytest.mark.slow
def test_joins_a_ray_start_head_runtime_by_address(no_runtime, monkeypatch, reference, clip, tmp_path):
    """`--ray-address HOST:PORT` joins a runtime started with `ray start --head` (here on 127.0.0.1, in the
    foreground with --block so that the test stops it by pid)."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a token-authenticated head needs its token (Ray's docs)
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             f"--port={port}", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                             "--node-ip-address=127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # 127.0.0.1 only
                                 "RAY_AUTH_MODE": "disabled"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        # in a fresh process, as a user's `bendlab video --ray-address` (Ray reads its auth mode once a process)
        code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
                "import ray\nfrom conftest import spec_for\nfrom bendlab.video import cluster\n"
                "from bendlab.video import render_frames\n"
                f"render_frames(spec_for(sys.argv[2], batch={BATCH}), sys.argv[3], progress=False, "
                "source=cluster.RaySource(2, address=sys.argv[4]))\n"
                "print([n['NodeManagerAddress'] for n in ray.nodes()])\n")
        conftest_dir = str(Path(__file__).parents[1])
        r = subprocess.run([sys.executable, "-c", code, conftest_dir, str(clip), str(tmp_path / "v.mp4"),
                            f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "RAY_AUTH_MODE": "disabled"})
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.split("\n")[-2] == "['127.0.0.1']"  # one node, on the loopback
        from bendlab.video import frames_dir
        assert same_frames(frames_dir(tmp_path / "v.mp4"), reference)
    finally:
        head.terminate()
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            head.kill()
