"""The render folder: nothing stale, foreign, truncated or half-written ever reaches the mp4.

Each test is one defect that must stay impossible (see bendlab/frames.py for the guarantees)."""

import json
import math
import os
import random
import signal
import subprocess
import sys
import time

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from bendlab.video import LOG, RenderFolder, RenderFolderError, frames_dir
from bendlab.video import make_video, mux, render_frames
from conftest import CLIP_STEPS, frame_path, spec_for, write_clip

STEPS = CLIP_STEPS
BATCH = 4  # frames per batch of these renders


def decoded(mp4):
    """Every frame of an mp4 as a uint8 array (H, W, 3)."""
    gen = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(gen)
    w, h = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen])


def frame_bytes(out, i):
    return frame_path(frames_dir(out), i).read_bytes()


def test_overwrite_with_changed_settings_muxes_only_new_frames(pipe, clip, tmp_path):
    """--overwrite after a settings change: the mp4 equals a fresh render (the old bug: upscaled copies of the
    old frames were muxed)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    out, fresh = tmp_path / "a" / "v.mp4", tmp_path / "b" / "v.mp4"
    make_video(spec_for(clip, batch=BATCH), out, pipe=pipe, progress=False, upscale=2)
    make_video(spec_for(clip, batch=BATCH, seed=7), out, pipe=pipe, progress=False, upscale=2, overwrite=True)
    make_video(spec_for(clip, batch=BATCH, seed=7), fresh, pipe=pipe, progress=False, upscale=2)
    a, b = decoded(out), decoded(fresh)
    assert a.shape == (12, 128, 128, 3)  # upscaled by ffmpeg while encoding: 64 px frames -> 128 px
    assert np.array_equal(a, b)
    assert out.read_bytes() == fresh.read_bytes()
    assert not [p for p in frames_dir(out).iterdir() if p.is_dir()]  # no second folder of upscaled copies


def test_same_size_other_audio_is_not_resumed(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=4, progress=False)
    size = clip.stat().st_size
    write_clip(clip, note=72)  # same length and format, other content, same path
    assert clip.stat().st_size == size
    with pytest.raises(RenderFolderError, match="audio changed"):
        render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=4, progress=False)


def test_renamed_audio_resumes(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=4, progress=False)
    moved = clip.rename(tmp_path / "renamed.wav")
    rendered = []
    render_frames(spec_for(moved, batch=BATCH), out, pipe=pipe, limit=4, progress=False, on_frame=rendered.append)
    assert rendered == []  # identified by content, not by path


@pytest.mark.parametrize("change", [dict(batch=2), dict(guidance=5.0), dict(prompts=["mice"])])
def test_every_pixel_setting_is_recorded(pipe, clip, tmp_path, change):
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=1, progress=False)
    with pytest.raises(RenderFolderError, match=f"{next(iter(change))} changed"):
        render_frames(spec_for(clip, **{"batch": BATCH, **change}), out, pipe=pipe, limit=1, progress=False)


def test_frames_without_a_manifest_are_never_trusted(pipe, clip, tmp_path):
    out, fresh = tmp_path / "v.mp4", tmp_path / "fresh.mp4"
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=4, progress=False)
    (frames_dir(out) / "manifest.json").unlink()
    rendered = []
    render_frames(spec_for(clip, batch=BATCH, seed=7), out, pipe=pipe, limit=4, progress=False,
                  on_frame=rendered.append)
    assert rendered == [0, 1, 2, 3]
    render_frames(spec_for(clip, batch=BATCH, seed=7), fresh, pipe=pipe, limit=4, progress=False)
    assert all(frame_bytes(out, i) == frame_bytes(fresh, i) for i in range(4))


def test_truncated_or_edited_frame_is_rendered_again(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=8, progress=False)
    good = [frame_bytes(out, i) for i in range(8)]
    f2, f6 = frames_dir(out) / "frame_00002.png", frames_dir(out) / "frame_00006.png"
    f2.write_bytes(good[2][: len(good[2]) // 2])  # truncated (a full disk, a copy cut short)
    Image.new("RGB", (64, 64), "red").save(f6)  # a valid PNG that is not the frame the log recorded
    rendered = []
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=8, progress=False, on_frame=rendered.append)
    assert rendered == [2, 6]
    assert [frame_bytes(out, i) for i in range(8)] == good


def test_corrupt_manifest_names_the_file(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=1, progress=False)
    (frames_dir(out) / "manifest.json").write_text("{not json")
    with pytest.raises(RenderFolderError, match=r"manifest '.*v\.frames/manifest\.json' is corrupt"):
        render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=1, progress=False)
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=1, progress=False, overwrite=True)  # starts again


def _hold_lock(folder):
    """A separate process that takes the folder's lock and waits to be killed."""
    code = ("import sys, time\nfrom bendlab.video.folder import RenderFolder\n"
            f"RenderFolder({str(folder)!r}).__enter__()\nprint('locked', flush=True)\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_one_render_per_folder_and_a_dead_owner_frees_it(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    proc = _hold_lock(frames_dir(out))
    try:
        with pytest.raises(RenderFolderError, match=f"in use by process {proc.pid} on "):
            render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=1, progress=False)
        assert not list(frames_dir(out).glob("frame_*"))
    finally:
        proc.kill()  # kill -9: the kernel releases its lock; the lock file stays behind, stale
        proc.wait()
    assert (frames_dir(out) / "render.lock").is_file()
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=1, progress=False)  # the stale lock is taken over


