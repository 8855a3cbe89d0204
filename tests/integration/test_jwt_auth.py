"""[route.auth] type = "jwt": tokens made at test time with the openssl command.

Keys: an RSA key in a JWKS file (its modulus read back with `openssl rsa -modulus`), an
EC P-256 and an Ed25519 key as PEM public keys, an HS256 secret file. Tokens are signed
with `openssl dgst` / `openssl pkeyutl`. Only the valid tokens reach the backend (the
python3-websockets server counts its connections); claims arrive as headers and a
client's spoofed claim header never does; the token itself is stripped; HTTP/2 streams
(RFC 8441) get the same checks; a token that expires closes its WebSocket with 1008.
"""

import asyncio
import base64
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import websockets

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin_client as ac  # noqa: E402
import h2_client as c  # noqa: E402
import harness as h  # noqa: E402

ISSUER = "https://idp.test"
SECRET = "0123456789abcdef0123456789abcdef-hs256"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data: bytes = b"") -> bytes:
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True,
                          timeout=60).stdout


def der_to_raw(der: bytes) -> bytes:
    """ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> R || S, 32 bytes each (RFC 7518 3.4)."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


class Keys:
    def __init__(self, directory: str):
        self.dir = directory
        p = lambda name: os.path.join(directory, name)  # noqa: E731
        self.rsa, self.ec, self.ed = p("rsa.pem"), p("ec.pem"), p("ed.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.rsa)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.ec)
        openssl("genpkey", "-algorithm", "ED25519", "-out", self.ed)
        self.rsa_pub = openssl("pkey", "-in", self.rsa, "-pubout")
        for key, pub in ((self.ec, "ec.pub.pem"), (self.ed, "ed.pub.pem")):
            with open(p(pub), "wb") as f:
                f.write(openssl("pkey", "-in", key, "-pubout"))
        self.ec_pub, self.ed_pub = p("ec.pub.pem"), p("ed.pub.pem")
        modulus = openssl("rsa", "-in", self.rsa, "-noout", "-modulus").decode()
        n = bytes.fromhex(modulus.strip().split("=", 1)[1])
        self.jwks = p("jwks.json")
        with open(self.jwks, "w") as f:
            json.dump({"keys": [{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
                                 "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}]}, f)
        self.secret_file = p("hs256.secret")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")

    def sign(self, alg: str, signing_input: bytes, *, hmac_key: bytes = SECRET.encode()) -> bytes:
        if alg == "RS256":
            return openssl("dgst", "-sha256", "-sign", self.rsa, data=signing_input)
        if alg == "ES256":
            return der_to_raw(openssl("dgst", "-sha256", "-sign", self.ec, data=signing_input))
        if alg == "EdDSA":
            msg = os.path.join(self.dir, "msg")
            with open(msg, "wb") as f:
                f.write(signing_input)
            return openssl("pkeyutl", "-sign", "-inkey", self.ed, "-rawin", "-in", msg)
        if alg == "HS256":
            return openssl("dgst", "-sha256", "-mac", "HMAC", "-macopt",
                           "hexkey:" + hmac_key.hex(), "-binary", data=signing_input)
        raise ValueError(alg)

    def token(self, alg: str = "RS256", *, header: dict = None, hmac_key: bytes = SECRET.encode(),
              **claims) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": "chat", "sub": "alice", "email": "alice@example.test",
                   "iat": now, "exp": now + 600}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        head = {"alg": alg, "typ": "JWT", **(header or {})}
        signing_input = (b64url(json.dumps(head).encode()) + "." +
                         b64url(json.dumps(payload).encode())).encode()
        if alg == "none":
            return signing_input.decode() + "."
        sig = self.sign(alg, signing_input, hmac_key=hmac_key)
        return signing_input.decode() + "." + b64url(sig)


def config(port: int, admin_port: int, backend: str, keys: Keys, **auth) -> str:
    auth_table = {
        "type": "jwt", "jwks_file": keys.jwks, "public_key_files": [keys.ec_pub, keys.ed_pub],
        "hmac_secret_file": keys.secret_file, "issuer": ISSUER, "audiences": ["chat"],
        "required_claims": ["sub"], "strip_token": True, "clock_skew": "2s",
        "token_from": ["bearer", "cookie:jwt", "query:access_token", "subprotocol:bearer."],
        **auth}
    text = c.config(f"127.0.0.1:{port}", {"echo": [backend]},
                    [{"name": "chat", "path": "/echo", "upstream": "echo"}], h2c=True)
    text += "[route.auth]\n"
    text += "".join(f"{k} = {h.toml_value(v)}\n" for k, v in auth_table.items())
    text += 'claim_headers = { sub = "X-User", email = "X-Email" }\n'
    return ac.with_admin(text, admin_port)


class JwtAuth(h.GatewayCase):
    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix="wsgate-jwt-")
        cls.keys = Keys(cls._dir.name)

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.backend = await self.start_backend(subprotocols=["chat"])
        self.admin_port = h.free_port()
        self.gw = await self.start_gateway(
            config(h.free_port(), self.admin_port, self.backend.address, self.keys))
        self.admin = ac.Admin(self.admin_port)

    async def refused(self, token=None, headers=None, path="/echo"):
        extra = list(headers or [])
        if token is not None:
            extra.append(("Authorization", f"Bearer {token}"))
        return await h.http_exchange("127.0.0.1", self.gw.port,
                                     h.upgrade_request(path, extra=extra))

    async def test_valid_tokens_of_every_algorithm_reach_the_backend_with_claims(self):
        for n, alg in enumerate(["RS256", "ES256", "EdDSA", "HS256"], start=1):
            with self.subTest(alg=alg):
                token = self.keys.token(alg, sub=f"user-{alg}")
                async with h.ws_connect(self.gw.port, extra_headers={
                        "Authorization": f"Bearer {token}", "X-User": "spoofed-admin"}) as ws:
                    await ws.send("hello")
                    self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "hello")
                rec = (await self.backend.wait_conns(n))[-1]
                self.assertEqual(rec.headers("X-User"), [f"user-{alg}"])
                self.assertEqual(rec.header("X-Email"), "alice@example.test")
                self.assertEqual(rec.headers("Authorization"), [], "token not stripped")
        metrics = await self.admin.metrics()
        self.assertEqual(metrics.value("wsgate_auth_decisions_total", route="chat",
                                       result="allowed"), 4)

    async def test_bad_tokens_are_refused_before_the_backend(self):
        k = self.keys
        rsa_pub_as_secret = k.rsa_pub  # algorithm confusion: HMAC keyed with the public key
        cases = [
            ("no token", None, 401, "missing"),
            ("expired", k.token("ES256", exp=int(time.time()) - 120), 401, "expired"),
            ("wrong issuer", k.token("RS256", iss="https://evil.test"), 403, "forbidden"),
            ("wrong audience", k.token("EdDSA", aud="billing"), 403, "forbidden"),
            ("no sub", k.token("HS256", sub=None), 403, "forbidden"),
            ("bad signature", k.token("RS256")[:-6] + "AAAAAA", 401, "invalid"),
            ("alg none", k.token("none"), 401, "invalid"),
            ("HS256 with the RSA public key", k.token("HS256", hmac_key=rsa_pub_as_secret),
             401, "invalid"),
            ("HS256 with another secret", k.token("HS256", hmac_key=b"x" * 40), 401, "invalid"),
            ("garbage", "not-a-jwt", 401, "invalid"),
            ("not yet valid", k.token("RS256", nbf=int(time.time()) + 3600), 401, "invalid"),
        ]
        for what, token, status, _ in cases:
            with self.subTest(what):
                resp = await self.refused(token)
                self.assertEqual(resp.status, status, resp.raw[:300])
                if status == 401:
                    self.assertTrue((resp.header("WWW-Authenticate") or "").startswith("Bearer"))
                self.assertEqual(len(self.backend.conns), 0, f"{what} reached the backend")
        metrics = await self.admin.metrics()
        for result in {r for _, _, _, r in cases}:
            expected = sum(1 for _, _, _, r in cases if r == result)
            self.assertEqual(metrics.value("wsgate_auth_decisions_total", route="chat",
                                           result=result), expected, result)
        log = "\n".join(self.gw.access_log_lines())
        for _, token, _, _ in cases:
            if token and len(token) > 20:
                for part in token.split("."):
                    if part:
                        self.assertNotIn(part, log, "a token reached the access log")
        self.assertIn("token rejected", log)

    async def test_cookie_query_and_subprotocol_tokens(self):
        token = self.keys.token("ES256", sub="bob")
        async with h.ws_connect(self.gw.port, extra_headers={"Cookie": f"theme=dark; jwt={token}"}):
            pass
        async with h.ws_connect(self.gw.port, path=f"/echo?room=1&access_token={token}"):
            pass
        # Browsers can set only the subprotocol list: the token rides as one entry and the
        # backend picks the real protocol.
        async with h.ws_connect(self.gw.port, subprotocols=["chat", f"bearer.{token}"]) as ws:
            self.assertEqual(ws.subprotocol, "chat")
        recs = await self.backend.wait_conns(3)
        self.assertEqual([r.header("X-User") for r in recs], ["bob"] * 3)
        self.assertEqual(recs[0].header("Cookie"), "theme=dark")
        self.assertEqual(recs[1].path, "/echo?room=1")
        self.assertEqual(recs[2].header("Sec-WebSocket-Protocol"), "chat")
        self.assertNotIn(token, "\n".join(self.gw.access_log_lines()))

    async def test_http2_streams_get_the_same_checks(self):
        conn = await c.H2Conn.open("127.0.0.1", self.gw.port, tls=False)
        self.addAsyncCleanup(conn.close)
        refused = await c.H2WebSocket.open(conn, "/echo", scheme="http", expect_status=401)
        self.assertEqual(refused.st.status, 401)
        ws = await c.H2WebSocket.open(
            conn, "/echo", scheme="http",
            extra=[("authorization", f"Bearer {self.keys.token('EdDSA', sub='h2-user')}")])
        self.assertEqual(ws.st.status, 200)
        await ws.send(h.OP_TEXT, b"over h2")
        self.assertEqual(await ws.recv_message(), (h.OP_TEXT, b"over h2"))
        rec = (await self.backend.wait_conns(1))[-1]
        self.assertEqual(rec.header("X-User"), "h2-user")

    async def test_forwarded_http_requests_are_checked_too(self):
        plain = b"GET /echo/api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        resp = await h.http_exchange("127.0.0.1", self.gw.port, plain)
        self.assertEqual(resp.status, 401)
        self.assertEqual(len(self.backend.conns), 0)
        token = self.keys.token("RS256")
        authed = (b"GET /echo/api HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
        resp = await h.http_exchange("127.0.0.1", self.gw.port, authed)
        # The websockets backend answers a plain GET itself (426): it was reached.
        self.assertNotIn(resp.status, (401, 403), resp.raw[:200])

    async def test_websockets_are_closed_with_1008_when_their_token_expires(self):
        # Eight sockets with one token: closed in [exp, exp + clock_skew) (2 s here), not
        # before, and not all at the same moment.
        exp = int(time.time()) + 3
        token = self.keys.token("HS256", exp=exp)
        headers = {"Authorization": f"Bearer {token}"}
        sockets = [await h.ws_connect(self.gw.port, extra_headers=headers).__aenter__()
                   for _ in range(8)]

        async def until_closed(ws):
            await ws.send("before expiry")
            self.assertEqual(await asyncio.wait_for(ws.recv(), 10), "before expiry")
            with self.assertRaises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 15)
            return time.time(), ws.close_code, ws.close_reason

        try:
            ends = await asyncio.gather(*(until_closed(ws) for ws in sockets))
        finally:
            for ws in sockets:
                await ws.close()
        self.assertEqual({(code, reason) for _, code, reason in ends}, {(1008, "token expired")})
        times = sorted(t for t, _, _ in ends)
        self.assertGreaterEqual(times[0], exp - 0.05, "closed before the token expired")
        self.assertLess(times[-1], exp + 2 + 1.0, "closed after exp + clock_skew")
        self.assertGreater(times[-1] - times[0], 0.2, f"closes not spread: {times}")
        metrics = await self.admin.metrics()
        self.assertEqual(metrics.value("wsgate_auth_expired_closes_total", route="chat"), 8)


class JwksUrl(h.GatewayCase):
    """jwks_url: keys fetched over HTTP, refreshed, rotated; 503 until the first fetch."""

    @classmethod
    def setUpClass(cls):
        cls._dir = tempfile.TemporaryDirectory(prefix="wsgate-jwks-url-")
        cls.old = Keys(os.path.join(cls._dir.name))
        os.mkdir(os.path.join(cls._dir.name, "new"))
        cls.new = Keys(os.path.join(cls._dir.name, "new"))

    @classmethod
    def tearDownClass(cls):
        cls._dir.cleanup()

    def serve_jwks(self):
        """An HTTP server whose answer (status, body) the test changes; counts GETs."""
        state = {"status": 503, "body": b"not yet", "gets": 0}

        class Jwks(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                state["gets"] += 1
                self.send_response(state["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(state["body"])))
                self.end_headers()
                self.wfile.write(state["body"])

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        return server.server_address[1], state

    async def status_of(self, token):
        req = h.upgrade_request("/echo", extra=[("Authorization", f"Bearer {token}")])
        return (await h.http_exchange("127.0.0.1", self.gw.port, req)).status

    async def test_keys_fetched_refreshed_and_rotated(self):
        port, state = self.serve_jwks()
        backend = await self.start_backend()
        text = c.config(f"127.0.0.1:{h.free_port()}", {"echo": [backend.address]},
                        [{"name": "chat", "path": "/echo", "upstream": "echo"}])
        text += (f'[route.auth]\ntype = "jwt"\njwks_url = "http://127.0.0.1:{port}/jwks.json"\n'
                 'jwks_refresh = "1s"\n')
        self.gw = await self.start_gateway(text)
        old_token = self.old.token("RS256", header={"kid": "rsa-1"})
        new_token = self.new.token("RS256", header={"kid": "rsa-1"})
        # No keys yet: the key may come with the first fetch, so 503, not 401.
        self.assertEqual(await self.status_of(old_token), 503)
        with open(self.old.jwks, "rb") as f:
            state["body"], state["status"] = f.read(), 200
        await h.wait_until(lambda: state["gets"] >= 2, 10, "a second fetch")
        deadline = time.monotonic() + 10
        while await self.status_of(old_token) != 101 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        self.assertEqual(await self.status_of(old_token), 101)
        self.assertEqual(await self.status_of(new_token), 401)  # another RSA key, same kid
        # Rotation: the URL now serves only the new key.
        with open(self.new.jwks, "rb") as f:
            state["body"] = f.read()
        deadline = time.monotonic() + 10
        while await self.status_of(new_token) != 101 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        self.assertEqual(await self.status_of(new_token), 101)
        self.assertEqual(await self.status_of(old_token), 401)
        # The URL fails: the keys fetched last stay in use.
        state["status"], gets = 500, state["gets"]
        await h.wait_until(lambda: state["gets"] >= gets + 2, 10, "two failed fetches")
        self.assertEqual(await self.status_of(new_token), 101)
        self.assertIn("jwks_url", self.gw.stderr_text())
        self.assertIn("answered 500", self.gw.stderr_text())


if __name__ == "__main__":
    h.main()
