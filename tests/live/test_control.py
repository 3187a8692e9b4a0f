"""Live controls (bendlab.live.controls, midi_in, osc) with the real parts: a JACK server (dummy driver) and a
python-rtmidi virtual port send CC sweeps, MIDI clock and notes; python-osc's client sends OSC over UDP on
127.0.0.1."""

import os
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

from bendlab.checks import BendlabValueError
from bendlab.live import (CLOCK_TIMEOUT, MAX_PROMPT_CHARS, MIDI_POLL, OSC_ADDRESSES, ControlWarning, Controls,
                          MidiInput, OscServer, check_midi_port, list_midi, parse_cc, parse_osc)
from bendlab.mapping import Mapping

pytestmark = pytest.mark.filterwarnings("ignore::bendlab.live.controls.ControlWarning")


class Log(list):
    """The events Controls logs, from any thread."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def __call__(self, event):
        with self.lock:
            self.append(event)

    def of(self, kind, **match):
        with self.lock:
            return [e for e in self if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]


def wait_for(predicate, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def make_controls(bpm=90.0, cc_map=None, n_mappings=2):
    t0 = time.monotonic()
    log = Log()
    mappings = [Mapping(feature="rms", op="rotate1", layer=8, low=-1.0, high=1.0) for _ in range(n_mappings)]
    c = Controls(mappings, ["a piano"], n_layers=10, clock=lambda: time.monotonic() - t0, log=log, bpm=bpm,
                 cc_map=cc_map)
    return c, log


def one_line(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text and text
    return text


# ---------------------------------------------------------------------------------------------------- Python
def test_set_and_prompt_change_the_snapshot_and_are_logged():
    c, log = make_controls()
    c.set(0, "low", 0.5)
    c.set(1, "high", 3.0, source="test")
    c.set(0, "layer", 10)
    c.set(1, "param", 0.25)
    s = c.snapshot()
    assert s.mappings[0].low == 0.5 and s.mappings[1].high == 3.0 and s.mappings[0].layer == 10
    assert s.mappings[1].param == 0.25 and s.mappings[0].param is None
    assert c.mappings[0].layer == 10 and c.mappings[0].low == 0.5
    assert [e["field"] for e in log.of("set")] == ["low", "high", "layer", "param"]
    assert log.of("set", field="high")[0]["source"] == "test"
    calls = []
    c.on_prompt(lambda i, prompts: calls.append((i, prompts)))
    assert c.set_prompt("a cat") == 1
    assert c.set_prompt("a piano") == 0
    assert c.set_prompt("a cat") == 1
    assert c.snapshot().prompts == ("a piano", "a cat") and c.snapshot().prompt == 1
    assert calls == [(1, ("a piano", "a cat")), (0, ("a piano", "a cat")), (1, ("a piano", "a cat"))]
    assert [e["index"] for e in log.of("prompt")] == [1, 0, 1] and all(e["time"] >= 0 for e in log)
    c.set(1, "param", None)
    assert c.snapshot().mappings[1].param is None


def test_a_layer_none_is_the_papers_depth_and_without_clock_beats_follow_bpm():
    c = Controls([Mapping(layer=None)], ["x"], n_layers=10, clock=lambda: 2.0, bpm=90)
    s = c.snapshot()
    assert s.mappings[0].layer == 8  # 40 of 50 -> 8 of 10
    assert s.tempo == 90 and s.beats == pytest.approx(3.0) and c.snapshot(4.0).beats == pytest.approx(6.0)
    assert s.velocity == 0 and s.onset == 0 and s.cc == {}


@pytest.mark.parametrize("call, says", [
    (lambda c: c.set(2, "low", 0.0), "mapping 2 is not an integer in 0..1"),
    (lambda c: c.set(-1, "low", 0.0), "mapping -1"),
    (lambda c: c.set(0, "gain", 0.0), "unknown field 'gain'"),
    (lambda c: c.set(0, "low", float("nan")), "not a finite number"),
    (lambda c: c.set(0, "low", "1"), "not a finite number"),
    (lambda c: c.set(0, "low", 1.0), "low != high"),  # high is 1
    (lambda c: c.set(0, "high", 1e39), "float32"),  # the operator's own domain
    (lambda c: c.set(0, "layer", 11), "mapping 0 layer 11 is not an integer in 0..10"),
    (lambda c: c.set(0, "layer", 2.0), "not an integer"),
    (lambda c: c.set(0, "layer", True), "not an integer"),
    (lambda c: c.set(0, "param", 1.5), "mapping 0 param 1.5 is not >= 0 and <= 1"),
    (lambda c: c.set(0, "param", -0.1), "param"),
    (lambda c: c.set_prompt(""), "non-empty string"),
    (lambda c: c.set_prompt(3), "non-empty string"),
    (lambda c: c.set_prompt("x" * (MAX_PROMPT_CHARS + 1)), "too long"),
])
def test_bad_values_are_refused_in_one_line_and_change_nothing(call, says):
    c, log = make_controls()
    before = c.snapshot()
    with pytest.raises(BendlabValueError) as e:
        call(c)
    assert says in one_line(e)
    after = c.snapshot()
    assert (after.mappings, after.prompts, after.prompt) == (before.mappings, before.prompts, before.prompt)
    assert not log.of("set") and not log.of("prompt")


def test_invert_range_through_zero_is_refused_as_mapping_refuses_it():
    c = Controls([Mapping(op="invert", low=0.5, high=2.0, layer=1)], ["x"], 10, clock=lambda: 0.0)
    with pytest.raises(BendlabValueError, match="passes through r = 0") as e:
        c.set(0, "low", -1.0)
    one_line(e)


def test_a_vae_mapping_has_no_layer_to_set():
    vae = Mapping(op="multiply", low=0.5, high=2.0, target="vae:decoder.up_blocks.1")
    c = Controls([vae], ["x"], 10, clock=lambda: 0.0)
    assert c.snapshot().mappings[0].layer == 10
    with pytest.raises(BendlabValueError, match="no layer") as e:
        c.set(0, "layer", 3)
    one_line(e)


def test_parse_cc():
    assert parse_cc("1=0.high:0:6.2832", 2, 10) == (1, parse_cc(" 1 = 0.high:0:6.2832 ", 2, 10)[1])
    cc, t = parse_cc("1=0.high:0:6.2832", 2, 10)
    assert cc == 1 and (t.mapping, t.field, t.low, t.high) == (0, "high", 0.0, 6.2832)
    assert t.value(0) == 0.0 and t.value(127) == 6.2832
    cc, t = parse_cc("7=1.layer", 2, 10)
    assert (cc, t.mapping, t.low, t.high) == (7, 1, 0.0, 10.0) and t.value(127) == 10 and t.value(64) == 5
    assert parse_cc("7=1.layer:10:2", 2, 10)[1].value(0) == 10
    assert parse_cc("74=0.param", 2, 10)[1].value(127) == 1.0
    assert parse_cc("2=0.low:6.2832:-1", 2, 10)[1].low == 6.2832


@pytest.mark.parametrize("text, says", [
    ("", "not in the format"), ("x", "not in the format"), ("1=0", "not in the format"), ("1:0.high", "format"),
    ("200=0.high:0:1", "CC 200 is not in 0..127"), ("1=2.high:0:1", "mapping 2 is not in 0..1"),
    ("1=0.gain:0:1", "unknown field 'gain'"), ("1=0.high", "high needs a range LO:HI"),
    ("1=0.param:0:1", "param takes no range"), ("1=0.high:a:b", "is not two numbers"),
    ("1=0.high:1:1", "two different finite numbers"), ("1=0.high:inf:1", "finite"),
    ("1=0.layer:0:99", "outside 0..10"), ("1=0.high:0:1:2", "format"),
])
def test_parse_cc_refuses_in_one_line(text, says):
    with pytest.raises(BendlabValueError) as e:
        parse_cc(text, 2, 10)
    line = one_line(e)
    assert says in line and repr(text) in line and "CC=J.FIELD[:LO:HI]" in line


def test_parse_osc():
    assert parse_osc("9000") == ("127.0.0.1", 9000)
    assert parse_osc("0.0.0.0:9001") == ("0.0.0.0", 9001)
    assert parse_osc("localhost:0") == ("localhost", 0)
    assert parse_osc("[::1]:9000") == ("::1", 9000)
    for bad in ("", "  ", "host:", ":99999", "abc", "a b:9000", "127.0.0.1:-1", "127.0.0.1:9e3", None):
        with pytest.raises(BendlabValueError) as e:
            parse_osc(bad)
        assert "HOST:PORT" in one_line(e)


# ---------------------------------------------------------------------------------------------------- OSC
@pytest.fixture()
def osc():
    c, log = make_controls()
    server = OscServer(c, "127.0.0.1", 0)
    from pythonosc.udp_client import SimpleUDPClient
    client = SimpleUDPClient(*server.address)
    yield c, log, server, client
    server.close()


def sent(log, client, address, value):
    """Send one message and wait until the server has handled it (its "osc" event is logged)."""
    n = len(log.of("osc", address=address))
    client.send_message(address, value)
    assert wait_for(lambda: len(log.of("osc", address=address)) > n), f"{address} never arrived"


def test_osc_addresses_change_the_snapshot(osc):
    c, log, server, client = osc
    assert server.address[0] == "127.0.0.1" and server.address[1] > 0
    assert {"/bendlab/prompt", "/bendlab/mapping/N/low", "/bendlab/mapping/N/high",
            "/bendlab/mapping/N/layer"} <= set(OSC_ADDRESSES)
    sent(log, client, "/bendlab/prompt", "a cathedral")
    assert c.snapshot().prompt == 1 and c.snapshot().prompts[1] == "a cathedral"
    event = log.of("prompt")[-1]
    assert event["index"] == 1 and event["source"] == "osc" and event["time"] > 0
    sent(log, client, "/bendlab/mapping/0/low", 0.25)
    sent(log, client, "/bendlab/mapping/1/high", 4)  # an int is a number too
    sent(log, client, "/bendlab/mapping/0/layer", 3.6)  # rounded
    sent(log, client, "/bendlab/mapping/1/param", 0.75)
    m = c.snapshot().mappings
    assert (m[0].low, m[1].high, m[0].layer, m[1].param) == (0.25, 4.0, 4, 0.75)
    sent(log, client, "/bendlab/mapping/1/param", -1)  # back to the audio
    assert c.snapshot().mappings[1].param is None
    sent(log, client, "/bendlab/mapping/*/high", 2.5)  # an OSC address pattern reaches every mapping
    assert [m.high for m in c.snapshot().mappings] == [2.5, 2.5]
    assert not log.of("warning")


def test_osc_messages_arrive_in_order(osc):
    c, log, server, client = osc
    for k in range(200):  # a fader: the last value sent is the one that stays
        client.send_message("/bendlab/mapping/0/high", 1.0 + k / 100)
    assert wait_for(lambda: len(log.of("set")) == 200)
    sent_values = [float(np.float32(1.0 + k / 100)) for k in range(200)]  # OSC numbers are float32
    assert [e["value"] for e in log.of("set")] == sent_values
    assert c.snapshot().mappings[0].high == sent_values[-1]


@pytest.mark.parametrize("address, value, says", [
    ("/bendlab/prompt", 42, "/bendlab/prompt: arguments [42]"),
    ("/bendlab/prompt", [], "arguments []"),
    ("/bendlab/prompt", ["a", "b"], "arguments ['a', 'b']"),
    ("/bendlab/prompt", "", "non-empty string"),
    ("/bendlab/prompt", "x" * 65000, "prompt of 65000 characters is too long"),  # near UDP's largest datagram
    ("/bendlab/mapping/0/low", "abc", "arguments ['abc']"),
    ("/bendlab/mapping/0/low", True, "arguments [True]"),
    ("/bendlab/mapping/0/high", float("nan"), "not a finite number"),
    ("/bendlab/mapping/0/low", 1.0, "low != high"),
    ("/bendlab/mapping/0/layer", 99, "layer 99 is not an integer in 0..10"),
    ("/bendlab/mapping/0/layer", float("inf"), "not an integer"),
    ("/bendlab/mapping/0/param", 2.0, "param 2.0 is not >= 0 and <= 1"),
    ("/bendlab/mapping/0/param", b"\x00" * 10, "arguments ['<blob of 10 bytes>']"),
    ("/bendlab/mapping/5/low", 0.1, "mapping 5 is not an integer in 0..1"),
    ("/bendlab/mapping/x/low", 0.1, "unknown address"),
    ("/bendlab/nope", 1, "unknown address; accepted: /bendlab/prompt"),
    ("/", 1, "unknown address"),
])
def test_malformed_osc_is_a_warning_and_the_server_serves_on(osc, address, value, says):
    c, log, server, client = osc
    before = c.snapshot()
    sent(log, client, address, value)
    warnings = log.of("warning")
    assert len(warnings) == 1 and says in warnings[0]["message"] and warnings[0]["source"] == "osc"
    assert "\n" not in warnings[0]["message"] and len(warnings[0]["message"]) < 600
    after = c.snapshot()
    assert (after.mappings, after.prompts) == (before.mappings, before.prompts)
    sent(log, client, "/bendlab/mapping/0/low", 0.5)  # the next good message is served
    assert c.snapshot().mappings[0].low == 0.5
    assert all(len(str(e)) < 1000 for e in log)  # a huge string is not copied into the log


@pytest.mark.parametrize("data, says", [
    (b"garbage\x00\x01\x02", "is not an OSC message or bundle"),
    (bytes(range(256)) * 4, "is not an OSC message or bundle"),
    (b"/bendlab/prompt\x00,s\x00\x00ab", "does not parse"),  # looks like OSC, is cut short
    (b"#bundle\x00\x00\x00", "does not parse"),
    (b"/bendlab/mapping/0/low\x00\x00,i\x00\x00\x01\x02\x03", "does not parse"),  # an int of 3 bytes
    (b"/bendlab/mapping/0/low\x00\x00,q\x00\x00\x00\x00\x00\x00", "arguments []"),  # an unknown type
])
def test_bytes_that_are_not_osc_are_a_warning(osc, data, says):
    c, log, server, client = osc
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, server.address)
    assert wait_for(lambda: log.of("warning"))
    assert says in log.of("warning")[0]["message"]
    sent(log, client, "/bendlab/mapping/0/low", 0.5)
    assert c.snapshot().mappings[0].low == 0.5


def test_random_bytes_never_stop_the_server(osc):
    import random
    c, log, server, client = osc
    rng = random.Random(19)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(200):
            head = rng.choice([b"", b"/", b"/bendlab/", b"/bendlab/prompt\x00,", b"#bundle\x00"])
            s.sendto(head + rng.randbytes(rng.randrange(0, 300)), server.address)
    sent(log, client, "/bendlab/prompt", "still here")
    assert c.snapshot().prompts[-1] == "still here" and len(log.of("warning")) > 100


def test_a_failing_log_or_prompt_hook_never_stops_the_server():
    c, log = make_controls()
    broken = threading.Event()

    def flaky(event):
        if broken.is_set():
            raise OSError("disk full")
        log(event)

    c._log = flaky
    c.on_prompt(lambda i, prompts: 1 / 0 if prompts[i] == "boom" else None)
    with OscServer(c, "127.0.0.1", 0) as server:
        from pythonosc.udp_client import SimpleUDPClient
        client = SimpleUDPClient(*server.address)
        sent(log, client, "/bendlab/prompt", "boom")
        assert "ZeroDivisionError" in log.of("warning")[-1]["message"] and c.snapshot().prompts[-1] == "boom"
        broken.set()
        with pytest.warns(ControlWarning, match="the log failed: OSError: disk full"):
            client.send_message("/bendlab/mapping/0/low", 0.5)
            time.sleep(0.3)
        broken.clear()
        sent(log, client, "/bendlab/mapping/0/low", 0.25)
        assert c.snapshot().mappings[0].low == 0.25
    server.close()  # a second close does nothing


def test_a_taken_osc_port_is_refused_in_one_line():
    c, _ = make_controls()
    server = OscServer(c, "127.0.0.1", 0)
    try:
        with pytest.raises(BendlabValueError, match="cannot be served") as e:
            OscServer(c, *server.address)
        one_line(e)
    finally:
        server.close()


# ---------------------------------------------------------------------------------------------------- MIDI
@pytest.fixture(scope="module")
def jack():
    """A JACK server with the dummy driver (no sound card), under its own name; stopped by pid at the end."""
    if shutil.which("jackd") is None:
        pytest.skip("jackd is not installed (Debian jackd2): the MIDI tests need a JACK server")
    import rtmidi
    if rtmidi.API_UNIX_JACK not in rtmidi.get_compiled_api():
        pytest.skip("python-rtmidi was built without JACK")
    name = f"bendlab-test-{os.getpid()}"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    # -S (synchronous): a cycle waits for late clients (up to -t ms) instead of skipping them, so a loaded CI
    # machine without real-time scheduling delays MIDI rather than dropping it; -p 128: 2.7 ms cycles (clock timing)
    proc = subprocess.Popen(["jackd", "-n", name, "-S", "-t", "5000", "--no-realtime", "-d", "dummy", "-r", "48000",
                             "-p", "128"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up():
        try:
            rtmidi.MidiIn(rtapi=rtmidi.API_UNIX_JACK).delete()
            return True
        except rtmidi.RtMidiError:
            return False

    try:
        if not wait_for(lambda: proc.poll() is not None or up(), timeout=15) or proc.poll() is not None:
            pytest.fail(f"jackd did not start: {proc.stderr.read().decode(errors='replace')[-300:]!r}"
                        if proc.poll() is not None else "jackd did not start within 15 s")
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Sender:
    """A python-rtmidi virtual output port on JACK: what a controller or a DAW's MIDI clock looks like."""

    def __init__(self, name):
        import rtmidi
        self.name = name
        self.out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK)
        self.out.open_virtual_port(name)

    def send(self, *data):
        self.out.send_message(list(data))

    def connect(self, log):
        """Wait until the input hears this port (a JACK connection takes effect at a later cycle), then clear the
        log: a system exclusive message is logged and changes nothing."""
        def heard():
            self.send(0xF0, 0x7D, 0x19, 0xF7)
            return wait_for(lambda: log.of("midi", message={"type": "sysex", "data": [0x7D, 0x19]}), timeout=0.2)

        assert wait_for(heard, timeout=5), f"MIDI port {self.name} never heard"
        time.sleep(0.05)
        with log.lock:
            log.clear()

    def close(self):  # twice would crash rtmidi (a deleted port's memory)
        if self.out is not None:
            self.out.close_port()
            self.out.delete()
            self.out = None


