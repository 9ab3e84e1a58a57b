#!/usr/bin/env python3
"""Synthetic Linux endpoint events for the 3-step sequence benchmark (docs/benchmarks.md).

The same shape as `cargo xtask gen-events` (Elastic Defend's process, file and network
events, with the bulk rules never read), but generated from process lifetimes, so that
a process's file and network events carry its `process.entity_id` and a `sequence by
host.id, process.entity_id` rule has partial matches to keep (`gen-events` gives every
event a fresh entity id, so no sequence by entity ever advances).

The model: processes start (`exec`, some `fork`) on one of `--hosts` hosts, live from
10 ms to 10 minutes (most under a second, a few past the end of the trace), and between
start and `end` write, delete and rename files and open and accept connections. A few
processes started by shells, interpreters and downloaders act as droppers: they create
a file in /tmp, /var/tmp or /dev/shm and then connect to a public address, most within
seconds, some after more than 30 s. Events are written in time order, `@timestamp`
strictly increasing (`--rate` events per second on average, over all hosts), and
`event.sequence` numbers them from 1000, so results can be compared event by event.

Deterministic: the same options give the same bytes (python's `random.Random`, whose
sequence is stable across versions for the calls used here). No event data is committed.

Usage: gen_sequence_events.py [--count N] [--seed S] [--rate R] [--hosts H] > events.ndjson
"""

import argparse
import calendar
import heapq
import json
import random
import sys
import time

# name, executable, argument lists, weight (as kestrel-rt/benches/replay/events.rs)
PROGRAMS = [
    ("bash", "/usr/bin/bash", ['-c "curl -s http://10.0.4.2/health | grep ok"', "-l", "/opt/app/run.sh", "-i"], 6),
    ("sh", "/usr/bin/sh", ['-c "ls -la /var/log"', "/etc/init.d/nginx reload", "-c id"], 5),
    ("dash", "/usr/bin/dash", ["/etc/cron.daily/logrotate", "-c uptime"], 2),
    ("python3", "/usr/bin/python3", ["/opt/app/worker.py --queue default", "-m pip list", "manage.py migrate"], 5),
    ("curl", "/usr/bin/curl", ["-s -o /tmp/pkg.tar.gz https://mirror.example.org/pkg.tar.gz", "-fsSL https://get.example.com"], 3),
    ("wget", "/usr/bin/wget", ["-q https://mirror.example.org/file.deb", "-O /tmp/a.sh http://203.0.113.7/a.sh"], 1),
    ("sshd", "/usr/sbin/sshd", ["-D", "-R"], 2),
    ("systemd", "/usr/lib/systemd/systemd", ["--user", "--switched-root --system --deserialize 31"], 2),
    ("cron", "/usr/sbin/cron", ["-f"], 2),
    ("sudo", "/usr/bin/sudo", ["-u postgres psql", "apt-get update", "systemctl restart nginx"], 2),
    ("ls", "/usr/bin/ls", ["-la", "--color=auto /home/ubuntu"], 6),
    ("cat", "/usr/bin/cat", ["/etc/os-release", "/proc/cpuinfo", "/var/log/syslog"], 6),
    ("grep", "/usr/bin/grep", ["-r TODO /opt/app", "-i error /var/log/syslog"], 5),
    ("awk", "/usr/bin/awk", ["{print $1}", "-F: {print $1} /etc/passwd"], 3),
    ("sed", "/usr/bin/sed", ["-i s/a/b/ /etc/app.conf", "-n 1p"], 3),
    ("git", "/usr/bin/git", ["pull --ff-only", "status --porcelain", "fetch origin"], 3),
    ("node", "/usr/bin/node", ["/srv/web/server.js", "--max-old-space-size=4096 build.js"], 3),
    ("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", ["-jar /opt/jenkins/jenkins.war", "-Xmx2g -cp app.jar Main"], 2),
    ("docker", "/usr/bin/docker", ["ps", "run --rm alpine true", "logs web"], 2),
    ("containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2", ["-namespace moby -id 4f2a -address /run/containerd/containerd.sock"], 2),
    ("tar", "/usr/bin/tar", ["-xzf /tmp/pkg.tar.gz -C /opt", "-czf backup.tgz /etc"], 2),
    ("chmod", "/usr/bin/chmod", ["+x /tmp/a.sh", "644 /etc/app.conf"], 2),
    ("apt-get", "/usr/bin/apt-get", ["update", "install -y nginx"], 1),
    ("nginx", "/usr/sbin/nginx", ["-g daemon on; master_process on;"], 2),
    ("postgres", "/usr/lib/postgresql/15/bin/postgres", ["-D /var/lib/postgresql/15/main"], 2),
    ("ps", "/usr/bin/ps", ["aux", "-ef"], 3),
    ("id", "/usr/bin/id", ["-u", ""], 2),
    ("uname", "/usr/bin/uname", ["-a", "-r"], 2),
    ("nc", "/usr/bin/nc", ["-z 10.0.0.5 22", "-lvnp 4444"], 1),
    ("perl", "/usr/bin/perl", ["-e print 1", "/usr/share/debconf/frontend"], 1),
]
# The programs a dropper can be (the rule's first step names these and a few more).
DROPPERS = {"bash", "sh", "dash", "python3", "perl", "curl", "wget", "nc"}

