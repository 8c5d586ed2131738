#!/usr/bin/env python3
"""TLS reverse proxy in front of OpenBao's plain listener that injects faults.

Clients talk HTTPS (HTTP/1.1, keep-alive) to it exactly as to OpenBao; each
request is forwarded on its own upstream connection, and the whole upstream
response is read before answering so faults such as "reset mid-body" can cut a
known body in half. A plain-HTTP control API on a second loopback port selects
the fault:

  POST /mode     {"mode": M, "count": N, "ms": D, "status": S, "path": SUBSTR}
  GET  /mode     current mode
  GET  /requests [{"method", "path", "status", "mode"}] since the last reset
  POST /reset    clear the request list, back to pass

Modes: pass, delay (wait ms, then forward), blackhole (read the request, never
answer, keep the connection), reset (forward, send head + half the body, then
RST), status (JSON error with `status`, default 503), html (nginx-like HTML
page, default 502), garbage (200 + 8 MiB random bytes labelled JSON), empty
(`status`, default 502, empty body). `count` faults only the next N matching
requests; `path` faults only requests whose target contains it.
"""
import argparse
import asyncio
import json
import os
import socket
import ssl
import struct

MODES = {"pass", "delay", "blackhole", "reset", "status", "html", "garbage", "empty"}
DEFAULT_STATUS = {"status": 503, "html": 502, "empty": 502}
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "upgrade", "expect", "content-length", "trailer"}
REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
GARBAGE_SIZE = 8 * 1024 * 1024
HEAD_LIMIT = 1 << 20


class BadRequest(Exception):
    pass


class FaultState:
    def __init__(self):
        self.requests = []
        self.set_mode({"mode": "pass"})

    def set_mode(self, spec):
        mode = spec.get("mode")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}")
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer")
        self.mode = mode
        self.count = count
        self.ms = int(spec.get("ms") or 0)
        status = spec.get("status", DEFAULT_STATUS.get(mode))
        self.status = None if status is None else int(status)
        self.path = spec.get("path")

    def describe(self):
        return {"mode": self.mode, "count": self.count, "ms": self.ms,
                "status": self.status, "path": self.path}

    def take(self, target):
        """Fault to apply to one request; consumes one unit of `count`."""
        if self.mode == "pass" or (self.path and self.path not in target):
            return {"mode": "pass"}
        fault = self.describe()
        if self.count is not None:
            self.count -= 1
            if self.count == 0:
                self.set_mode({"mode": "pass"})
        return fault


async def read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as e:
        raise BadRequest("header block too large") from e
    lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"malformed header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def header(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


async def read_body(reader, headers, until_eof=False):
    if "chunked" in (header(headers, "Transfer-Encoding") or "").lower():
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers carry nothing OpenBao or its clients use
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = header(headers, "Content-Length")
    if length is not None:
        return await reader.readexactly(int(length))
    return await reader.read() if until_eof else b""


def render_head(status, reason, headers, length, keep_alive):
    out = [f"HTTP/1.1 {status} {reason}"]
    out += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
    if length is not None:
        out.append(f"Content-Length: {length}")
    out.append("Connection: " + ("keep-alive" if keep_alive else "close"))
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")


