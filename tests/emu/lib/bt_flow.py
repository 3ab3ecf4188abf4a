#!/usr/bin/env python3
"""One measured TCP flow for the emulation testbed, independent of glasnode.

A flow starts with a prefix and continues with incompressible random bytes:
  bt       a BitTorrent handshake: 0x13 "BitTorrent protocol", 8 reserved bytes,
           a 20-byte info-hash and a 20-byte peer id (68 bytes);
  control  the same 68 bytes bit-inverted (nothing a classifier recognises);
  random   no prefix.
One side sends, the other receives and measures. The server prints "ready <port>" once it
listens; each side prints one JSON line when done. Every phase is bounded in time.

  bt_flow.py serve   --bind IP --port P --role recv|send [options]
  bt_flow.py connect --host IP --port P --role send|recv [options]

"end" in the JSON: done (sender finished), eof (peer closed), reset (ECONNRESET/EPIPE:
a RST arrived), idle (receiver got nothing for --idle seconds), stalled (sender could not
send for --idle seconds), timeout (hard deadline), or the connect outcome for a client
that never connected (connect-timeout, refused, error).
"""

import argparse
import errno
import json
import os
import random
import socket
import sys
import time

HANDSHAKE_LEN = 68
CHUNK = 64 * 1024


def handshake(seed):
    rng = random.Random(seed)
    reserved = bytes([0, 0, 0, 0, 0, 0x10, 0, 0x05])
    info_hash = bytes(rng.getrandbits(8) for _ in range(20))
    peer_id = b"-GN0001-" + bytes(rng.choice(b"0123456789abcdef") for _ in range(12))
    return b"\x13BitTorrent protocol" + reserved + info_hash + peer_id


def prefix_for(payload, seed):
    if payload == "bt":
        return handshake(seed)
    if payload == "control":
        return bytes(b ^ 0xFF for b in handshake(seed))
    return b""


def set_cc(sock, cc):
    if cc:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()


def is_reset(exc):
    return isinstance(exc, (ConnectionResetError, BrokenPipeError)) or getattr(
        exc, "errno", None
    ) in (errno.ECONNRESET, errno.EPIPE)


def send_flow(sock, args):
    """Sends the prefix, then random bytes for --duration seconds."""
    pool = os.urandom(1 << 20)
    view = memoryview(pool)
    start = time.monotonic()
    deadline = start + args.duration
    sock.settimeout(args.idle)
    sent = 0
    end = "done"
    t_reset = None
    try:
        sock.sendall(prefix_for(args.payload, args.seed))
        sent = len(prefix_for(args.payload, args.seed))
        off = 0
        while time.monotonic() < deadline:
            n = sock.send(view[off : off + CHUNK])
            sent += n
            off = (off + n) % (len(pool) - CHUNK)
        sock.shutdown(socket.SHUT_WR)
        # Wait (bounded) for the receiver to close, so a RST that arrives late is still seen;
        # a throttled path may still be draining the send buffer.
        sock.settimeout(args.idle + args.duration)
        while sock.recv(4096):
            pass
    except socket.timeout:
        end = "stalled"
    except OSError as exc:
        if is_reset(exc):
            end = "reset"
            t_reset = time.monotonic() - start
        else:
            end = "error:" + (exc.strerror or type(exc).__name__)
    elapsed = time.monotonic() - start
    return {"bytes": sent, "seconds": round(elapsed, 3), "end": end,
            "reset_after_s": None if t_reset is None else round(t_reset, 3)}


def recv_flow(sock, args):
    """Receives until EOF, RST, --idle seconds of silence, or --duration + --idle overall."""
    start = time.monotonic()
    hard = start + args.duration + 2 * args.idle
    buf = bytearray(CHUNK)
    total = 0
    first = last = None
    head = bytearray()
    end = "timeout"
    t_reset = None
    while True:
        now = time.monotonic()
        if now >= hard:
            break
        sock.settimeout(min(args.idle, hard - now))
        try:
            n = sock.recv_into(buf)
        except socket.timeout:
            end = "idle"
            break
        except OSError as exc:
            if is_reset(exc):
                end = "reset"
                t_reset = time.monotonic() - start
            else:
                end = "error:" + (exc.strerror or type(exc).__name__)
            break
        if n == 0:
            end = "eof"
            break
        now = time.monotonic()
        if first is None:
            first = now
        last = now
        total += n
        if len(head) < HANDSHAKE_LEN:
            head += buf[: HANDSHAKE_LEN - len(head)]
    span = (last - first) if first is not None and last > first else 0.0
    mbps = total * 8 / span / 1e6 if span > 0 else 0.0
    expected = prefix_for(args.payload, args.seed)
    return {"bytes": total, "seconds": round(span, 3), "mbps": round(mbps, 3), "end": end,
            "prefix_ok": bytes(head[: len(expected)]) == expected,
            "reset_after_s": None if t_reset is None else round(t_reset, 3)}


def run_role(sock, args):
    return send_flow(sock, args) if args.role == "send" else recv_flow(sock, args)


def serve(args):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.bind, args.port))
    ls.listen(1)
    ls.settimeout(args.accept_timeout)
    print("ready %d" % args.port, flush=True)
    try:
        sock, peer = ls.accept()
    except socket.timeout:
        return {"side": "server", "end": "no-connection"}
    ls.close()
    with sock:
        cc = set_cc(sock, args.cc)
        result = run_role(sock, args)
    result.update({"side": "server", "role": args.role, "payload": args.payload, "cc": cc,
                   "peer": "%s:%d" % peer})
    return result


def connect(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cc = set_cc(sock, args.cc)
    sock.settimeout(args.connect_timeout)
    t0 = time.monotonic()
    try:
        sock.connect((args.host, args.port))
    except socket.timeout:
        return {"side": "client", "connect": "timeout", "end": "connect-timeout"}
    except ConnectionRefusedError:
        return {"side": "client", "connect": "refused", "end": "refused"}
    except OSError as exc:
        return {"side": "client", "connect": "error", "end": "error:" + str(exc)}
    connect_ms = (time.monotonic() - t0) * 1000
    with sock:
        result = run_role(sock, args)
    result.update({"side": "client", "connect": "ok", "connect_ms": round(connect_ms, 2),
                   "role": args.role, "payload": args.payload, "cc": cc})
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["serve", "connect"])
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--host")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--role", choices=["send", "recv"], required=True)
    p.add_argument("--payload", choices=["bt", "control", "random"], default="bt")
    p.add_argument("--duration", type=float, default=3.0, help="seconds of sending")
    p.add_argument("--idle", type=float, default=2.0, help="silence that ends a flow")
    p.add_argument("--connect-timeout", type=float, default=3.0)
    p.add_argument("--accept-timeout", type=float, default=15.0)
    p.add_argument("--seed", type=int, default=1, help="seeds the info-hash and peer id")
    p.add_argument("--cc", default="", help="congestion control (default: the system's)")
    args = p.parse_args()
    if not (0 < args.duration <= 120 and 0 < args.idle <= 60):
        p.error("--duration must be in (0, 120] and --idle in (0, 60]")
    if args.mode == "connect" and not args.host:
        p.error("connect needs --host")
    result = serve(args) if args.mode == "serve" else connect(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