PARENTS = [
    ("bash", "/usr/bin/bash"),
    ("sshd", "/usr/sbin/sshd"),
    ("systemd", "/usr/lib/systemd/systemd"),
    ("cron", "/usr/sbin/cron"),
    ("sh", "/usr/bin/sh"),
    ("python3", "/usr/bin/python3"),
    ("containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2"),
    ("sudo", "/usr/bin/sudo"),
    ("node", "/usr/bin/node"),
]
USERS = [("0", "root"), ("1000", "ubuntu"), ("33", "www-data"), ("113", "postgres"), ("1001", "deploy")]
DIRECTORIES = ["/tmp", "/var/tmp", "/home/ubuntu", "/etc", "/opt/app", "/var/log", "/root", "/dev/shm", "/etc/cron.d", "/usr/local/bin"]
STAGING = ["/tmp", "/var/tmp", "/dev/shm"]
FILE_NAMES = ["config.json", "run.sh", "app.log", "data.db", "id_rsa", "authorized_keys", "nginx.conf", "pkg.tar.gz", "cache", "a.sh", "README", "libfoo.so.1"]
PRIVATE_PREFIXES = ["10.0.{}.{}", "10.12.{}.{}", "192.168.{}.{}", "172.16.{}.{}", "127.0.{}.{}"]
BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
START_MICROS = calendar.timegm(time.strptime("2024-05-01T00:00:00", "%Y-%m-%dT%H:%M:%S")) * 1_000_000