def nginx_page(status):
    reason = REASONS.get(status, "Error")
    return (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n").encode()


class Proxy:
    def __init__(self, upstream_host, upstream_port, state):
        self.upstream = (upstream_host, upstream_port)
        self.state = state

    async def forward(self, method, target, headers, body):
        up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=HEAD_LIMIT)
        try:
            out = [f"{method} {target} HTTP/1.1"]
            out += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
            if body or method in ("POST", "PUT", "PATCH"):
                out.append(f"Content-Length: {len(body)}")
            out.append("Connection: close")
            up_writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)
            await up_writer.drain()
            status_line, resp_headers = await read_head(up_reader)
            parts = status_line.split(" ", 2)
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else REASONS.get(status, "")
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                return status, reason, resp_headers, None
            return status, reason, resp_headers, await read_body(up_reader, resp_headers, True)
        finally:
            up_writer.close()

    async def handle(self, reader, writer):
        try:
            while await self.one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, BadRequest, ssl.SSLError,
                ValueError):
            pass  # the client went away or spoke nonsense: drop its connection
        finally:
            writer.close()

    async def one_request(self, reader, writer):
        """Serve one request; return whether the connection stays open."""
        try:
            request_line, headers = await read_head(reader)
        except asyncio.IncompleteReadError:
            return False
        method, target, version = request_line.split(" ", 2)
        if (header(headers, "Expect") or "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await read_body(reader, headers)
        conn = (header(headers, "Connection") or "").lower()
        keep_alive = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"

        fault = self.state.take(target)
        entry = {"method": method, "path": target, "status": None, "mode": fault["mode"]}
        self.state.requests.append(entry)
        mode = fault["mode"]

        if mode == "blackhole":
            while await reader.read(65536):
                pass  # hold the connection open until the client gives up
            return False
        if mode == "delay":
            await asyncio.sleep(fault["ms"] / 1000)

        if mode in ("pass", "delay", "reset"):
            try:
                status, reason, resp_headers, resp_body = await self.forward(
                    method, target, headers, body)
            except (OSError, asyncio.IncompleteReadError, BadRequest, ValueError) as e:
                status, reason = 502, "Bad Gateway"
                resp_headers = [("Content-Type", "application/json")]
                resp_body = json.dumps({"errors": [f"fault proxy: upstream failed: {e}"]}).encode()
        elif mode == "status":
            status, reason = fault["status"], REASONS.get(fault["status"], "Error")
            resp_headers = [("Content-Type", "application/json")]
            resp_body = b'{"errors":["injected"]}\n'
        elif mode == "html":
            status, reason = fault["status"], REASONS.get(fault["status"], "Error")
            resp_headers = [("Server", "nginx"), ("Content-Type", "text/html")]
            resp_body = nginx_page(status)
        elif mode == "garbage":
            status, reason = 200, "OK"
            resp_headers = [("Content-Type", "application/json")]
            resp_body = os.urandom(GARBAGE_SIZE)
        else:  # empty
            status, reason = fault["status"], REASONS.get(fault["status"], "Error")
            resp_headers = []
            resp_body = b""
        entry["status"] = status

        if resp_body is None:  # HEAD and body-less statuses keep upstream's framing headers
            length = header(resp_headers, "Content-Length")
            resp_headers = [(k, v) for k, v in resp_headers if k.lower() != "content-length"]
            writer.write(render_head(status, reason, resp_headers, length, keep_alive))
            resp_body = b""
        else:
            writer.write(render_head(status, reason, resp_headers, len(resp_body), keep_alive))

        if mode == "reset":
            writer.write(resp_body[:len(resp_body) // 2])
            await writer.drain()
            # Let the partial body reach the kernel before the RST, or the
            # client would see a reset with no body at all.
            while writer.transport.get_write_buffer_size():
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False

        writer.write(resp_body)
        await writer.drain()
        return keep_alive


class Control:
    def __init__(self, state):
        self.state = state

    async def handle(self, reader, writer):
        try:
            request_line, headers = await read_head(reader)
            body = await read_body(reader, headers)
            method, target, _ = request_line.split(" ", 2)
            code, payload = self.route(method, target.split("?")[0], body)
        except (asyncio.IncompleteReadError, BadRequest, ValueError) as e:
            code, payload = 400, {"error": str(e)}
        data = json.dumps(payload).encode()
        writer.write(render_head(code, REASONS.get(code, ""),
                                 [("Content-Type", "application/json")], len(data), False) + data)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    def route(self, method, path, body):
        if (method, path) == ("POST", "/mode"):
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("body must be a JSON object")
            self.state.set_mode(spec)
            return 200, self.state.describe()
        if (method, path) == ("GET", "/mode"):
            return 200, self.state.describe()
        if (method, path) == ("GET", "/requests"):
            return 200, self.state.requests
        if (method, path) == ("POST", "/reset"):
            self.state.requests = []
            self.state.set_mode({"mode": "pass"})
            return 200, self.state.describe()
        return 404, {"error": f"no route {method} {path}"}


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


async def serve(a):
    state = FaultState()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    up_host, up_port = split_addr(a.upstream)
    proxy = Proxy(up_host, up_port, state)
    host, port = split_addr(a.listen)
    chost, cport = split_addr(a.control)
    servers = [
        await asyncio.start_server(proxy.handle, host, port, ssl=ctx, backlog=1024,
                                   limit=HEAD_LIMIT, ssl_handshake_timeout=10),
        await asyncio.start_server(Control(state).handle, chost, cport, backlog=128,
                                   limit=HEAD_LIMIT),
    ]
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main():
    p = argparse.ArgumentParser(description="fault-injecting TLS reverse proxy")
    p.add_argument("--listen", required=True, help="HOST:PORT for TLS clients")
    p.add_argument("--control", required=True, help="HOST:PORT for the plain control API")
    p.add_argument("--upstream", required=True, help="HOST:PORT of OpenBao's plain listener")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
