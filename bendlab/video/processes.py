"""Rendering a video's frames on this machine's CPUs: `--workers N` as N - 1 worker processes beside this one.

This process is the first worker. `ProcessSource.begin` spawns the other N - 1 (plain `multiprocessing`
processes, "spawn" start: no state copied from this one) as soon as the spec is checked; each imports bendlab,
loads the model with `WORKER_THREADS` (1) torch threads and says it is ready, while this process analyses the
audio, loads the model itself and renders the first batches. Then every process takes aligned batches of
frames from one queue; a worker sends its frames back as PNG bytes over its pipe and this process writes them
through the render folder (the single truth: manifest, hash log, lock). The frames are byte-identical to an
in-process render with the same threads (tested), so a render resumes on any number of workers.

The video method (`video.joint`) hands out windows instead of batches: every process computes whole windows'
latents (a window depends on no other until they are blended), a worker sends them back as .npy bytes (the
float32 values exactly), and this process blends, decodes and writes the windows in order as an in-process render
does (`WindowRenderer.frames`), saving each overlap for resume. A window computed ahead of its turn waits in
memory, so a kill of this process loses at most the windows in flight (up to N).

A worker that dies (killed, out of memory) loses no frame: its batch (or window) goes back to the queue and a new
worker is started, up to `MAX_FAILURES` times; then the render stops with a one-line error. A render that ends
before a worker is ready never waits for it: the worker is stopped (a short song costs nothing extra).

Why not Ray here: on this project's 2-core machine, Ray's own processes (its control store, raylet and the idle
workers it starts ahead of the actors) took the second core for about 14 s while this process rendered, so
`--workers 2` was 0.93x of `--workers 1` on an 80-frame song; a spawned process costs one import and one model
load on the idle core (`benchmarks/bench.py --only startup` measures both lengths). Ray stays for clusters and
for GPU workers (`video.cluster.RaySource`, `--ray-address`), which hand out the video method's windows the same
way (`cluster.windows_in_order` is shared: this process blends, decodes and writes them in order).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait as wait_futures
from multiprocessing import connection, get_context

from .cluster import MAX_FAILURES, WORKER_THREADS, ClusterError, check_workers, renderer_of, windows_in_order

START_TIMEOUT = 300.0  # seconds this process waits for a worker to start when it has nothing left to render itself


def _serve(conn, model: str, adapter: str | None, threads: int) -> None:
    """A worker process: load the model (with its motion adapter, for the video method), say ("ready",
    identity), then take the plan and jobs until None: a batch of frame indices, answered ("done", [PNG bytes]),
    or the video method's window j, answered ("done", its latents as .npy bytes); or ("error", one line)."""
    import logging
    import warnings
    warnings.simplefilter("ignore")  # this process's own load already showed the model's warnings
    logging.disable(logging.WARNING)
    try:
        import torch

        from .. import models
        from ..files import png_bytes
        from .clip import video_renderer
        from .joint import npy_bytes
        from .renderer import FrameRenderer, device_entry
        torch.set_num_threads(threads)
        pipe = models.load_pipeline(model, "cpu", motion_adapter=adapter)
        conn.send(("ready", {"weights": models.weights_fingerprint(pipe), "device": device_entry(pipe)}))
        plan = conn.recv()
        if plan is None:
            return
        if plan.spec.method == "video":
            windows = video_renderer(plan, pipe)  # AnimateDiff's latents, or a video transformer's decoded frames
            while (j := conn.recv()) is not None:
                conn.send(("done", npy_bytes(windows.latents(j))))
            return
        renderer = FrameRenderer(plan, pipe)
        while (idx := conn.recv()) is not None:
            conn.send(("done", [png_bytes(img) for img in renderer.render(idx)]))
    except (EOFError, KeyboardInterrupt):  # the driver went away, or Ctrl-C reached the whole group
        return
    except Exception as e:  # noqa: BLE001 - our own error in the worker: reported as one line, never retried
        conn.send(("error", f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"))


class _Worker:
    """One worker process and its end of the pipe; `idx` is the job it is computing (a batch of frame indices, or a
    window's index; None: none)."""

    def __init__(self, ctx, model: tuple[str, str | None], threads: int, name: str):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, *model, threads), name=name, daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.idx: list[int] | int | None = None

    def stop(self, wait: float) -> None:
        try:
            if self.ready:
                self.conn.send(None)
        except OSError:
            pass
        self.proc.join(wait if self.ready else 0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


class ProcessSource:
    """A frame source (`video.renderer`) on N local CPU workers: this process and N - 1 spawned processes, each
    with `threads` torch threads (default `WORKER_THREADS`, so frames do not depend on N). `local_frames` counts
    the frames this process made (the video method: `local_windows` the windows), `started` the seconds until the
    first worker was ready (None: none was).

        make_video(spec, "song.mp4", source=ProcessSource(workers=2))
    """

    def __init__(self, workers: int | None = None, threads: int | None = None, max_failures: int = MAX_FAILURES):
        self.workers, self.threads, self.max_failures = workers, threads, max_failures
        self.pool: list[_Worker] = []
        self.failures = self.spawned = self.local_frames = self.local_windows = 0
        self.started: float | None = None
        self._model = self._pipe = self._renderer = self._saved_threads = self._own = None

    def check(self, spec) -> None:
        """One-line errors before any work: threads in 1..CPUs, workers x threads no more than the CPUs, not
        the img2img chain on several workers."""
        from ..models.device import check_threads
        check_threads(self.threads)
        check_workers(self.workers, None, spec.method, "cpu", self.threads)
        self._model = (spec.model, spec.motion_adapter)  # what a worker loads before the plan exists
        self._t0 = time.perf_counter()

    @property
    def n_workers(self) -> int:
        from ..models.device import available_cpus
        return self.workers or available_cpus() // (self.threads or WORKER_THREADS)

    def begin(self) -> None:
        """Spawn the N - 1 worker processes: they import and load the model while this process analyses."""
        for _ in range(self.n_workers - 1):
            self._spawn()

    def _spawn(self) -> None:
        self.spawned += 1
        self.pool.append(_Worker(get_context("spawn"), self._model, self.threads or WORKER_THREADS,
                                 f"bendlab-worker-{self.spawned}"))

    def model(self, spec):
        """What the spec is resolved and checked against before the weights load (with its motion adapter, as in
        this process alone: `LocalSource.model`)."""
        return spec.model_of()

    def start(self, plan) -> dict:
        """Load the model here, with the workers' threads, and return what the manifest records."""
        import torch

        from .. import models
        from .renderer import device_entry
        self.plan = plan
        self._saved_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or WORKER_THREADS)  # this process computes as a worker does
        self._pipe = plan.spec.model_of().load("cpu")
        self._renderer = renderer_of(plan, self._pipe)
        self.identity = {"weights": models.weights_fingerprint(self._pipe), "device": device_entry(self._pipe)}
        return self.identity

    def vae(self):
        """This process's VAE (what `tween` decodes the in-between frames with)."""
        return self._pipe.vae

    def _render_here(self, idx: list[int]) -> list:
        self.local_frames += len(idx)
        return self._renderer.render(idx)

    def _window_here(self, j: int):
        self.local_windows += 1
        return self._renderer.latents(j)

    def frames(self, todo: list[int], folder):
        """Yield (index, image or PNG bytes) as batches finish, this process and the ready workers taking
        batches from one queue (`_finished`); the video method: its windows' frames in order (`_windows`)."""
        if self.plan.spec.method == "video":
            yield from self._windows(todo, folder)
            return
        from .renderer import aligned_batches
        queue = deque(aligned_batches(todo, self.plan.spec.batch, self.plan.n_frames))
        for idx, frames in self._finished(queue, self._render_here):
            yield from zip(idx, frames)

    def _windows(self, todo: list[int], folder):
        """The video method: the windows `WindowRenderer.schedule` renders go into one queue for this process and
        the workers; their latents are blended, decoded and written in window order as they come in
        (`cluster.windows_in_order`)."""
        yield from windows_in_order(self._renderer, todo, folder,
                                    lambda jobs: self._finished(deque(jobs), self._window_here))

    def _finished(self, queue: deque, here):
        """Yield (job, result) as jobs finish, this process and the ready workers taking jobs from `queue`: this
        process computes `here(job)` on a thread of its own (torch computes outside the GIL) while this thread
        keeps the workers busy; a worker's result is what it sent (PNG bytes, or .npy bytes)."""
        self._own = own = ThreadPoolExecutor(1, thread_name_prefix="bendlab-driver")
        mine = None
        try:
            while queue or mine or any(w.idx is not None for w in self.pool):
                for w in self.pool:
                    if w.ready and w.idx is None and queue:
                        w.idx = queue.popleft()
                        self._send(w, w.idx, queue)
                if mine is None and queue:
                    job = queue.popleft()
                    mine = (own.submit(here, job), job)
                if mine is not None and mine[0].done():
                    (future, job), mine = mine, None
                    yield job, future.result()
                    continue
                yield from self._collect(queue, mine)
        finally:
            own.shutdown(wait=True, cancel_futures=True)

    def _send(self, w: _Worker, message, queue) -> None:
        try:
            w.conn.send(message)
        except OSError:
            self._lost(w, queue)

    def _collect(self, queue, mine):
        """Wait (50 ms at most while this process renders) for a worker's message and handle it."""
        conns = {w.conn: w for w in self.pool}
        if not conns:  # no worker: this process's batch is all there is to wait for
            wait_futures([mine[0]], timeout=None)
            return
        busy = any(w.idx is not None for w in self.pool)  # a worker computing (a window may take minutes): no limit
        ready = connection.wait(list(conns), timeout=0.05 if mine is not None else None if busy else START_TIMEOUT)
        if not ready and mine is None:
            raise ClusterError(f"no worker was ready within {START_TIMEOUT:g} s; finished frames are kept: run "
                               "again to resume")
        for c in ready:
            w = conns[c]
            try:
                kind, value = c.recv()
            except (EOFError, OSError):
                self._lost(w, queue)
                continue
            if kind == "error":
                raise ClusterError(f"a worker failed: {value}")
            if kind == "ready":
                if value != self.identity:
                    raise ClusterError(f"a worker computes on {value['device']} with other weights or threads than "
                                       f"this process ({self.identity['device']}); accepted: the same")
                w.ready = True
                if self.started is None:
                    self.started = time.perf_counter() - self._t0
                self._send(w, self.plan, queue)
                continue
            job, w.idx = w.idx, None
            yield job, value

    def _lost(self, w: _Worker, queue) -> None:
        """A worker died: its batch back to the queue (nothing of it was written) and a new worker, up to
        `max_failures` deaths in one render."""
        if w.idx is not None:
            queue.appendleft(w.idx)
        self.pool.remove(w)
        w.stop(0)
        self.failures += 1
        if self.failures > self.max_failures:
            raise ClusterError(f"workers died {self.failures} times; finished frames are kept: run again to resume")
        self._spawn()

    def close(self) -> None:
        """Stop the workers (those still loading at once), wait for this process's job in flight (a render stopped
        mid-song: it computes on the pipeline the next render loads) and give this process its threads back."""
        if self._own is not None:
            self._own.shutdown(wait=True, cancel_futures=True)
            self._own = None
        for w in self.pool:
            w.stop(2.0)
        self.pool = []
        self._renderer = None
        if self._saved_threads is not None:
            import torch
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None
