# SPDX-License-Identifier: GPL-2.0-only
# The load for DebianPackageGuestTests' tinyproxy test, run in the guest:
# HTTP requests through tinyproxy (127.0.0.1:8888) to a local origin
# (127.0.0.1:8000). Each request carries a Connection header, so the proxy
# runs remove_connection_headers(), the patched function, for every one.
#   client.py            loop until /root/stop exists; one line per request
#                        to /root/answers ("ok N" or "FAIL N reason").
#   client.py VALUE      one request with "Connection: VALUE"; prints the
#                        status line, exits 1 unless the answer is whole.
import os
import socket
import sys


def request(connection):
    s = socket.create_connection(("127.0.0.1", 8888), timeout=30)
    s.sendall(
        b"GET http://127.0.0.1:8000/page HTTP/1.0\r\nHost: 127.0.0.1:8000\r\n"
        + b"Connection: " + connection.encode() + b"\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    status = data.split(b"\r\n", 1)[0]
    whole = status.startswith(b"HTTP/1.") and b" 200 " in status and data.endswith(b"suture-origin\n")
    return whole, status


if len(sys.argv) > 1:
    whole, status = request(sys.argv[1])
    print(status.decode(errors="replace"))
    sys.exit(0 if whole else 1)

n = 0
while not os.path.exists("/root/stop"):
    n += 1
    try:
        whole, status = request("close")
        line = "ok %d" % n if whole else "FAIL %d %r" % (n, status)
    except Exception as e:
        line = "FAIL %d %r" % (n, e)
    with open("/root/answers", "a") as f:
        f.write(line + "\n")
open("/root/done", "w").close()