class Generator:
    def __init__(self, seed, rate, hosts):
        self.rng = random.Random(seed)
        self.rate = rate
        rng = self.rng
        self.hosts = [
            {
                "id": self.hex(32),
                "name": f"web-{idx:02}.prod",
                "ip": f"10.0.{idx}.{10 + rng.randrange(200)}",
                "agent": "-".join(self.hex(n) for n in (8, 4, 4, 4, 12)),
            }
            for idx in range(hosts)
        ]
        self.program_weights = [program[3] for program in PROGRAMS]
        self.pending = []  # heap of (micros, order, kind, process)
        self.order = 0

    def hex(self, length):
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def entity_id(self):
        return "".join(self.rng.choice(BASE64) for _ in range(44))

    def schedule(self, micros, kind, process):
        self.order += 1
        heapq.heappush(self.pending, (micros, self.order, kind, process))

    def spawn(self, now):
        """A new process; returns its start event's kind ("exec" or "fork") and the process."""
        rng = self.rng
        name, executable, arg_choices, _ = rng.choices(PROGRAMS, weights=self.program_weights)[0]
        args = [name] + [arg for arg in rng.choice(arg_choices).split(" ") if arg]
        parent_name, parent_executable = rng.choice(PARENTS)
        pid = 1000 + rng.randrange(4_000_000)
        process = {
            "host": rng.choice(self.hosts),
            "entity_id": self.entity_id(),
            "pid": pid,
            "name": name,
            "executable": executable,
            "args": args,
            "working_directory": rng.choice(DIRECTORIES),
            "interactive": rng.random() < 0.2,
            "ancestry": [self.entity_id() for _ in range(1 + rng.randrange(2) * rng.randrange(2))],
            "parent": {"entity_id": self.entity_id(), "pid": pid - 1 - rng.randrange(900), "name": parent_name, "executable": parent_executable},
            "entry_leader": {"pid": 1 + rng.randrange(2000), "type": rng.choice(["sshd", "init", "terminal", "container"])},
            "user": rng.choice(USERS),
        }
        # Lifetime: most processes are short, some live for minutes.
        roll = rng.random()
        if roll < 0.55:
            life = rng.uniform(0.01, 1.0)
        elif roll < 0.85:
            life = rng.uniform(1.0, 30.0)
        else:
            life = rng.uniform(30.0, 600.0)
        end = now + int(life * 1e6)
        if name in DROPPERS and rng.random() < 0.06:
            # Stage a file, then call out: mostly within seconds, sometimes past 30 s.
            staged = now + int(rng.uniform(0.05, 3.0) * 1e6)
            late = rng.random() < 0.15
            connect = staged + int((rng.uniform(20.0, 60.0) if late else rng.uniform(0.05, 5.0)) * 1e6)
            self.schedule(staged, "drop", process)
            self.schedule(connect, "beacon", process)
            end = max(end, connect + int(rng.uniform(0.01, 2.0) * 1e6))
        # Other activity, anywhere in the lifetime: about 1.8 file and 0.8 network events.
        for _ in range(self.small_count(1.8)):
            self.schedule(rng.randint(now + 1, end), "file", process)
        for _ in range(self.small_count(0.8)):
            self.schedule(rng.randint(now + 1, end), "network", process)
        self.schedule(end, "end", process)
        return ("fork" if rng.random() < 0.08 else "exec"), process

    def small_count(self, mean):
        """A geometric count with this mean."""
        count = 0
        stop = 1.0 / (1.0 + mean)
        while self.rng.random() > stop:
            count += 1
        return count

    def events(self, count):
        rng = self.rng
        micros = START_MICROS
        gap = max(2, int(2e6 / self.rate))
        for sequence in range(count):
            micros += 1 + rng.randrange(gap - 1)
            if self.pending and self.pending[0][0] <= micros:
                _, _, kind, process = heapq.heappop(self.pending)
            else:
                kind, process = self.spawn(micros)
            yield self.event(sequence, micros, kind, process)

    def event(self, sequence, micros, kind, process):
        rng = self.rng
        host = process["host"]
        line = {"@timestamp": rfc3339(micros), "agent": {"id": host["agent"], "type": "endpoint", "version": "8.13.2"}}
        if kind in ("exec", "fork", "end"):
            line["process"] = full_process(process)
            line["message"] = "Endpoint process event"
            action, event_type, category = kind, ("end" if kind == "end" else "start"), "process"
        elif kind in ("file", "drop"):
            line["process"] = short_process(process)
            if kind == "drop":
                action, event_type = "creation", "creation"
                directory, name = rng.choice(STAGING), rng.choice(["a.sh", "run.sh", "libfoo.so.1", "cache"])
            else:
                action, event_type = rng.choice([("creation", "creation"), ("deletion", "deletion"), ("rename", "change"), ("modification", "change")])
                directory, name = rng.choice(DIRECTORIES), rng.choice(FILE_NAMES)
            line["file"] = file_fields(rng, directory, name, action)
            line["message"] = "Endpoint file event"
            category = "file"
        else:
            line["process"] = short_process(process)
            if kind == "beacon":
                action = "connection_attempted"
                remote = public_ip(rng)
            else:
                action = rng.choice(["connection_attempted", "connection_accepted", "disconnect_received"])
                remote = public_ip(rng) if rng.random() < 0.4 else rng.choice(PRIVATE_PREFIXES).format(rng.randrange(256), 1 + rng.randrange(254))
            event_type = "end" if action == "disconnect_received" else "start"
            network_fields(line, rng, host, action, remote)
            line["message"] = "Endpoint network event"
            category = "network"
        dataset = f"endpoint.events.{category}"
        line["event"] = {
            "sequence": sequence + 1000,
            "kind": "event",
            "module": "endpoint",
            "action": action,
            "id": self.entity_id()[:12],
            "category": [category],
            "type": [event_type],
            "dataset": dataset,
        }
        line["host"] = {
            "hostname": host["name"],
            "os": {"type": "linux", "kernel": "6.5.0-1017-aws", "version": "22.04.4"},
            "ip": [host["ip"]],
            "id": host["id"],
        }
        uid, uname = process["user"]
        line["user"] = {"id": uid, "name": uname}
        line["data_stream"] = {"dataset": dataset}
        line["ecs"] = {"version": "8.10.0"}
        return json.dumps(line, separators=(",", ":"))


