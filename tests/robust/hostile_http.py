#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""A hostile HTTP client against the coordinator, and a well-behaved one
timing /health beside it (tests/robust/test_serve_hostile.sh).

  hostile_http.py PORT MODE CONNS SECONDS [--src ADDR] [--probe-every S]

The hostile side, from source address ADDR (default 127.0.0.2, so the
server's per-address limits can tell it from the probe on 127.0.0.1), keeps
CONNS connections open for SECONDS and reopens every one the server closes:
  half    sends an unfinished request ("GET /health HTTP/1.1\r\nHost: x\r\n")
  silent  sends nothing
  drip    sends an endless header one byte a second
Meanwhile GET /health is sent from 127.0.0.1 every --probe-every seconds on
a fresh connection, and each answer's latency measured. Prints one JSON
object: probes, failures (no 200 within 5 s), max_latency (s), cut (hostile
connections the server closed after they were established), opened.
"""
import argparse
import errno
import json
import selectors
import socket
import threading
import time

HALF = b"GET /health HTTP/1.1\r\nHost: x\r\n"
DRIP = b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 100000


class Hostile(threading.Thread):
    def __init__(self, port, mode, conns, src, until):
        super().__init__(daemon=True)
        self.port, self.mode, self.conns, self.src, self.until = port, mode, conns, src, until
        self.sel = selectors.DefaultSelector()
        self.socks = {}  # socket -> {"up": connected, "sent": bytes sent, "t": opened}
        self.cut = self.opened = 0

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self.src, 0))
            s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            return
        self.socks[s] = {"up": False, "sent": 0, "t": time.monotonic()}
        self.sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)
        self.opened += 1

    def drop(self, s, cut):
        st = self.socks.pop(s)
        self.sel.unregister(s)
        s.close()
        if cut and st["up"]:
            self.cut += 1

    def send(self, s, st, n):
        data = HALF if self.mode == "half" else DRIP
        if self.mode == "silent" or st["sent"] >= len(data):
            return
        try:
            st["sent"] += s.send(data[st["sent"]:st["sent"] + n])
        except BlockingIOError:
            pass
        except OSError:
            self.drop(s, True)

    def run(self):
        last_drip = start = time.monotonic()
        while time.monotonic() < self.until:
            # Reopens are paced (2000 a second): once the server refuses an
            # address's extra connections, churning faster gains nothing.
            budget = int((time.monotonic() - start) * 2000) + 2000 - self.opened
            for _ in range(max(0, min(200, self.conns - len(self.socks), budget))):
                self.open_one()
            for key, ev in self.sel.select(timeout=0.05):
                s = key.fileobj
                st = self.socks.get(s)
                if st is None:
                    continue
                if not st["up"] and ev & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err not in (0, errno.EINPROGRESS):
                        self.drop(s, False)
                        continue
                    st["up"] = True
                    self.sel.modify(s, selectors.EVENT_READ)
                    self.send(s, st, len(HALF) if self.mode == "half" else 1)
                elif ev & selectors.EVENT_READ:
                    try:
                        data = s.recv(4096)
                    except OSError:
                        data = b""
                    if not data:  # the server closed it
                        self.drop(s, True)
            now = time.monotonic()
            if self.mode == "drip" and now - last_drip >= 1.0:
                last_drip = now
                for s, st in list(self.socks.items()):
                    if st["up"]:
                        self.send(s, st, 1)
            # A connection stuck in connect for 5 s (a full backlog) is retried.
            for s, st in list(self.socks.items()):
                if not st["up"] and now - st["t"] > 5:
                    self.drop(s, False)
        for s in list(self.socks):
            self.drop(s, False)


def probe(port):
    """Latency of one GET /health on a fresh connection, or None."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        ok = data.startswith(b"HTTP/1.1 200") and b'"ok"' in data
        return time.monotonic() - t0 if ok else None
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("mode", choices=["half", "silent", "drip"])
    ap.add_argument("conns", type=int)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--src", default="127.0.0.2")
    ap.add_argument("--probe-every", type=float, default=0.25)
    a = ap.parse_args()
    try:  # a few thousand sockets need more than a default soft limit of 1024
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, a.conns + 256)), hard))
    except (ImportError, ValueError, OSError):
        pass
    h = Hostile(a.port, a.mode, a.conns, a.src, time.monotonic() + a.seconds)
    h.start()
    time.sleep(min(1.0, a.seconds / 4))  # let it take what it can first
    lat = []
    while h.is_alive():
        lat.append(probe(a.port))
        time.sleep(a.probe_every)
    h.join()
    done = [x for x in lat if x is not None]
    print(json.dumps({"probes": len(lat), "failures": len(lat) - len(done),
                      "max_latency": max(done) if done else None, "cut": h.cut, "opened": h.opened}))


if __name__ == "__main__":
    main()
