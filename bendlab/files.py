"""Files written so that nothing half-written ever stands under a final name (a per-process temporary name,
then `os.replace`), content hashes, and output paths checked before any work. The render folder
(`bendlab.frames`), the figures and the features CSV all write through these.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image
from .checks import BendlabValueError


def temp_name(path: Path) -> Path:
    """A temporary sibling of `path`, unique to this process (two processes never share one)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.part{path.suffix}")


def save_atomic(img: Image.Image, path: str | Path) -> Path:
    """Write an image under `path` via a per-process temporary file and `os.replace`: a reader (or a process
    killed mid-write) never sees a half-written file under the final name. The format follows the suffix."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        img.save(tmp, format=Image.registered_extensions()[path.suffix.lower()])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` under `path` via a per-process temporary file and `os.replace` (as `save_atomic`)."""
    tmp = temp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def savefig_atomic(fig, path: str | Path, **kwargs) -> Path:
    """Save a matplotlib figure as `write_bytes_atomic` does (the format follows the suffix)."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix[1:], **kwargs)
    write_bytes_atomic(path, buf.getvalue())
    return path


def png_bytes(img: Image.Image) -> bytes:
    """A frame encoded as PNG in memory: the bytes the render folder writes and logs (and Ray workers send)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_output(out: str | Path, suffixes=(".mp4",)) -> Path:
    """An output file path, checked before any work: an accepted suffix, not a folder, its folder exists and is
    writable."""
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise BendlabValueError(f"output {out!r} is not a file path; accepted: e.g. video{suffixes[0]}")
    out = Path(out)
    if out.is_dir():
        raise BendlabValueError(f"output {str(out)!r} is a folder; accepted: a file path such as "
                                f"{out / ('video' + suffixes[0])}")
    if out.suffix.lower() not in suffixes:
        raise BendlabValueError(f"output {str(out)!r} has suffix {out.suffix or '(none)'!r}; accepted: "
                                f"{', '.join(suffixes)}")
    folder = out.parent
    if not folder.is_dir():
        raise BendlabValueError(f"output folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise BendlabValueError(f"output folder {str(folder)!r} is not writable")
    return out