def short_process(process):
    return {"entity_id": process["entity_id"], "pid": process["pid"], "name": process["name"], "executable": process["executable"]}


def full_process(process):
    parent = process["parent"]
    return {
        "entity_id": process["entity_id"],
        "pid": process["pid"],
        "name": process["name"],
        "executable": process["executable"],
        "Ext": {"ancestry": process["ancestry"]},
        "args": process["args"],
        "args_count": len(process["args"]),
        "command_line": " ".join(process["args"]),
        "working_directory": process["working_directory"],
        "interactive": process["interactive"],
        "parent": {
            "entity_id": parent["entity_id"],
            "pid": parent["pid"],
            "name": parent["name"],
            "executable": parent["executable"],
            "args": [parent["name"]],
            "command_line": parent["name"],
        },
        "entry_leader": {"pid": process["entry_leader"]["pid"], "entry_meta": {"type": process["entry_leader"]["type"]}},
    }


def file_fields(rng, directory, name, action):
    fields = {"path": f"{directory}/{name}", "name": name}
    if "." in name:
        fields["extension"] = name.rsplit(".", 1)[1]
    fields.update({"size": rng.randrange(1 << 20), "inode": str(100_000 + rng.randrange(9_000_000)), "mode": "0644"})
    if action == "rename":
        fields["Ext"] = {"original": {"path": f"{directory}/.{name}.tmp", "name": f".{name}.tmp"}}
    return fields


def public_ip(rng):
    while True:
        first = 1 + rng.randrange(223)
        if first not in (10, 127, 172, 192):
            return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{1 + rng.randrange(254)}"


def network_fields(line, rng, host, action, remote):
    local_port = 32768 + rng.randrange(28000)
    remote_port = rng.choice([22, 53, 80, 443, 443, 443, 5432, 8080, 4444])
    if action == "connection_attempted":
        source, destination, direction = (host["ip"], local_port), (remote, remote_port), "egress"
    else:
        source, destination, direction = (remote, local_port), (host["ip"], remote_port), "ingress"
    line["source"] = {"ip": source[0], "port": source[1]}
    line["destination"] = {"ip": destination[0], "port": destination[1]}
    line["network"] = {"transport": "tcp", "type": "ipv4", "direction": direction}


def rfc3339(micros):
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=500.0, help="events per second, on average, over all hosts")
    parser.add_argument("--hosts", type=int, default=8)
    args = parser.parse_args()
    generator = Generator(args.seed, args.rate, args.hosts)
    out = sys.stdout
    for line in generator.events(args.count):
        out.write(line)
        out.write("\n")


if __name__ == "__main__":
    main()