@pytest.fixture()
def midi(jack, request):
    name = f"bend{request.node.name[-20:]}".replace("[", "").replace("]", "")
    sender = Sender(name)
    c, log = make_controls(cc_map=dict([parse_cc("1=0.high:0:6.2832", 2, 10), parse_cc("7=1.layer", 2, 10),
                                        parse_cc("74=1.param", 2, 10)]))
    port = MidiInput(c, name)
    sender.connect(log)
    yield c, log, sender, port
    port.close()
    sender.close()


def test_list_midi_and_check_midi_port(jack):
    sender = Sender("bendlab-list")
    try:
        assert wait_for(lambda: any(p.endswith(":bendlab-list") for p in list_midi()))
        exact = next(p for p in list_midi() if p.endswith(":bendlab-list"))
        assert check_midi_port("bendlab-list") == exact == check_midi_port(exact)
        with pytest.raises(BendlabValueError) as e:
            check_midi_port("no such port")
        assert "'no such port' is not a port; accepted: one of" in one_line(e) and exact in str(e.value)
        with pytest.raises(BendlabValueError, match="non-empty"):
            check_midi_port("")
    finally:
        sender.close()


def test_a_cc_sweep_drives_the_mapped_field(midi):
    c, log, sender, port = midi
    assert port.connected and port.name.endswith(sender.name)
    sender.send(0xB0, 1, 0)
    assert wait_for(lambda: c.snapshot().mappings[0].high == 0.0)
    def sweep():
        for v in range(1, 128):
            sender.send(0xB0, 1, v)
            time.sleep(0.002)

    thread = threading.Thread(target=sweep)
    thread.start()
    seen = [c.snapshot().mappings[0].high]
    while seen[-1] != 6.2832 and len(seen) < 5000:  # at most ~5 s
        time.sleep(0.001)
        seen.append(c.snapshot().mappings[0].high)
    thread.join()
    assert wait_for(lambda: len(log.of("set", field="high")) == 128)
    values = [e["value"] for e in log.of("set", field="high")]
    assert values == [6.2832 * v / 127 for v in range(128)]  # every step, in order
    assert all(a <= b for a, b in zip(seen, seen[1:])) and len(set(seen)) > 3  # the snapshots follow the sweep
    s = c.snapshot()
    assert s.mappings[0].high == 6.2832 and s.cc == {1: 1.0}
    assert all(e["source"] == "midi" for e in log.of("set"))
    assert log.of("midi")[0]["message"] == {"type": "control_change", "channel": 0, "control": 1, "value": 0}
    sender.send(0xB0, 7, 64)  # layer: 0..10, rounded
    sender.send(0xB3, 74, 127)  # param, on channel 4
    assert wait_for(lambda: c.snapshot().mappings[1].param == 1.0)
    assert c.snapshot().mappings[1].layer == 5 and c.snapshot().cc[74] == 1.0
    sender.send(0xB0, 20, 99)  # a CC mapped to nothing: just a value to read
    assert wait_for(lambda: c.snapshot().cc.get(20) == 99 / 127)


