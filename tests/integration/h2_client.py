"""An HTTP/2 WebSocket client (RFC 8441) for wsgate's integration tests, built on
Debian's python3-h2 4.1 over asyncio streams, with WebSocket frames made by hand
(harness.encode_frame, masked). Also: a TLS certificate made with the openssl CLI and
config text for TLS / h2c listeners.

Every wait has a deadline; nothing here sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
import subprocess
import time
from typing import Optional

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

import harness as h

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ---------------------------------------------------------------------------------
# Certificates and configs
# ---------------------------------------------------------------------------------

def make_certificate(directory: str) -> tuple[str, str]:
    """A self-signed P-256 certificate for localhost / 127.0.0.1 (openssl CLI)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def config(listen: str, backends: dict, routes: list, *, tls: Optional[tuple] = None,
           h2c: bool = False, http2: Optional[bool] = None, workers: int = 2,
           drain_timeout: str = "10s") -> str:
    """TOML with one listener (TLS when `tls` = (cert, key), else plain with h2c)."""
    text = (f"workers = {workers}\ndrain_timeout = {h.toml_value(drain_timeout)}\n"
            f"access_log = \"-\"\n\n[[listener]]\naddress = {h.toml_value(listen)}\n")
    if tls is None:
        text += f"h2c = {h.toml_value(h2c)}\n"
    else:
        if http2 is not None:
            text += f"http2 = {h.toml_value(http2)}\n"
        text += (f"[listener.tls]\ncertificates = [{{ cert = {h.toml_value(tls[0])}, "
                 f"key = {h.toml_value(tls[1])} }}]\n")
    text += "\n"
    for name, servers in backends.items():
        text += h.toml_table("upstream", {"name": name, "servers": servers}) + "\n"
    for route in routes:
        text += h.toml_table("route", route) + "\n"
    return text


# ---------------------------------------------------------------------------------
# The HTTP/2 connection
# ---------------------------------------------------------------------------------

class StreamState:
    def __init__(self, stream_id: int):
        self.id = stream_id
        self.headers: Optional[list] = None   # response headers [(name, value)] as str
        self.data = bytearray()               # DATA payload received, not yet parsed
        self.body = bytearray()               # everything received (for error bodies)
        self.ended = False                    # END_STREAM from the server
        self.reset: Optional[int] = None      # RST_STREAM error code from the server
        self.paused = False                   # True: do not return credit (a stalled reader)
        self.unacked = 0                      # flow-controlled bytes not acknowledged

    @property
    def status(self) -> Optional[int]:
        for k, v in self.headers or []:
            if k == ":status":
                return int(v)
        return None

    def header(self, name: str) -> Optional[str]:
        for k, v in self.headers or []:
            if k == name:
                return v
        return None


class H2Conn:
    """One HTTP/2 connection. A background task reads frames and records events per
    stream; `changed` wakes whoever waits for something."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8",
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.streams: dict[int, StreamState] = {}
        self.remote_settings: dict = {}
        self.settings_seen = False
        self.terminated: Optional[h2.events.ConnectionTerminated] = None
        self.closed = False
        self.changed = asyncio.Event()
        self.alpn: Optional[str] = None
        self._task: Optional[asyncio.Task] = None

    @classmethod
    async def open(cls, host: str, port: int, *, tls: bool, prior_knowledge: bool = True,
                   timeout: float = 10.0) -> "H2Conn":
        ctx = None
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2", "http/1.1"])
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx,
                                    server_hostname="localhost" if tls else None), timeout)
        self = cls(reader, writer)
        if tls:
            self.alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        self.conn.initiate_connection()
        await self.flush()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())
        return self

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.writer.write(data)
            try:
                await self.writer.drain()
            except (ConnectionError, OSError):
                self.closed = True

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(1 << 20)
                if not data:
                    break
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.terminated = e
                    break
                for ev in events:
                    self._on_event(ev)
                await self.flush()
                self.changed.set()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.closed = True
            self.changed.set()

    def _on_event(self, ev) -> None:
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
            for code, change in ev.changed_settings.items():
                self.remote_settings[int(code)] = change.new_value
            return
        if isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = ev
            return
        sid = getattr(ev, "stream_id", None)
        if not sid:
            return
        st = self.streams.setdefault(sid, StreamState(sid))
        if isinstance(ev, h2.events.ResponseReceived):
            st.headers = [(k if isinstance(k, str) else k.decode(),
                           v if isinstance(v, str) else v.decode()) for k, v in ev.headers]
        elif isinstance(ev, h2.events.DataReceived):
            st.data += ev.data
            st.body += ev.data
            # Credit goes back only while the test's reader "reads".
            st.unacked += ev.flow_controlled_length
            if not st.paused:
                self._ack(st)
            else:
                # The connection window is returned anyway: only this stream stalls.
                self.conn.increment_flow_control_window(ev.flow_controlled_length)
            if ev.stream_ended:
                st.ended = True
        elif isinstance(ev, h2.events.StreamEnded):
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            st.reset = int(ev.error_code)

    def _ack(self, st: StreamState) -> None:
        if st.unacked and not self.closed:
            try:
                if st.paused:
                    return
                self.conn.increment_flow_control_window(st.unacked, stream_id=st.id)
                self.conn.increment_flow_control_window(st.unacked)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            st.unacked = 0

    async def resume(self, st: StreamState) -> None:
        st.paused = False
        # The connection share was returned already; only the stream's is owed.
        if st.unacked:
            try:
                self.conn.increment_flow_control_window(st.unacked, stream_id=st.id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
            st.unacked = 0
        await self.flush()

    async def wait_for(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            self.changed.clear()
            value = predicate()
            if value:
                return value
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    async def wait_settings(self, timeout: float = 10.0) -> dict:
        await self.wait_for(lambda: self.settings_seen, timeout, "server SETTINGS")
        return self.remote_settings

    async def request(self, headers: list, *, end_stream: bool = False) -> StreamState:
        sid = self.conn.get_next_available_stream_id()
        st = self.streams.setdefault(sid, StreamState(sid))
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        await self.flush()
        return st

    async def response(self, st: StreamState, timeout: float = 20.0) -> StreamState:
        await self.wait_for(lambda: st.headers is not None or st.reset is not None
                            or self.closed, timeout, f"response on stream {st.id}")
        return st

    async def send_data(self, st: StreamState, data: bytes, *, end_stream: bool = False,
                        timeout: float = 30.0) -> None:
        """Sends as the stream's flow-control window allows (waits for WINDOW_UPDATEs)."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while True:
            if self.closed:
                raise AssertionError("connection closed while sending")
            window = min(self.conn.local_flow_control_window(st.id),
                         self.conn.max_outbound_frame_size)
            if len(view) == 0 or window > 0:
                n = min(window, len(view))
                last = n == len(view)
                self.conn.send_data(st.id, bytes(view[:n]), end_stream=end_stream and last)
                view = view[n:]
                await self.flush()
                if last:
                    return
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"stream {st.id}: no send window for {timeout}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    def send_window(self, st: StreamState) -> int:
        return self.conn.local_flow_control_window(st.id)

    async def reset(self, st: StreamState, code: int = 8) -> None:
        self.conn.reset_stream(st.id, error_code=code)
        await self.flush()

    async def end(self, st: StreamState) -> None:
        """END_STREAM, unless the stream is closed already (the server may answer its own
        END_STREAM with RST_STREAM(NO_ERROR), RFC 9113 8.1)."""
        try:
            self.conn.end_stream(st.id)
        except h2.exceptions.StreamClosedError:
            return
        await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.closed = True
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (ConnectionError, OSError, asyncio.TimeoutError, ssl.SSLError):
            pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


