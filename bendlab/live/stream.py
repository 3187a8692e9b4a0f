"""The live frames as an MJPEG stream over HTTP, on 127.0.0.1 unless told: a source for OBS (Media Source, or a
Browser Source on the page), VLC (Media > Open Network Stream) or any browser.

    http://HOST:PORT/            a page showing the stream full-window (black background)
    http://HOST:PORT/stream.mjpg multipart/x-mixed-replace JPEG frames, each sent as soon as it is shown
    http://HOST:PORT/frame.jpg   the newest frame alone

Frames are upscaled (nearest neighbour, the shipped model's 64 px to `size`) before JPEG encoding.

The stream carries no frame rate (a frame is sent when it is shown), so ffmpeg assumes 25 fps and a recording
plays too fast (10 s of a 4 fps session became 1.5 s). Record it with each frame stamped when it arrives (tested
with ffmpeg 9.0.2; `-fps_mode vfr` replaces `-vsync vfr`, which ffmpeg 9 no longer accepts; q or Ctrl-C stops it):

    ffmpeg -use_wallclock_as_timestamps 1 -f mjpeg -i http://127.0.0.1:PORT/stream.mjpg \\
           -c:v libx264 -fps_mode vfr -enc_time_base:v 1/1000 out.mp4

(`-enc_time_base:v 1/1000` keeps the arrival times to the millisecond; without it they are rounded to 1/25 s.)

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from ..checks import BendlabValueError, check_int

PAGE = (b"<!doctype html><title>bendlab live</title><style>"  # the whole window, no scrollbars, pixels kept sharp
        b"html,body{margin:0;height:100%;overflow:hidden;background:#000}"
        b"img{display:block;width:100vw;height:100vh;max-width:100vw;max-height:100vh;object-fit:contain;"
        b"image-rendering:pixelated}</style><img src='/stream.mjpg' alt='bendlab live'>")
BOUNDARY = "bendlabframe"


class MjpegServer:
    """Serves the newest frame (`show(image)`) to every client; `address` is the (host, port) bound."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8090, size: int = 512):
        self.size = check_int("view size", size, 16, 4096, accepted="pixels")
        self._jpeg: bytes | None = None
        self._cond = threading.Condition()
        self._closed = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the live loop prints its own status
                pass

            def do_GET(self):
                if self.path in ("/", "/index.html"):
                    self._send(200, "text/html", PAGE)
                elif self.path == "/frame.jpg":
                    jpeg = server._jpeg
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet")
                    else:
                        self._send(200, "image/jpeg", jpeg)
                elif self.path == "/stream.mjpg":
                    self.send_response(200)
                    self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    last = None
                    try:
                        while not server._closed:
                            jpeg = server.wait(1.0, last)
                            if jpeg is None or jpeg is last:
                                continue
                            last = jpeg
                            self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                             f"{len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                    except (BrokenPipeError, ConnectionResetError):
                        return
                else:
                    self._send(404, "text/plain", b"not found: try / or /stream.mjpg")

            def _send(self, code, kind, body):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise BendlabValueError(f"cannot serve the stream on {host}:{port} ({e.strerror}); accepted: a free port "
                                    "(e.g. --serve 0 picks one)") from None
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="bendlab-mjpeg")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}/"

    def show(self, image: Image.Image) -> None:
        """Encode the frame and hand it to every client."""
        scale = max(1, self.size // max(image.size))
        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=90)
        with self._cond:
            self._jpeg = buf.getvalue()
            self._cond.notify_all()

    def wait(self, timeout: float, last: bytes | None = None) -> bytes | None:
        """The newest frame, waiting up to `timeout` s for one newer than `last`."""
        with self._cond:
            if self._jpeg is last or self._jpeg is None:
                self._cond.wait(timeout)
            return self._jpeg

    def close(self) -> None:
        self._closed = True
        with self._cond:
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
