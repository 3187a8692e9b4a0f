"""Rendering a video's frames on Ray workers, on this machine or across a cluster.

The driver (the process that runs `bendlab video ... --workers N` or `--ray-address ADDR`) computes the audio
features and parameter curves, then starts one Ray actor per worker. Each actor loads the pipeline once and
holds a `video.FrameRenderer`; the driver hands out aligned batches of frame indices as actors finish (dynamic:
fast and slow GPUs both stay busy), receives each batch's frames as PNG bytes and writes them through the
render folder, which stays the single truth (manifest, hash log, lock) on the driver's disk: no shared
filesystem is needed, and resume dispatches only the missing frames.

What crosses the network: to each worker once, the VideoSpec (prompts and settings: a few kB) and the
(mappings x frames) parameter curves (8 bytes a value); per batch, its frame indices; back, the PNG frames.
Each worker loads the model itself by `spec.model` (the shipped model comes with bendlab; another folder must
exist at the same path on every node, or be a hub id in each node's cache).

A frame depends only on its index and its aligned batch, and on the device and torch threads that compute it
(recorded in the manifest). A CPU worker computes with `WORKER_THREADS` (1) torch threads unless told otherwise,
and a machine's cores go to more workers, not to more threads per worker, so the frames are byte-identical
whatever the number of workers (tested) and a render resumes on any number of them.
A worker that dies (killed, out of memory, node lost) loses no frame: its batch is queued again and a new
worker is started, up to `max_failures` times; then the render stops with a one-line error.

The video method (`video.joint`) hands out windows instead of batches, as `video.processes` does: each actor loads
the model with the spec's motion adapter (a folder that must exist at the same path on every node) and computes
whole windows' latents (a window needs no other until the blend), sent back as .npy bytes (the float32 values
exactly, `Worker.window`); this process blends, decodes and writes them in window order (`windows_in_order`,
`WindowRenderer.frames`), saving each overlap in the render folder, so resume is unchanged and the frames are
byte-identical to an in-process render (tested). To decode, this process holds a pipeline computing as the
workers do: with local CPU workers it is the first of them (below); on a cluster or GPU workers it only blends and
decodes, on the workers' device (cuda workers need a GPU here too: `check_decoder`). A killed worker's window goes
back to the queue; a kill of this process loses the windows in flight.

No fixed toll: starting Ray and its actors takes seconds (here about 7 s for the runtime and 7 s more for two
actors to import bendlab and load the model, longer while the machine renders beside them). With N local CPU
workers, this process is the first of them: `RaySource` starts Ray and N - 1 actors in the background (on a
thread kept for the life of the runtime: Ray's processes die with the thread that started them; none for N = 1,
which is then an in-process render) while the driver loads the model itself and renders the first batches, with
the workers' thread count (so its frames are the frames a worker would make: tested byte-identical); once the
actors are ready they and the driver take batches from one queue.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ..checks import BendlabValueError, check_choice, check_int

MAX_FAILURES = 3  # worker deaths tolerated in one render before it stops
START_TIMEOUT = 120.0  # seconds a render waits for a replacement worker when no other is left
WORKER_THREADS = 1  # torch threads of a CPU worker unless `threads` says otherwise: the same on any split


class ClusterError(RuntimeError):
    """Ray could not be started or joined, or workers kept dying (one line)."""


def _ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report to a remote server
    import ray
    return ray


def check_workers(workers, address, method: str, device: str | None = None, threads: int | None = None) -> None:
    """One-line errors before any work (Ray is not started): workers an integer >= 1 and, on this machine, no
    more than it has CPUs (or GPUs, for cuda workers), their threads included (a worker waits for its CPUs); a
    device the workers can take (cuda only where there is a GPU, for local workers); the img2img chain on one
    worker only; and a HOST:PORT where something answers."""
    from .. import models
    if device is not None:
        check_choice("device for Ray workers", device, ("cpu", "cuda"))
    if workers is not None:
        check_int("workers", workers, 1)
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise BendlabValueError(f"ray address {address!r} is not an address; accepted: auto, or HOST:PORT of a "
                                "Ray head")
    if method == "img2img" and ((workers or 1) > 1 or address is not None):
        raise BendlabValueError("method img2img renders each frame from the previous one, a chain no worker can "
                                "start before the last finished; accepted: --workers 1 (or no Ray) with img2img")
    if address is None:
        import torch
        gpu = device == "cuda" or (device is None and torch.cuda.is_available())
        if gpu:
            models.check_device("cuda")  # a worker that waits for a GPU this machine lacks would wait forever
        n, what = (torch.cuda.device_count(), "GPUs") if gpu else (models.available_cpus(), "CPUs")
        if workers is not None and workers > n:
            raise BendlabValueError(f"workers {workers} is more than the {n} {what} of this machine (one each); "
                                    f"accepted: 1..{n} local workers, or --ray-address for a cluster")
        if not gpu and threads and (workers or 1) * threads > n:
            raise BendlabValueError(f"workers {workers or 1} with {threads} threads each need more than the {n} CPUs "
                                    f"of this machine; accepted: workers x threads <= {n} (default: "
                                    f"{WORKER_THREADS} thread a worker)")
    check_address(address)


PROBE_TIMEOUT = 3.0  # seconds to wait for a Ray head's port to answer before joining


def check_address(address: str | None) -> None:
    """A HOST:PORT (or ray://HOST:PORT) where something answers, probed with a short timeout: Ray itself retries
    an address where nothing listens for minutes. "auto" and other forms are left to Ray."""
    import re
    import socket
    m = address and re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d{1,5})", address.strip())
    if not m:
        return
    host, port = m.group(1), int(m.group(2))
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except OSError as e:
        raise ClusterError(f"could not join Ray at {address!r}: nothing answers at {host}:{port} within "
                           f"{PROBE_TIMEOUT:g} s ({e.strerror or type(e).__name__}); accepted: the address of a "
                           "running head (`ray start --head` prints it)") from None


@contextmanager
def _quiet_start():
    log = logging.getLogger("ray._private.worker")
    f = _NotMainThread()
    log.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)


@contextmanager
def _loopback():
    """While a local runtime starts: Ray's switch for single-node runtimes (its name is for Windows/macOS, where
    it is the default) so that its processes listen on 127.0.0.1 only, not on the network. Ray reads the variable
    when it is first imported and its processes inherit it; where the driver imported Ray before, its constant
    is set too. Both are put back after, so that a cluster joined later by address is joined on the network."""
    from ray._private import ray_constants
    var = ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR  # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
    old_env, old_const = os.environ.get(var), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[var], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_const
        if old_env is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old_env


_starter: ThreadPoolExecutor | None = None  # the thread local runtimes are started on, kept while Ray runs
_on_starter = threading.local()  # .yes on that thread


def _start_thread() -> ThreadPoolExecutor:
    global _starter
    if _starter is None:
        _starter = ThreadPoolExecutor(1, thread_name_prefix="bendlab-ray",
                                      initializer=lambda: setattr(_on_starter, "yes", True))
    return _starter


def _on_ray_thread(fn, *args):
    """fn(*args) on the start thread (`_start_thread`), waited for; at once when called there.

    Every `ray.init` and `ray.put` of this module runs there. Ray numbers the objects a driver puts per thread:
    (the thread's task id, that thread's put counter), and the thread that called `ray.init` takes the driver's task
    id, which is the same for every new local runtime (job 1), and keeps it, with its counter, after `ray.shutdown`
    (a thread-local context that outlives the runtime). A runtime started on this process's main thread after one
    started on the start thread (`overlap=False` after `overlap`, as in tests/video/test_cluster.py) thus left two
    threads putting under one task id with two counters, and a put made the id of a live object of the other:
    Ray's check `Tried to create an owned object that already exists` killed the process. One thread for both:
    one counter."""
    if getattr(_on_starter, "yes", False):
        return fn(*args)
    return _start_thread().submit(fn, *args).result()


class _NotMainThread(logging.Filter):
    """Ray's notice that it sets no SIGTERM handler off the main thread (bendlab's driver handles signals)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def connect(workers: int | None, address: str | None, cpus: int | None = None) -> int:
    """Start a local Ray runtime (address None: always a new one on 127.0.0.1, never the cluster that RAY_ADDRESS
    names or the last `ray start` on this machine, where Ray looks by default) or join a running one ("auto" or
    HOST:PORT); returns the number of workers to start (workers, else one per GPU of the cluster, else one per
    CPU). cpus: the CPUs a new local runtime offers (default: this machine's, at least `workers`); Ray starts
    one idle worker process per CPU ahead of the actors."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            if address is None:
                from ..models.device import available_cpus
                with _loopback(), _quiet_start():  # "local": Ray's address for a new runtime of its own
                    ray.init(address="local", num_cpus=cpus or max(workers or 1, available_cpus()),
                             include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:  # a head on the loopback (`ray start --head --node-ip-address 127.0.0.1`): join it there
                local = address.rpartition(":")[0] in ("127.0.0.1", "localhost")
                with _loopback() if local else contextlib.nullcontext():
                    ray.init(address=address, log_to_driver=False, configure_logging=False,
                             **({"_node_ip_address": "127.0.0.1"} if local else {}))
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ClusterError(f"could not {'start' if address is None else 'join'} Ray"
                               f"{'' if address is None else f' at {address!r}'}: {' '.join(str(e).split())[:300]}; "
                               "accepted: a running cluster (`ray start --head`) for --ray-address") from None
    res = ray.cluster_resources()
    capacity = max(int(res.get("GPU", 0)), int(res.get("CPU", 1)))
    if workers is not None and workers > capacity:
        raise ClusterError(f"workers {workers} is more than the cluster at {address!r} has CPUs or GPUs "
                           f"({capacity}); accepted: 1..{capacity}")
    return workers or int(res.get("GPU", 0)) or int(res.get("CPU", 1))


def check_decoder(method: str, device: str | None) -> None:
    """The video method's windows are blended and decoded in this process, on the workers' device: a one-line error
    for cuda workers where this machine has no GPU."""
    if method == "video" and device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise BendlabValueError("method video on cuda workers: this process decodes their windows on cuda, and "
                                    "it has no CUDA GPU; accepted: a driver with a GPU, or --device cpu workers")


def windows_in_order(renderer, todo: list[int], folder, finished):
    """Yield (i, frame) for the video method's frames `todo`, in order (`WindowRenderer.frames`: blended, decoded,
    each overlap saved), the windows' latents computed elsewhere: finished(windows) yields (j, latents or .npy bytes)
    for the windows `WindowRenderer.schedule` renders, in any order (a window done ahead of its turn waits in
    memory)."""
    from .joint import npy_tensor
    done, got = finished([j for j, saved in renderer.schedule(todo, folder)[1] if saved is None]), {}

    def latents(j: int):
        while j not in got:
            k, value = next(done, (None, None))
            if k is None:
                raise ClusterError(f"window {j} was handed to no worker; finished frames are kept: run again")
            got[k] = npy_tensor(value) if isinstance(value, bytes) else value
        return got.pop(j)
    try:
        yield from renderer.frames(todo, folder, latents=latents)
    finally:
        done.close()


def renderer_of(plan, pipe):
    """What a process computes a plan's jobs with: the video method's windows (`clip.video_renderer`: AnimateDiff's
    `joint.WindowRenderer`, windows' latents, or a Wan / LTX-Video `clip.TransformerWindows`, windows' decoded
    frames), else a `renderer.FrameRenderer` (batches of frames)."""
    from .clip import video_renderer
    from .renderer import FrameRenderer
    return (video_renderer if plan.spec.method == "video" else FrameRenderer)(plan, pipe)


class Worker:
    """One Ray actor: loads the pipeline once (with the spec's motion adapter for the video method), then renders
    batches of frames into PNG bytes (`render`) or the video method's windows into their latents as .npy bytes
    (`window`)."""

    def __init__(self, plan, threads: int | None, device: str | None):
        import torch

        from .. import models
        from .renderer import device_entry
        if threads:
            torch.set_num_threads(threads)
        self.pipe = plan.spec.model_of().load(device)
        self.renderer = renderer_of(plan, self.pipe)
        self.identity = {"weights": models.weights_fingerprint(self.pipe), "device": device_entry(self.pipe)}

    def describe(self) -> dict:
        """What the render folder records of this worker: weights fingerprint, device, threads."""
        return self.identity

    def render(self, idx: list[int]) -> list[bytes]:
        """The frames `idx` (an aligned batch) as PNG bytes, in order."""
        from ..files import png_bytes
        return [png_bytes(img) for img in self.renderer.render(idx)]

    def window(self, j: int) -> bytes:
        """Window j's latents (`WindowRenderer.latents`) as .npy bytes: the float32 values exactly."""
        from .joint import npy_bytes
        return npy_bytes(self.renderer.latents(j))


def _job_name(job) -> str:
    """A job as an error names it: "frames a..b" (a batch) or "window j"."""
    return f"window {job}" if isinstance(job, int) else f"frames {job[0]}..{job[-1]}"


class Pool:
    """The actors of one render and the dynamic dispatch of jobs to them (batches of frames, or the video method's
    windows).

        pool = Pool(plan, workers=2)       # plan: videospec.plan(spec)
        pool.identity                      # checked against the render folder's manifest
        for i, png in pool.render(batches): folder.write(i, png)
        for j, npy in pool.run(windows, "window"): ...   # the video method: window j's latents as .npy bytes
    """

    def __init__(self, plan, *, workers: int | None = None, address: str | None = None,
                 threads: int | None = None, device: str | None = None, max_failures: int = MAX_FAILURES,
                 name: str = "bendlab-worker"):
        ray = _ray()
        n = _on_ray_thread(connect, workers, address)  # the thread of every ray.init and ray.put
        self.device = device or ("cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu")
        if threads is None and self.device == "cpu":
            threads = WORKER_THREADS
        self.actor_class = ray.remote(num_cpus=threads or 1, num_gpus=1 if self.device == "cuda" else 0)(Worker)
        from dataclasses import replace
        plan = replace(plan, feats=None)  # the curves, not every feature
        self.args = (_on_ray_thread(ray.put, plan), threads, self.device)  # the put: see _on_ray_thread
        self.name, self.max_failures, self.failures, self.started = name, max_failures, 0, 0
        self.actors = [self._start() for _ in range(n)]
        try:
            ids = ray.get([a.describe.remote() for a in self.actors])
        except ray.exceptions.RayError as e:
            self.close()
            last = [line for line in str(e).splitlines() if line.strip()][-1].strip()
            raise ClusterError(f"a Ray worker could not start ({last[:300]}); accepted: bendlab installed and the "
                               f"model {plan.spec.model!r} loadable on every node") from None
        if any(i != ids[0] for i in ids):
            self.close()
            raise ClusterError(f"workers differ in weights or device ({ids}); accepted: the same model, device and "
                               "threads on every worker (frames would differ)")
        self.identity = ids[0]

    def _start(self):
        self.started += 1
        return self.actor_class.options(name=f"{self.name}-{self.started - 1}").remote(*self.args)

    def _send(self, actor, method: str, job):
        """Hand `job` to `actor`: the reference its result comes back by."""
        return getattr(actor, method).remote(job)

    def render(self, batches: list[list[int]], local=None):
        """Yield (frame index, PNG bytes or image) as batches finish (`run` with the workers' `render`)."""
        for idx, frames in self.run(batches, "render", local):
            yield from zip(idx, frames)

    def run(self, jobs: list, method: str = "render", local=None):
        """Yield (job, result) as jobs finish, each job computed by an actor's `method` (`Worker.render`: a batch
        of frame indices -> PNG bytes; `Worker.window`: a window's index -> its latents as .npy bytes). A dead
        worker's job is queued again and a replacement started, used once it is ready (on a cluster that lost a
        node it may never be: the other workers carry on; with none left and none starting within START_TIMEOUT s,
        a one-line error). local(job) -> result: this process takes jobs from the same queue too, one at a time on a
        thread of its own (torch computes outside the GIL), while this thread keeps the workers busy."""
        queue, idle, pending, starting = deque(jobs), list(self.actors), {}, {}
        mine, own = None, ThreadPoolExecutor(1, thread_name_prefix="bendlab-driver") if local else None
        try:
            while queue or pending or mine:
                while queue and idle:
                    actor, job = idle.pop(), queue.popleft()
                    pending[self._send(actor, method, job)] = (actor, job)
                if local and mine is None and queue:
                    job = queue.popleft()
                    mine = (own.submit(local, job), job)
                if mine and mine[0].done():
                    (future, job), mine = mine, None
                    yield job, future.result()
                    continue
                yield from self._collect(queue, idle, pending, starting, busy=mine is not None)
        finally:
            if own is not None:
                own.shutdown(wait=True, cancel_futures=True)

    def _collect(self, queue, idle, pending, starting, busy: bool):
        """Wait for one worker's job (or a replacement's start) and handle it; with `busy` (this process is
        computing a job too) wait 50 ms at most, so its job is taken as soon as it is done."""
        ray = _ray()
        refs = list(pending) + list(starting)
        if busy and not refs:  # no worker left: this process carries on alone
            time.sleep(0.05)
            return
        ready = ray.wait(refs, num_returns=1, timeout=0.05 if busy else None if pending else START_TIMEOUT)[0] \
            if refs else []
        if not ready:
            if busy:
                return
            raise ClusterError(f"no worker left and none could start within {START_TIMEOUT:g} s (nodes lost?); "
                               "finished frames are kept: run again to resume")
        [ref] = ready
        if ref in starting:  # a replacement is ready
            actor = starting.pop(ref)
            try:
                identity = ray.get(ref)
            except ray.exceptions.RayError:
                return
            if identity != self.identity:
                raise ClusterError("a replacement worker has other weights or another device; accepted: the "
                                   "same model, device and threads on every node") from None
            idle.append(actor)
            return
        actor, job = pending.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # our own error inside the worker: no retry
            raise e.as_instanceof_cause() from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError, ray.exceptions.OutOfMemoryError) as e:
            self.failures += 1
            if self.failures > self.max_failures:
                raise ClusterError(f"workers died {self.failures} times (last: {type(e).__name__} on "
                                   f"{_job_name(job)}); finished frames are kept: run again to resume") from None
            queue.appendleft(job)  # nothing of it was written: compute it again
            self.actors.remove(actor)
            replacement = self._start()
            self.actors.append(replacement)
            starting[replacement.describe.remote()] = replacement
            return
        idle.append(actor)
        yield job, result

    def close(self) -> None:
        ray = _ray()
        for a in self.actors:
            ray.kill(a)
        self.actors = []


