"""The render folder: where a video's frames live until they are muxed, and why a frame in it can be trusted.

`video.mp4` renders into `video.frames/`, which holds:

    manifest.json     every setting that changes pixels (content hashes of the audio and init image, the model
                      weights' fingerprint, the device and its threads, the batch size, ...), written once
    music.wav         a video's generated music (`video.soundtrack`), its settings under "music" in the manifest
    frames.log        one line per finished frame, "INDEX SHA256", appended after the frame is in place
    frame_00000.png   the frames, each written to a per-process temporary name and renamed into place
    overlap_00003.npy the video method only: the blended latents window 3 leaves for window 4 (the frames they
                      share, not final until window 4 is done; float32), the latest kept
    overlaps.log      one line per saved overlap, "WINDOW SHA256"
    render.lock       held (an OS lock, released by the kernel when its process dies) by the one render at work

Guarantees, each tested in tests/video/test_frames.py:
- a frame is reused only if the log records it and its bytes still hash to the logged value; a frame that is
  missing, truncated, edited or unlogged is rendered again (so is a saved overlap: tests/video/test_windows.py);
- frames are never reused across settings: a changed setting stops the render with a one-line error naming it
  (or, with overwrite, deletes every frame first); frames in a folder without a manifest are deleted;
- one render per folder at a time: a second one stops with a one-line error naming the owner's pid; the lock
  of a killed process is free at once;
- nothing is ever half-written under a final name (frames, manifest, mp4: temporary name, then `os.replace`).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from pathlib import Path

from PIL import Image

from ..checks import BendlabValueError
from ..files import file_sha256, png_bytes, write_bytes_atomic, write_text_atomic

MANIFEST, LOG, LOCK, OVERLAPS = "manifest.json", "frames.log", "render.lock", "overlaps.log"
# a setting recorded only when it is not what was done before it existed -> a setting recorded with it since
# before: where both manifests hold the second, a missing first is its old value (the video method's "noise" is
# recorded unless "random": a folder of random noise resumes, and refuses frames of another noise either way)
IMPLIED = {"noise": "window"}
# image formats an output may have (and Pillow can write)
IMAGE_SUFFIXES = tuple(e for e in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
                       if Image.registered_extensions().get(e) in Image.SAVE)
_LOG_LINE = re.compile(r"(\d+) ([0-9a-f]{64})")


class RenderFolderError(BendlabValueError):
    """A render folder that cannot be used as asked (busy, other settings, corrupt manifest)."""


def frames_dir(out: str | Path) -> Path:
    """The render folder of an output video: `song.mp4` -> `song.frames/`."""
    out = Path(out)
    return out.with_name(out.stem + ".frames")


def check_folder(path: Path) -> None:
    """A render folder that can be used: absent (it is created), or a folder this process may write in (a
    read-only one would fail only when the first frame is written, after the model loaded)."""
    if path.exists() and not path.is_dir():
        raise RenderFolderError(f"render folder {str(path)!r} is not a folder (a file has its name); accepted: "
                                "move that file away, or choose another --out")
    if path.is_dir() and not os.access(path, os.W_OK):
        raise RenderFolderError(f"render folder {str(path)!r} is not writable; accepted: a folder you may write "
                                "in (change its permissions, or choose another --out)")


class RenderFolder:
    """The frames of one video and what makes them trustworthy; use as a context manager (it holds the lock):

        with RenderFolder(frames_dir(out)) as folder:
            folder.open(settings, overwrite=False)   # check or record the manifest
            for i in folder.missing(n): folder.write(i, render(i))
            paths = folder.frames(n)                  # verified, in order, for the muxer
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._done: dict[int, str] = {}  # verified frame index -> sha256
        self._hashed = False  # whether the frames on disk were checked against the log (once per render)

    # -------------------------------------------------------------------------------------- lock
    def __enter__(self) -> "RenderFolder":
        import fcntl
        check_folder(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RenderFolderError(f"render folder {str(self.path)!r} is in use by {owner}; accepted: one render "
                                    "per folder at a time (wait for it, stop it, or choose another --out)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
        self._lock_fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock; the file stays (removing it would race a new owner)
            self._lock_fd = None

    def _check_locked(self) -> None:
        if self._lock_fd is None:
            raise RuntimeError("use the render folder inside `with RenderFolder(...)`")

    # -------------------------------------------------------------------------------------- manifest
    def read_manifest(self) -> dict | None:
        p = self.path / MANIFEST
        if not p.is_file():
            return None
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RenderFolderError(f"manifest {str(p)!r} is corrupt ({e}); accepted: delete the folder or use "
                                    "--overwrite to start again") from None
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise RenderFolderError(f"manifest {str(p)!r} is not a bendlab render manifest; accepted: delete the "
                                    "folder or use --overwrite to start again")
        return data["settings"]

    def open(self, settings: dict, overwrite: bool = False) -> bool:
        """Record `settings` (every value that changes pixels) or check they match the recorded ones; returns
        whether the folder's frames were deleted (what else the folder holds from other settings, a generated
        soundtrack, goes with them: `video.soundtrack`).

        Entries the manifest lacks are added (settings become known in stages: the model's weights once it is
        loaded). A changed entry raises a one-line error naming it, or with overwrite deletes every frame.
        Frames of a folder without a manifest are deleted: nothing says what made them."""
        self._check_locked()
        settings = json.loads(json.dumps(settings, default=str))  # compare as stored (tuples become lists)
        try:
            old = self.read_manifest()
        except RenderFolderError:
            if not overwrite:
                raise
            old = None
        changed = [] if old is None else sorted(
            {k for k in settings if k in old and old[k] != settings[k]}
            | {k for k, w in IMPLIED.items() if w in old and w in settings and old.get(k) != settings.get(k)})
        if changed and not overwrite:
            raise RenderFolderError(
                f"render folder {str(self.path)!r} holds frames made with other settings ({', '.join(changed)} "
                "changed); accepted: the same settings to resume, or overwrite=True / --overwrite to start again")
        cleared = old is None or bool(changed)
        if cleared:
            self._clear()
            old = {}
        if any(k not in old for k in settings):
            write_text_atomic(self.path / MANIFEST, json.dumps({"settings": {**old, **settings}}, indent=1) + "\n")
        if not self._hashed:  # settings arrive in stages (spec, then weights): the frames are hashed once
            self._done, self._hashed = self._verified(), True
        return cleared

    def _clear(self) -> None:
        for f in [*self.path.glob("frame_*.png"), *self.path.glob("overlap_*.npy")]:
            f.unlink()
        (self.path / LOG).unlink(missing_ok=True)
        (self.path / OVERLAPS).unlink(missing_ok=True)
        self._done, self._hashed = {}, True

    # -------------------------------------------------------------------------------------- frames
    def frame_path(self, i: int) -> Path:
        return self.path / f"frame_{i:05d}.png"

    def _verified(self) -> dict[int, str]:
        """Logged frames whose bytes still match their logged hash (the last entry of a frame wins)."""
        log = self.path / LOG
        logged: dict[int, str] = {}
        if log.is_file():
            for line in log.read_text(errors="replace").splitlines():
                m = _LOG_LINE.fullmatch(line.strip())
                if m:  # a torn last line (killed mid-append) does not match and is ignored
                    logged[int(m.group(1))] = m.group(2)
        return {i: h for i, h in logged.items() if self.frame_path(i).is_file()
                and file_sha256(self.frame_path(i)) == h}

    def is_done(self, i: int) -> bool:
        return i in self._done

    def sha(self, i: int) -> str:
        """The sha256 of verified frame i (what names the in-between frames made from it: `tween`)."""
        return self._done[i]

    def missing(self, n: int) -> list[int]:
        """Indices in 0..n-1 with no verified frame."""
        return [i for i in range(n) if i not in self._done]

    def write(self, i: int, img: Image.Image | bytes) -> Path:
        """Put frame i (an image, or PNG bytes from a worker) in place atomically and log its hash."""
        self._check_locked()
        data = img if isinstance(img, bytes) else png_bytes(img)
        p = self.frame_path(i)
        write_bytes_atomic(p, data)
        h = hashlib.sha256(data).hexdigest()
        with open(self.path / LOG, "a") as f:
            f.write(f"{i} {h}\n")
        self._done[i] = h
        return p

    # -------------------------------------------------------------------------------------- windows
    def overlap_path(self, j: int) -> Path:
        return self.path / f"overlap_{j:05d}.npy"

    def write_overlap(self, j: int, data: bytes) -> Path:
        """Keep what window j leaves for window j + 1 (`video.joint`: its blended overlap, as .npy bytes),
        atomically, its hash logged; the overlaps of earlier windows are removed (a render resumes from the
        latest; a later one, kept by a render that went further, stays as true as it was)."""
        self._check_locked()
        p = self.overlap_path(j)
        write_bytes_atomic(p, data)
        with open(self.path / OVERLAPS, "a") as f:
            f.write(f"{j} {hashlib.sha256(data).hexdigest()}\n")
        for old in self.path.glob("overlap_*.npy"):
            m = re.fullmatch(r"overlap_(\d+)\.npy", old.name)
            if m and int(m.group(1)) < j:
                old.unlink(missing_ok=True)
        return p

    def overlap(self, j: int) -> bytes | None:
        """The bytes window j left (`write_overlap`) if the log records them and they still hash to the logged
        value, else None (the render goes back a window)."""
        p, log = self.overlap_path(j), self.path / OVERLAPS
        if not p.is_file() or not log.is_file():
            return None
        logged = None
        for line in log.read_text(errors="replace").splitlines():
            m = _LOG_LINE.fullmatch(line.strip())
            if m and int(m.group(1)) == j:
                logged = m.group(2)
        data = p.read_bytes()
        return data if logged == hashlib.sha256(data).hexdigest() else None

    def frames(self, n: int) -> list[Path]:
        """The verified frames 0..n-1 in order (for the muxer); a one-line error if one is missing."""
        missing = self.missing(n)
        if missing:
            raise RenderFolderError(f"render folder {str(self.path)!r} lacks a verified frame {missing[0]} "
                                    f"({len(missing)} of {n} missing); run the render again to finish it")
        return [self.frame_path(i) for i in range(n)]
