#!/usr/bin/env python3
"""Fetch files from a running `privsep serve`, written from PROTOCOL.md alone.

Usage: fetch.py SOCKET FILE...

Connects to the server's unix socket (AF_UNIX, SOCK_SEQPACKET), sends a hello
with no rules (a server's policy is its own), waits for ready, then asks for
each FILE with an open request and copies the descriptor that comes back to
standard output. Standard library only (Python 3.9 or later, for
socket.recv_fds).

Exit status: 0 if every FILE was printed, 1 if any failed or the server
refused the connection, 2 on a usage error.
"""

import os
import socket
import struct
import sys

MAGIC = b"PS"
VERSION = 1
HEADER = struct.Struct("<2sBBIIHH")  # magic, version, type, id, length, nfd, reserved
MAX_MESSAGE = 65536
MAX_FDS = 253

T_HELLO, T_READY, T_OPEN, T_OPENED, T_ERROR = 1, 2, 3, 4, 5

REASONS = {
    1: "denied by policy",
    2: "bad request",
    3: "system error",
    4: "path escapes the rule",
    5: "not a regular file or directory",
    6: "protocol violation",
}


class ProtocolError(Exception):
    pass


def message(typ, msg_id, payload=b""):
    """One whole message: the 16-byte header, then the payload."""
    return HEADER.pack(MAGIC, VERSION, typ, msg_id, len(payload), 0, 0) + payload


def send(sock, msg):
    sock.sendmsg([msg], [], socket.MSG_NOSIGNAL)


def receive(sock):
    """Receive one message: (type, id, payload, descriptors)."""
    data, fds, flags, _ = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS, socket.MSG_CMSG_CLOEXEC)
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ProtocolError("message or descriptors truncated")
        if not data:
            raise EOFError("the server closed the connection")
        if len(data) < HEADER.size:
            raise ProtocolError("message shorter than the header")
        magic, version, typ, msg_id, length, nfd, reserved = HEADER.unpack_from(data)
        if magic != MAGIC or version != VERSION or reserved != 0:
            raise ProtocolError("bad header")
        if length != len(data) - HEADER.size or nfd != len(fds):
            raise ProtocolError("length or descriptor count does not match")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return typ, msg_id, data[HEADER.size:], fds


def describe(payload):
    """Text for an error payload: u32 errno, u16 reason, u16 reserved."""
    err, reason, _ = struct.unpack("<IHH", payload)
    return "%s (%s)" % (REASONS.get(reason, "reason %d" % reason), os.strerror(err))


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, files = argv[1], argv[2:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(path)
    except OSError as e:
        print("fetch.py: connect %s: %s" % (path, e.strerror), file=sys.stderr)
        return 1
    with sock:
        # hello: u16 version, u16 flags, u16 rule count, u16 reserved; no rules.
        try:
            send(sock, message(T_HELLO, 0, struct.pack("<HHHH", VERSION, 0, 0, 0)))
        except BrokenPipeError:
            pass  # a server that refused us has said why: read it below
        typ, msg_id, payload, fds = receive(sock)
        if typ == T_ERROR and msg_id == 0:
            # Reason 1 here means this uid and gid may not connect; 3 with
            # EUSERS, that the server has as many clients as it takes.
            print("fetch.py: the server refused this connection: %s" % describe(payload), file=sys.stderr)
            return 1
        if typ != T_READY or msg_id != 0 or fds:
            raise ProtocolError("first reply is type %d id %d, want ready" % (typ, msg_id))
        pid, version, features = struct.unpack("<IHH", payload)

        status = 0
        for i, name in enumerate(files, start=1):
            # open: u32 flags, u32 mode, then the path (absolute and clean).
            name = os.path.abspath(name)
            send(sock, message(T_OPEN, i, struct.pack("<II", os.O_RDONLY, 0) + os.fsencode(name)))
            typ, msg_id, payload, fds = receive(sock)
            if msg_id != i:
                raise ProtocolError("reply for request %d, want %d" % (msg_id, i))
            if typ == T_OPENED and len(fds) == 1:
                with os.fdopen(fds[0], "rb") as f:
                    while True:
                        chunk = f.read(65536)
                        if not chunk:
                            break
                        sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
            elif typ == T_ERROR:
                print("fetch.py: open %s: %s" % (name, describe(payload)), file=sys.stderr)
                status = 1
            else:
                raise ProtocolError("unexpected reply type %d" % typ)
        # End of session: shut down our sending side; the server answers
        # what it has and closes.
        sock.shutdown(socket.SHUT_WR)
        return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