def test_second_cli_render_on_a_busy_folder_is_refused_cleanly(clip, tmp_path):
    out = tmp_path / "v.mp4"
    with RenderFolder(frames_dir(out)):
        r = subprocess.run([sys.executable, "-m", "bendlab.ui.cli", "video", str(clip), "--op", "rotate1", "--steps",
                            str(STEPS), "--layer", "3", "--out", str(out)], capture_output=True, text=True,
                           timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith("or choose another --out)")
    assert f"in use by process {os.getpid()}" in r.stderr


def test_kill_9_mid_render_then_resume_gives_the_same_mp4(pipe, clip, tmp_path):
    """A render killed with SIGKILL at a random frame, then resumed, makes an mp4 byte-identical to an
    uninterrupted render's."""
    (tmp_path / "ref").mkdir()
    ref, out = tmp_path / "ref" / "v.mp4", tmp_path / "v.mp4"
    spec = spec_for(clip, batch=2)
    make_video(spec, ref, pipe=pipe, progress=False)
    kill_after = random.Random(os.getpid()).randint(1, 8)  # frames logged before the kill
    cmd = [sys.executable, "-m", "bendlab.ui.cli", "video", str(clip), "--op", "rotate1", "--layer", "3", "--range",
           "0", str(math.pi), "--steps", str(STEPS), "--batch", "2", "--threads", "1", "--device", "cpu", "--out",
           str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = frames_dir(out) / LOG
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= kill_after:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"not killed (kill after {kill_after} frames): {proc.stderr.read()}"
    assert not out.exists()
    logged = len(log.read_text().splitlines())
    assert 1 <= logged < 12, logged
    rendered = []
    make_video(spec, out, pipe=pipe, progress=False, on_frame=rendered.append)
    assert rendered and len(rendered) <= 12 - logged  # finished frames were kept
    assert out.read_bytes() == ref.read_bytes(), f"killed after {logged} frames"


def test_an_interrupted_mux_leaves_no_mp4(pipe, clip, tmp_path, monkeypatch):
    from moviepy import VideoClip
    out = tmp_path / "v.mp4"
    folder = render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, progress=False)

    def killed(self, filename, *a, **k):
        with open(filename, "wb") as f:
            f.write(b"\x00\x00\x00\x18ftypisom")  # the first bytes of an mp4, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(VideoClip, "write_videofile", killed)
    with pytest.raises(KeyboardInterrupt):
        mux(sorted(folder.glob("frame_*.png")), clip, out, 20.0)
    assert not out.exists() and not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*part*"))


def test_manifest_records_content_hashes_and_device(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip, batch=BATCH), out, pipe=pipe, limit=1, progress=False)
    settings = json.loads((frames_dir(out) / "manifest.json").read_text())["settings"]
    assert len(settings["audio"]["sha256"]) == 64 and settings["batch"] == 4
    assert settings["device"].startswith("cpu float32") and len(settings["weights"]) == 16