def test_a_refused_cc_value_is_a_warning(midi):
    c, log, sender, port = midi
    c.set(0, "low", 0.0)
    sender.send(0xB0, 1, 0)  # high 0 = low 0: refused as Mapping refuses it
    sender.send(0xB0, 1, 127)
    assert wait_for(lambda: len(log.of("set", field="high")) == 1)
    assert c.snapshot().mappings[0].high == 6.2832
    [w] = log.of("warning")
    assert w["message"].startswith("CC 1 value 0: mapping 0 high 0:") and "low != high" in w["message"]


def test_notes_give_velocity_and_onset(midi):
    c, log, sender, port = midi
    c.snapshot()
    sender.send(0x90, 60, 100)
    sender.send(0x91, 64, 50)
    assert wait_for(lambda: len(log.of("midi")) == 2)
    s = c.snapshot()
    assert s.velocity == 100 / 127 and s.onset == 100 / 127
    assert c.snapshot().onset == 0 and c.snapshot().velocity == 100 / 127  # onset resets, the notes are held
    sender.send(0x80, 60, 0)  # note off
    assert wait_for(lambda: c.snapshot().velocity == 50 / 127)
    sender.send(0x91, 64, 0)  # note on with velocity 0 is a note off
    assert wait_for(lambda: c.snapshot().velocity == 0)
    assert c.snapshot().onset == 0