def connect_headers(path: str = "/echo", authority: str = "127.0.0.1", *, scheme: str = "https",
                    protocol: Optional[str] = "websocket", extra=(), omit=()) -> list:
    hdrs = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", scheme),
            (":path", path), (":authority", authority), ("sec-websocket-version", "13")]
    hdrs = [(k, v) for k, v in hdrs if v is not None and k not in omit]
    return hdrs + list(extra)


class H2WebSocket:
    """A WebSocket on one extended CONNECT stream: masked frames out, frames parsed in."""

    def __init__(self, conn: H2Conn, st: StreamState):
        self.conn = conn
        self.st = st

    @classmethod
    async def open(cls, conn: H2Conn, path: str = "/echo", *, expect_status: int = 200,
                   **kw) -> "H2WebSocket":
        st = await conn.request(connect_headers(path, **kw))
        await conn.response(st)
        if st.status != expect_status:
            raise AssertionError(f"stream {st.id}: expected {expect_status}, got {st.status} "
                                 f"{st.headers} reset={st.reset} body={bytes(st.body)[:200]!r}")
        return cls(conn, st)

    async def send(self, opcode: int, payload: bytes = b"", *, fin: bool = True) -> None:
        await self.conn.send_data(self.st, h.encode_frame(opcode, payload, fin=fin))

    async def send_raw(self, data: bytes) -> None:
        await self.conn.send_data(self.st, data)

    def _parse_one(self) -> Optional[h.Frame]:
        b = self.st.data
        if len(b) < 2:
            return None
        b0, b1 = b[0], b[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(b) < 4:
                return None
            n = struct.unpack("!H", bytes(b[2:4]))[0]
            pos = 4
        elif n == 127:
            if len(b) < 10:
                return None
            n = struct.unpack("!Q", bytes(b[2:10]))[0]
            pos = 10
        if b1 & 0x80:
            raise AssertionError("server frames must not be masked (RFC 6455 5.1)")
        if len(b) < pos + n:
            return None
        payload = bytes(b[pos:pos + n])
        del b[:pos + n]
        return h.Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, False, payload)

    async def recv_frame(self, timeout: float = 20.0) -> h.Frame:
        def ready():
            f = self._parse_one()
            if f is not None:
                return f
            if self.st.ended or self.st.reset is not None or self.conn.closed:
                raise AssertionError(f"stream {self.st.id} ended without a frame "
                                     f"(reset={self.st.reset})")
            return None
        return await self.conn.wait_for(ready, timeout, f"a frame on stream {self.st.id}")

    async def recv_message(self, timeout: float = 30.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next data message, fragments joined."""
        parts, opcode = [], None
        deadline = time.monotonic() + timeout
        while True:
            f = await self.recv_frame(max(0.1, deadline - time.monotonic()))
            if f.opcode in (h.OP_PING, h.OP_PONG):
                continue
            if f.opcode == h.OP_CLOSE:
                raise AssertionError(f"Close {f.close_code} instead of a message")
            if opcode is None:
                opcode = f.opcode
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts)

    async def close(self, code: int = 1000) -> h.Frame:
        """Close handshake: our Close, the server's Close, then END_STREAM both ways."""
        await self.send(h.OP_CLOSE, h.close_payload(code))
        while True:
            f = await self.recv_frame()
            if f.opcode == h.OP_CLOSE:
                break
        await self.conn.end(self.st)
        await self.conn.wait_for(lambda: self.st.ended or self.st.reset is not None, 15,
                                 f"stream {self.st.id} to end")
        return f
