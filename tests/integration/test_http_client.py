"""The load's HTTP/1.1 client (loadgen/http.py) against raw responses from a socket server on 127.0.0.1: every way
a body is framed, keep-alive kept and refused, and each way an exchange fails, named."""

import asyncio

import pytest

from tuibench.loadgen.http import ConnectFailed, Disconnected, MalformedResponse, Session
from tuibench.servers.managed import free_port

SSE = [b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"]


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


# What the server answers each request path with: a list of writes (bytes), pauses (float seconds) and, last, whether
# to close the connection after (True) or keep it for the next request (False).
ANSWERS = {
    "/chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n",
                 chunked(SSE[0])[:-5], 0.05, chunked(SSE[1], SSE[2]), False],
    "/sized": [b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello", 0.02, b" world", False],
    "/to-the-close": [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", True],
    "/close-after": [b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngone", True],
    "/cut": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunked(SSE[0])[:-5], True],
    "/garbage": [b"SPDY/9 what\r\n\r\n", True],
    # The stream's [DONE], and its terminating chunk 20 ms later (a server's final write after its last event).
    "/done-then-end": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunked(*SSE)[:-5], 0.02,
                       b"0\r\n\r\n", False],
}


class RawServer:
    """Answers each request from ANSWERS by its path; counts connections and what each request sent."""

    def __init__(self):
        self.connections = 0
        self.requests: list[tuple[int, bytes]] = []  # (connection number, the request's head and body)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                self.requests.append((number, head + body))
                *writes, close = ANSWERS[head.split(b" ")[1].decode()]
                for write in writes:
                    if isinstance(write, float):
                        await asyncio.sleep(write)
                    else:
                        writer.write(write)
                        await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


async def exchange(paths: list[str], method: str = "GET") -> tuple[RawServer, list]:
    """Each path requested in turn on one session; (the server, what each gave: (status, body) or the error)."""
    raw = RawServer()
    port = free_port()
    server = await asyncio.start_server(raw.handle, "127.0.0.1", port)
    results = []
    async with server, Session() as session:
        for path in paths:
            url = f"http://127.0.0.1:{port}{path}"
            try:
                call = session.post(url, b'{"a": 1}', {"Content-Type": "application/json"}) if method == "POST" \
                    else session.get(url)
                async with call as response:
                    results.append((response.status, [piece async for piece in response.content.iter_any()]))
            except (Disconnected, MalformedResponse) as exc:
                results.append(exc)
    return raw, results


def test_a_chunked_stream_arrives_piece_by_piece_and_the_connection_is_kept():
    raw, results = asyncio.run(exchange(["/chunked", "/chunked"], method="POST"))
    for status, pieces in results:
        # The first chunk came alone, 50 ms before the rest: its own piece, as a token must be timed on its own.
        assert status == 200 and pieces[0] == SSE[0] and b"".join(pieces) == b"".join(SSE)
    assert raw.connections == 1 and [number for number, _ in raw.requests] == [1, 1]
    sent = raw.requests[0][1]
    assert sent.startswith(b"POST /chunked HTTP/1.1\r\nHost: 127.0.0.1:") and sent.endswith(
        b"Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")


def test_a_connection_left_at_done_goes_back_to_the_pool_once_its_response_ends():
    """The client stops reading at [DONE]; the connection is kept for the next request once the terminating chunk
    is in, not closed (each request would then pay a TCP connect)."""
    async def go():
        raw = RawServer()
        port = free_port()
        async with await asyncio.start_server(raw.handle, "127.0.0.1", port), Session() as session:
            for _ in range(2):
                async with session.post(f"http://127.0.0.1:{port}/done-then-end", b"{}") as response:
                    async for piece in response.content.iter_any():
                        if piece.endswith(b"data: [DONE]\n\n"):
                            break
                await asyncio.sleep(0.1)
        return raw

    assert asyncio.run(go()).connections == 1


def test_a_sized_body_ends_at_its_length_and_one_read_to_the_close_at_the_close():
    raw, results = asyncio.run(exchange(["/sized", "/sized", "/to-the-close", "/sized"]))
    assert [(status, b"".join(pieces)) for status, pieces in results] == [
        (200, b"hello world"), (200, b"hello world"), (200, b"all of it"), (200, b"hello world")]
    assert raw.connections == 2  # kept for the second, not after the one that ran to the close


def test_a_refusal_to_keep_the_connection_is_honoured_and_an_error_status_read():
    raw, results = asyncio.run(exchange(["/close-after", "/sized"]))
    assert results == [(404, [b"gone"]), (200, [b"hello", b" world"])] and raw.connections == 2


@pytest.mark.parametrize("path, error, message", [
    ("/cut", Disconnected, "server disconnected mid-stream"),  # closed inside a chunked body
    ("/garbage", MalformedResponse, "malformed HTTP response"),
])
def test_a_stream_cut_or_not_http_is_named(path, error, message):
    _, results = asyncio.run(exchange([path]))
    assert isinstance(results[0], error) and str(results[0]).startswith(message)


def test_a_url_that_is_not_http_fails_the_request_in_words():
    async def go():
        async with Session() as session, session.get("localhost:8000/v1/models"):
            pass

    with pytest.raises(ConnectFailed, match="^not an http\\(s\\) URL: localhost:8000/v1/models$"):
        asyncio.run(go())


def test_a_refused_connection_is_named_with_the_systems_words():
    async def go():
        async with Session() as session, session.get(f"http://127.0.0.1:{free_port()}/v1/models"):
            pass

    with pytest.raises(ConnectFailed, match="Connection refused") as failed:
        asyncio.run(go())
    assert failed.value.errno is not None


def self_signed(folder) -> tuple[str, str]:
    """A certificate for 127.0.0.1, its own issuer, and its key: (certificate path, key path)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tuibench test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
                   .not_valid_after(now + dt.timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.mark.parametrize("trusted", [True, False])
def test_https_with_a_certificate_the_machine_trusts_and_one_it_does_not(monkeypatch, tmp_path, trusted):
    import ssl

    cert, key = self_signed(tmp_path)
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", cert)  # OpenSSL's own variable: the machine's trust, here the test's
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def go():
        raw, port = RawServer(), free_port()
        async with await asyncio.start_server(raw.handle, "127.0.0.1", port, ssl=server_tls), Session() as session:
            async with session.get(f"https://127.0.0.1:{port}/sized") as response:
                return response.status, await response.read()

    if trusted:
        assert asyncio.run(go()) == (200, b"hello world")
    else:
        with pytest.raises(ConnectFailed, match="^TLS: self-signed certificate$"):
            asyncio.run(go())