def test_midi_clock_sets_tempo_and_beats(midi):
    c, log, sender, port = midi
    assert c.snapshot().tempo == 90  # no clock yet: the bpm given
    sender.send(0xFA)  # start
    interval = 60 / 120 / 24
    t0 = time.monotonic()
    for k in range(72):  # three beats at 120 bpm
        time.sleep(max(0.0, t0 + k * interval - time.monotonic()))
        sender.send(0xF8)
    assert wait_for(lambda: len(log.of("midi", message={"type": "clock"})) == 72)
    s = c.snapshot()
    assert abs(s.tempo - 120) < 4, s.tempo
    assert abs(s.beats - 3) <= 1 / 24 + 1e-9, s.beats
    sender.send(0xFC)  # stop: the count holds
    time.sleep(0.05)
    assert abs(c.snapshot().beats - 3) < 1e-9
    sender.send(0xFA)  # start again: from 0
    sender.send(0xF8)
    assert wait_for(lambda: len(log.of("midi", message={"type": "clock"})) == 73)
    assert abs(c.snapshot().beats - 1 / 24) <= 1 / 24 + 1e-9
    time.sleep(CLOCK_TIMEOUT + 0.05)  # the clock has stopped running: the bpm given again
    s = c.snapshot(t=10.0)
    assert s.tempo == 90 and s.beats == 15.0


