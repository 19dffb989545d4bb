#!/usr/bin/env python3
"""Black-box smoke test for mcp-sqlite: starts the real binary (stdio and HTTP
on a free loopback port), drives it with raw sockets and pipes, and asserts on
replies, status codes, the --log file and a clean exit (so an ASan build
reports leaks as a failure).

    python3 examples/mcp-sqlite/smoke_test.py build/mcp-sqlite
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/mcp-sqlite")
failures = 0
count = 0


def check(cond, what):
    global failures, count
    count += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (count, what))
    if not cond:
        failures += 1


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Http:
    """A minimal keep-alive HTTP/1.1 client that reads exact responses."""

    def __init__(self, port):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, method, body=None, headers=None, path="/mcp"):
        h = {"Host": "127.0.0.1", "Content-Type": "application/json",
             "Accept": "application/json, text/event-stream"}
        h.update(headers or {})
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = "%s %s HTTP/1.1\r\n" % (method, path)
        for k, v in h.items():
            if v is not None:
                req += "%s: %s\r\n" % (k, v)
        if body is not None:
            req += "Content-Length: %d\r\n" % len(data)
        self.sock.sendall(req.encode() + b"\r\n" + data)

    def read(self):
        status = int(self._line().split()[1])
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line(), 16)
                if size == 0:
                    self._line()
                    break
                body += self._take(size)
                self._take(2)
        else:
            body = self._take(int(headers.get("content-length", "0")))
        return status, headers, body

    def call(self, method, body=None, headers=None, path="/mcp"):
        self.send(method, body, headers, path)
        return self.read()


def rpc(id_, method, params=None):
    m = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        m["params"] = params
    return m


def tool(id_, name, args=None, meta=None):
    p = {"name": name}
    if args is not None:
        p["arguments"] = args
    if meta is not None:
        p["_meta"] = meta
    return rpc(id_, "tools/call", p)


def test_http(tmp):
    port = free_port()
    log = os.path.join(tmp, "http.log")
    db = os.path.join(tmp, "http.db")
    proc = subprocess.Popen([BIN, "--db", db, "--init-demo", "--http", "127.0.0.1:%d" % port,
                             "--log", log], stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.05)
    c = Http(port)
    st, h, b = c.call("POST", rpc(1, "initialize", {"protocolVersion": "2025-03-26"}))
    sid = h.get("mcp-session-id", "")
    check(st == 200 and len(sid) == 32 and all(ch in "0123456789abcdef" for ch in sid),
          "initialize returns 200 and a 128-bit hex session id")
    check(json.loads(b)["result"]["protocolVersion"] == "2025-03-26", "version echoed")
    S = {"Mcp-Session-Id": sid}
    st, _, b = c.call("POST", {"jsonrpc": "2.0", "method": "notifications/initialized"}, S)
    check(st == 202 and b == b"", "notification -> 202 without body")
    st, _, b = c.call("POST", rpc(2, "tools/list"), S)
    names = [t["name"] for t in json.loads(b)["result"]["tools"]]
    check(names == ["list_tables", "describe_table", "query", "execute", "slow_count"], "tools/list")
    st, _, b = c.call("POST", tool(3, "query", {"sql": "SELECT count(*) FROM customers"}), S)
    check(json.loads(b)["result"]["structuredContent"]["rows"] == [[6]], "query over HTTP")
    st, _, b = c.call("POST", [rpc(4, "ping"), tool(5, "slow_count", {"steps": 2, "interval_ms": 10}),
                               {"jsonrpc": "2.0", "method": "notifications/initialized"}], S)
    arr = json.loads(b)
    check(st == 200 and [m["id"] for m in arr] == [4, 5], "2025-03-26 batch with a slow job")
    st, _, b = c.call("POST", rpc(6, "ping"), {"Mcp-Session-Id": "0" * 32})
    check(st == 404, "unknown session -> 404")
    st, _, b = c.call("POST", rpc(6, "ping"))
    check(st == 400, "missing session -> 400")
    st, h, _ = c.call("GET", None, S)
    check(st == 405 and h.get("allow") == "POST, DELETE", "GET -> 405 with Allow")
    st, _, _ = c.call("POST", rpc(7, "ping"), dict(S, Accept="text/html"))
    check(st == 406, "Accept without JSON -> 406")
    st, _, _ = c.call("POST", rpc(7, "ping"), dict(S, **{"MCP-Protocol-Version": "1999-01-01"}))
    check(st == 400, "unsupported MCP-Protocol-Version -> 400")
    st, _, _ = c.call("POST", rpc(7, "ping"), dict(S, Origin="http://evil.example"))
    check(st == 403, "foreign Origin -> 403")
    st, _, _ = c.call("POST", rpc(7, "ping"), dict(S, Origin="http://localhost:3000"))
    check(st == 200, "loopback Origin allowed")
    st, _, b = c.call("POST", b"{nope", S)
    check(st == 400 and json.loads(b)["error"]["code"] == -32700, "malformed JSON -> 400 / -32700")
    st, _, _ = c.call("POST", rpc(8, "ping"), S, path="/other")
    check(st == 404, "other path -> 404")

    # SSE progress, then the same connection keeps serving.
    st, h, b = c.call("POST", tool(9, "slow_count", {"steps": 3, "interval_ms": 20},
                                   {"progressToken": "tok"}), S)
    events = [json.loads(l[6:]) for l in b.decode().split("\n") if l.startswith("data: ")]
    check(st == 200 and h.get("content-type") == "text/event-stream", "slow_count streams SSE")
    check([e.get("params", {}).get("progress") for e in events[:-1]] == [1, 2, 3] and
          events[-1]["result"]["content"][0]["text"] == "counted 3", "progress events then result")
    st, _, b = c.call("POST", tool(10, "slow_count", {"steps": 1, "interval_ms": 0},
                                   {"progressToken": 1}), dict(S, Accept="application/json"))
    check(st == 200 and json.loads(b)["id"] == 10, "without SSE in Accept: plain JSON")

    # Pipelining: three requests in one write, a slow one in the middle.
    c.sock.sendall(b"".join(
        ("POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nMcp-Session-Id: %s\r\n"
         "Content-Length: %d\r\n\r\n%s" % (sid, len(json.dumps(m)), json.dumps(m))).encode()
        for m in [rpc(11, "ping"), tool(12, "slow_count", {"steps": 2, "interval_ms": 30}),
                  rpc(13, "ping")]))
    ids = [json.loads(c.read()[2])["id"] for _ in range(3)]
    check(ids == [11, 12, 13], "pipelined replies in request order")

    # Size limits.
    st, h, _ = c.call("POST", b" " * ((1 << 20) + 1), S)
    check(st == 413 and h.get("connection") == "close", "body over 1 MiB -> 413 and close")
    c = Http(port)
    st, _, _ = c.call("POST", rpc(14, "ping"), dict(S, **{"X-Big": "a" * 20000}))
    check(st == 431, "header block over 16 KiB -> 431")

    c = Http(port)
    st, _, _ = c.call("DELETE", None, S)
    check(st == 200, "DELETE session -> 200")
    st, _, _ = c.call("POST", rpc(15, "ping"), S)
    check(st == 404, "deleted session -> 404")

    # A client that goes away in the middle of a stream.
    d = Http(port)
    st, h, b = d.call("POST", rpc(1, "initialize", {}))
    d.send("POST", tool(2, "slow_count", {"steps": 3, "interval_ms": 50}, {"progressToken": "x"}),
           {"Mcp-Session-Id": h["mcp-session-id"]})
    d.sock.close()
    time.sleep(0.3)

    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=10)[1].decode()
    check(proc.returncode == 0, "HTTP server exits 0 on SIGTERM")
    check("ERROR: " not in err and "runtime error" not in err, "no sanitizer reports (HTTP)")
    if "ERROR" in err or "runtime error" in err:
        print(err)
    lines = [json.loads(l) for l in open(log)]
    check(any(l.get("tool") == "query" for l in lines), "--log records tool calls")


def test_stdio(tmp):
    db = os.path.join(tmp, "stdio.db")
    msgs = [
        rpc(1, "initialize", {"protocolVersion": "2099-01-01"}),
        tool(2, "slow_count", {"steps": 2, "interval_ms": 200}, {"progressToken": "s"}),
        tool(3, "list_tables"),
        tool(4, "execute", {"sql": "DELETE FROM orders"}),
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 99}},
    ]
    text = "".join(json.dumps(m) + "\n" for m in msgs) + "\n  \n{broken\n"
    p = subprocess.run([BIN, "--db", db, "--init-demo", "--readonly"], input=text.encode(),
                       capture_output=True, timeout=20)
    out = [json.loads(l) for l in p.stdout.decode().splitlines()]
    byid = {m.get("id"): m for m in out if "id" in m}
    check(p.returncode == 0, "stdio exits 0 on EOF after the last job")
    check(byid[1]["result"]["protocolVersion"] == "2025-06-18", "unknown version -> 2025-06-18")
    check(byid[3]["result"]["structuredContent"]["tables"] == ["customers", "orders"],
          "list_tables over stdio")
    check(byid[4]["result"]["isError"] is True, "--readonly refuses execute")
    check(byid[None]["error"]["code"] == -32700, "malformed line -> -32700")
    prog = [m for m in out if m.get("method") == "notifications/progress"]
    check(len(prog) == 2 and out[-1]["id"] == 2, "stdio progress before the slow result")
    check(b"ERROR" not in p.stderr and b"runtime error" not in p.stderr,
          "no sanitizer reports (stdio)")

    # Cancellation: the slow request never answers.
    msgs = [rpc(1, "initialize", {}), tool(2, "slow_count", {"steps": 5, "interval_ms": 100}),
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}},
            rpc(3, "ping")]
    p = subprocess.run([BIN, "--db", db], input="".join(json.dumps(m) + "\n" for m in msgs).encode(),
                       capture_output=True, timeout=20)
    ids = [json.loads(l).get("id") for l in p.stdout.decode().splitlines()]
    check(ids == [1, 3], "cancelled slow_count sends no response")


with tempfile.TemporaryDirectory() as tmp:
    test_http(tmp)
    test_stdio(tmp)
print("1..%d" % count)
sys.exit(1 if failures else 0)