class RaySource:
    """A frame source (`bendlab.renderer`) on Ray: N local workers (`workers`), or the workers of the cluster at
    `address` ("auto": the running one), each with `threads` torch threads (default on a CPU: `WORKER_THREADS`,
    so that frames do not depend on the number of workers) on `device` ("cpu" or "cuda": one GPU each; default
    cuda where the cluster has GPUs).

    overlap (local CPU workers only): this process is one of the N workers, rendering with the workers' threads
    from the start while Ray and the other N - 1 start (see the module docstring); `started` then holds the
    seconds until they were ready (None for N = 1: no Ray) and `local_frames` how many frames this process
    made (the video method: `local_windows` the windows). overlap=False: N actors render every frame (the video
    method: every window, this process blending and decoding them). stop: shut Ray down (`shutdown`) as soon as
    the frames are done, while the mp4 is encoded (`bendlab video`; a notebook keeps the runtime for its next
    render).

        make_video(spec, "song.mp4", source=RaySource(workers=2))
    """

    def __init__(self, workers: int | None = None, address: str | None = None, threads: int | None = None,
                 device: str | None = None, overlap: bool = True, stop: bool = False):
        self.workers, self.address, self.threads, self.device = workers, address, threads, device
        self.overlap, self.stop = overlap, stop
        self.pool: Pool | None = None
        self._future = None
        self._local = None  # this process's renderer (None: every job on the workers, and no window to decode)
        self._computes = False  # whether this process takes jobs too (local CPU workers with `overlap`)
        self.local_frames, self.local_windows, self.started = 0, 0, None

    def check(self, spec) -> None:
        """One-line errors before any work (`check_workers`, `models.check_threads`, `check_decoder`)."""
        from ..models.device import check_threads
        check_threads(self.threads)
        check_decoder(spec.method, self.device)
        check_workers(self.workers, self.address, spec.method, self.device, self.threads)

    def _local_actors(self) -> int | None:
        """With local CPU workers (`overlap`): the actors to start besides this process; else None."""
        if not (self.overlap and self.address is None and self.device in (None, "cpu")):
            return None
        from ..models.device import available_cpus
        return (self.workers or available_cpus()) - 1

    def begin(self) -> None:
        """Start the local Ray runtime in the background (on the thread its processes live with) while the
        audio is analysed: the actors follow in `start`, once the plan exists. Only with local CPU workers and
        when there are actors to start; a render that then fails its checks leaves an idle runtime behind
        (`shutdown`, or the end of the process, stops it)."""
        if self._local_actors():  # 0 for one worker: no Ray
            _start_thread().submit(self._connect)

    def _connect(self) -> None:
        """A local runtime with the CPUs of the actors only (this process computes on the others)."""
        actors = self._local_actors()
        connect(actors, None, actors * (self.threads or WORKER_THREADS))

    def model(self, spec):
        """What the spec is resolved and checked against before the workers start (with its motion adapter, as
        in this process alone: `LocalSource.model`)."""
        return spec.model_of()

    def vae(self):
        """The VAE the in-between frames of `--interpolate` are decoded with (`tween`), loaded in this process
        alone (the workers hold the pipelines)."""
        from ..models.load import load_vae
        return load_vae(self._model, None if self.device in (None, "cuda") else self.device)

    def _start_pool(self, plan) -> Pool:
        self._connect()  # already done by `begin`, unless `start` was called without it
        return self._pool(plan, self._local_actors())

    def _pool(self, plan, workers: int | None) -> Pool:
        return Pool(plan, workers=workers, address=self.address, threads=self.threads, device=self.device)

    def start(self, plan) -> dict:
        self.plan, self._t0 = plan, time.perf_counter()
        self._model = plan.spec.model
        actors = self._local_actors()
        if actors is None:  # a cluster, GPU workers, or overlap=False: every job on the workers
            self.pool = self._pool(plan, self.workers)
            self.started = time.perf_counter() - self._t0
            if plan.spec.method != "video":
                return self.pool.identity
            check_decoder("video", self.pool.device)  # this process blends and decodes the windows
            self._load(plan, self.pool.device)
            self._take_over(wait=True)
            return self._identity
        if actors:  # this process is the first worker
            self._future = _start_thread().submit(self._start_pool, plan)  # Ray and the actors, in the background
        self._computes = True
        self._load(plan, "cpu")
        return self._identity

    def _load(self, plan, device: str) -> None:
        """This process's pipeline and renderer, computing as a worker does (its torch threads on a CPU)."""
        import torch

        from .. import models
        from .renderer import device_entry
        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or WORKER_THREADS)
        pipe = plan.spec.model_of().load(device)
        self._local = renderer_of(plan, pipe)
        self._identity = {"weights": models.weights_fingerprint(pipe), "device": device_entry(pipe)}

    def _take_over(self, wait: bool) -> bool:
        """Whether the pool is ready (waiting for it with `wait`); its identity checked against the driver's."""
        if self.pool is None:
            if self._future is None or not (wait or self._future.done()):
                return False
            self.pool = self._future.result()  # a start-up failure is raised here, in the driver
            self._future = None
            self.started = time.perf_counter() - self._t0
        if self.pool.identity != self._identity:
            raise ClusterError(f"the workers compute on {self.pool.identity['device']} with other weights or "
                               f"threads than this process ({self._identity['device']}); accepted: the same")
        return True

    def _release_local(self) -> None:
        if self._local is not None:
            import torch
            self._local = None
            torch.set_num_threads(self._saved_threads)

    def _render_here(self, idx: list[int]) -> list:
        self.local_frames += len(idx)
        return self._local.render(idx)

    def _window_here(self, j: int):
        self.local_windows += 1
        return self._local.latents(j)

    def frames(self, todo: list[int], folder):
        """Yield (index, image or PNG bytes) as batches finish; the video method: its windows' frames in order,
        blended and decoded here (`windows_in_order`)."""
        if self.plan.spec.method == "video":
            yield from windows_in_order(self._local, todo, folder,
                                        lambda jobs: self._finished(jobs, self._window_here, "window"))
            return
        from .renderer import aligned_batches
        for idx, frames in self._finished(aligned_batches(todo, self.plan.spec.batch, self.plan.n_frames),
                                          self._render_here, "render"):
            yield from zip(idx, frames)

    def _finished(self, jobs: list, here, method: str):
        """Yield (job, result) as jobs finish: with local CPU workers, this process alone while the workers start,
        then the workers and this process from one queue (`Pool.run`); else the workers alone."""
        queue = deque(jobs)
        if not self._computes:
            yield from self.pool.run(list(queue), method)
            return
        while queue and not self._take_over(wait=False):  # this process alone while the workers start
            job = queue.popleft()
            yield job, here(job)
        if queue:
            yield from self.pool.run(list(queue), method, local=here)

    def close(self) -> None:
        if self._future is not None:  # the render ended before the workers were ready: stop them once they are
            try:
                self.pool = self._future.result()
            except Exception:  # noqa: BLE001 - a start that failed has nothing to close; never mask the error
                self.pool = None
            self._future = None
        self._release_local()
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.stop:
            shutdown(wait=False)  # while the mp4 is encoded


def _shutdown_now() -> None:
    import sys
    ray = sys.modules.get("ray")  # not imported: never started here (e.g. one local worker, this process alone)
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def shutdown(wait: bool = True) -> None:
    """Stop the local Ray runtime this process started, or leave a cluster joined by address (it runs on), on
    the thread local runtimes start on (so one shutdown follows another). wait=False: return at once."""
    future = _start_thread().submit(_shutdown_now)
    if wait:
        future.result()