def test_a_midi_port_that_vanishes_is_a_warning_not_a_crash(jack):
    sender = Sender("bendlab-vanish")
    c, log = make_controls(cc_map=dict([parse_cc("1=0.high:0:6.2832", 2, 10)]))
    port = MidiInput(c, "bendlab-vanish")
    try:
        sender.connect(log)
        sender.send(0xB0, 1, 127)
        assert wait_for(lambda: c.snapshot().mappings[0].high == 6.2832)
        with pytest.warns(ControlWarning, match="vanished"):
            sender.close()
            assert wait_for(lambda: log.of("warning"), timeout=MIDI_POLL * 10)
        [w] = log.of("warning")
        assert "MIDI port" in w["message"] and "vanished" in w["message"] and not port.connected
        c.set(0, "high", 2.0)  # the session goes on
        time.sleep(MIDI_POLL * 3)
        assert len(log.of("warning")) == 1  # warned once
        sender = Sender("bendlab-vanish")  # plugged in again
        assert wait_for(lambda: port.connected, timeout=MIDI_POLL * 10)
        assert log.of("midi")[-1]["message"] == {"type": "reconnected", "port": port.name}
        sender.connect(log)
        sender.send(0xB0, 1, 0)
        assert wait_for(lambda: c.snapshot().mappings[0].high == 0.0)
    finally:
        port.close()
        port.close()  # a second close does nothing
        sender.close()


