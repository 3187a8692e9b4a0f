"""OSC in for live controls (python-osc), writing `live.controls.Controls`.

OSC (`OscServer`, `--osc HOST:PORT`, 127.0.0.1 unless told): the addresses of `OSC_ADDRESSES`. Messages are
handled one at a time, in the order they arrive (a fader's last value wins). Anything malformed (a datagram that
is not OSC, an unknown address, a wrong type or argument count, a string over MAX_PROMPT_CHARS) is a warning.

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import math
import re
import threading

from ..checks import BendlabValueError, check_host_port, check_int, is_number
from .controls import FIELDS, MAX_PROMPT_CHARS, Controls, short_value, warn_safely

OSC_ADDRESSES = {
    "/bendlab/prompt": "a string: the prompt rendered from now on (a new one is added to the session's prompts, "
                       f"one seen before is reused; at most {MAX_PROMPT_CHARS} characters)",
    "/bendlab/mapping/N/low": "a number: mapping N's low (its parameter at feature 0), valid for its operator",
    "/bendlab/mapping/N/high": "a number: mapping N's high (its parameter at feature 1), valid for its operator",
    "/bendlab/mapping/N/layer": "a number (rounded): the layer mapping N bends at, 0..steps",
    "/bendlab/mapping/N/param": "a number 0..1 replacing mapping N's normalised audio feature (held until the "
                                "next); a negative number or nil gives the mapping back to the audio",
}
_MAPPING_ADDRESS = re.compile(r"/bendlab/mapping/(-?\d+)/(low|high|layer|param)")


def parse_osc(text: str) -> tuple[str, int]:
    """--osc HOST:PORT or PORT (host 127.0.0.1) as (host, port); port 0 asks for a free one. One line if bad.

    Notebook: notebooks/08_live.ipynb
    """
    return check_host_port("--osc", text)


def _server_class():
    from pythonosc import osc_packet
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    class Checked(Dispatcher):
        """python-osc's dispatcher, but a packet that does not parse is a warning rather than silence."""

        def __init__(self, controls: Controls):
            super().__init__(strict_timing=False)  # a bundle's time tag never makes the server sleep
            self.controls = controls

        def call_handlers_for_packet(self, data, client_address):
            try:
                osc_packet.OscPacket(data)
            except osc_packet.ParseError as e:
                warn_safely(self.controls, f"OSC packet of {len(data)} bytes from {client_address[0]} does not "
                             f"parse ({' '.join(str(e).split())[:80]}); ignored", "osc")
                return []
            return super().call_handlers_for_packet(data, client_address)

    class Server(BlockingOSCUDPServer):
        """One thread, messages in arrival order; a datagram of any UDP size is read whole (not cut at 8 kB)."""
        max_packet_size = 65535

        def verify_request(self, request, client_address):
            ok = super().verify_request(request, client_address)
            if not ok:
                warn_safely(self.dispatcher.controls, f"UDP datagram of {len(request[0])} bytes from "
                             f"{client_address[0]} is not an OSC message or bundle; ignored", "osc")
            return ok

        def handle_error(self, request, client_address):  # a handler's fault: a warning, the server serves on
            import sys
            e = sys.exc_info()[1]
            warn_safely(self.dispatcher.controls, f"OSC message from {client_address[0]} failed "
                         f"({type(e).__name__}: {' '.join(str(e).split())[:80]})", "osc")

    return Checked, Server


class OscServer:
    """An OSC server on UDP host:port (port 0: a free one; `address` is the one bound) in a daemon thread,
    applying the messages of `OSC_ADDRESSES` to `controls`; malformed messages are warnings. close() when done.

    Notebook: notebooks/08_live.ipynb
    """

    def __init__(self, controls: Controls, host: str = "127.0.0.1", port: int = 0):
        Checked, Server = _server_class()
        self.controls = controls
        n = len(controls.mappings)
        dispatcher = Checked(controls)
        dispatcher.map("/bendlab/prompt", self._prompt)
        for j in range(n):
            for field in FIELDS:
                dispatcher.map(f"/bendlab/mapping/{j}/{field}", self._mapping, j, field)
        dispatcher.set_default_handler(self._unknown)
        try:
            self._server = Server((host, check_int("OSC port", port, 0, 65535)), dispatcher)
        except OSError as e:
            raise BendlabValueError(f"OSC address {host}:{port} cannot be served ({e.strerror or e}); accepted: a "
                                    "free UDP port on a local address") from None
        self.address: tuple[str, int] = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"bendlab OSC {self.address[0]}:{self.address[1]}", daemon=True)
        self._thread.start()

    def _received(self, address: str, args) -> None:
        self.controls.log_event("osc", address=address, args=[short_value(a) for a in args], source="osc")

    def _refuse(self, address: str, why: str) -> None:
        self.controls.warn(f"OSC {address}: {why}; ignored", "osc")

    def _prompt(self, address: str, *args) -> None:
        self._received(address, args)
        if len(args) != 1 or not isinstance(args[0], str):
            return self._refuse(address, f"arguments {[short_value(a) for a in args]!r:.80}; accepted: "
                                         f"{OSC_ADDRESSES['/bendlab/prompt']}")
        try:
            self.controls.set_prompt(args[0], source="osc")
        except BendlabValueError as e:
            self._refuse(address, str(e))

    def _mapping(self, address: str, fixed: list, *args) -> None:
        self._received(address, args)
        self._apply(address, fixed[0], fixed[1], args)

    def _apply(self, address: str, j: int, field: str, args) -> None:
        accepted = OSC_ADDRESSES[f"/bendlab/mapping/N/{field}"]
        if len(args) != 1 or not (is_number(args[0]) or (field == "param" and args[0] is None)):
            return self._refuse(address, f"arguments {[short_value(a) for a in args]!r:.80}; accepted: {accepted}")
        value = args[0]
        if field == "layer" and math.isfinite(value):
            value = round(value)
        elif field == "param" and (value is None or value < 0):
            value = None
        try:
            self.controls.set(j, field, value, source="osc")
        except BendlabValueError as e:
            self._refuse(address, str(e))

    def _unknown(self, address: str, *args) -> None:
        self._received(address, args)
        match = _MAPPING_ADDRESS.fullmatch(address)
        if match:  # a mapping that does not exist: set() says which exist
            return self._apply(address, int(match[1]), match[2], args)
        self._refuse(address, f"unknown address; accepted: {', '.join(OSC_ADDRESSES)}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Stop serving and free the port (a second close does nothing)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        thread.join(timeout=2)