def test_sixteenth_songpos_and_python_messages():
    import mido
    c, log = make_controls()
    c.midi(mido.Message("sysex", data=[1] * 1000))
    assert log.of("midi")[0]["message"] == {"type": "sysex", "data": "<1000 bytes>"}
    log.clear()
    c.midi(mido.Message("songpos", pos=8))  # 8 sixteenths = 2 beats
    c.midi(mido.Message("clock"))
    c.midi(mido.Message("clock"))  # two ticks at once (one driver cycle): no tempo from them
    s = c.snapshot()
    assert s.tempo == 90 and abs(s.beats - (2 + 2 / 24)) <= 1 / 24 + 1e-9  # the clock runs: its beats
    for _ in range(6):
        time.sleep(60 / 120 / 24)
        c.midi(mido.Message("clock"))
    s = c.snapshot()
    assert abs(s.beats - (2 + 8 / 24)) <= 1 / 24 + 1e-9 and 60 < s.tempo < 130  # sleep() only oversleeps
    assert len(log.of("midi")) == 9 and log.of("midi")[0]["message"] == {"type": "songpos", "pos": 8}


def test_list_midi_without_a_server_is_empty_and_quiet(monkeypatch, capfd):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"bendlab-none-{os.getpid()}")
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    ports = list_midi()
    if not ports:  # no ALSA sequencer here either (in a container)
        with pytest.raises(BendlabValueError, match="no MIDI input ports exist") as e:
            check_midi_port("keyboard")
        one_line(e)
    assert "Cannot connect" not in capfd.readouterr().err  # libjack's chatter is silenced
