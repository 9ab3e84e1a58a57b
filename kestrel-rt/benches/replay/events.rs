//! Synthetic Linux endpoint events for the replay benchmarks, shaped like Elastic Defend's
//! (`logs-endpoint.events.{process,file,network}`): one JSON object per line, 600 to
//! 1,200 bytes, `@timestamp` increasing. Deterministic: the same count and seed give the
//! same bytes on every machine, so no event data is committed.
//!
//! Besides the fields rules read (`process.*`, `file.*`, `source.*`, `destination.*`,
//! `user.*`, `event.*`, `host.os.type`), each event carries the bulk a real one does
//! (`agent`, `data_stream`, `process.Ext.ancestry`, leaders, hashes) that a projection
//! parser has to skip.
//!
//! Shared by `cargo xtask gen-events` and the `replay` bench (both include this file).

use std::io::Write;

/// splitmix64: small, fast, and identical everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn percent(&mut self, chance: u64) -> bool {
        self.below(100) < chance
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize])).collect()
    }

    /// Like Defend's base64 entity ids.
    fn entity_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..44).map(|_| char::from(ALPHABET[self.below(64) as usize])).collect()
    }
}

/// Processes: name, executable, argument lists to choose from, and a weight.
const PROGRAMS: &[(&str, &str, &[&str], u64)] = &[
    ("bash", "/usr/bin/bash", &["-c \"curl -s http://10.0.4.2/health | grep ok\"", "-l", "/opt/app/run.sh", "-i"], 6),
    ("sh", "/usr/bin/sh", &["-c \"ls -la /var/log\"", "/etc/init.d/nginx reload", "-c id"], 5),
    ("dash", "/usr/bin/dash", &["/etc/cron.daily/logrotate", "-c uptime"], 2),
    ("python3", "/usr/bin/python3", &["/opt/app/worker.py --queue default", "-m pip list", "manage.py migrate"], 5),
    ("curl", "/usr/bin/curl", &["-s -o /tmp/pkg.tar.gz https://mirror.example.org/pkg.tar.gz", "-fsSL https://get.example.com"], 3),
    ("wget", "/usr/bin/wget", &["-q https://mirror.example.org/file.deb", "-O /tmp/a.sh http://203.0.113.7/a.sh"], 1),
    ("sshd", "/usr/sbin/sshd", &["-D", "-R"], 2),
    ("systemd", "/usr/lib/systemd/systemd", &["--user", "--switched-root --system --deserialize 31"], 2),
    ("cron", "/usr/sbin/cron", &["-f"], 2),
    ("sudo", "/usr/bin/sudo", &["-u postgres psql", "apt-get update", "systemctl restart nginx"], 2),
    ("ls", "/usr/bin/ls", &["-la", "--color=auto /home/ubuntu"], 6),
    ("cat", "/usr/bin/cat", &["/etc/os-release", "/proc/cpuinfo", "/var/log/syslog"], 6),
    ("grep", "/usr/bin/grep", &["-r TODO /opt/app", "-i error /var/log/syslog"], 5),
    ("awk", "/usr/bin/awk", &["{print $1}", "-F: {print $1} /etc/passwd"], 3),
    ("sed", "/usr/bin/sed", &["-i s/a/b/ /etc/app.conf", "-n 1p"], 3),
    ("git", "/usr/bin/git", &["pull --ff-only", "status --porcelain", "fetch origin"], 3),
    ("node", "/usr/bin/node", &["/srv/web/server.js", "--max-old-space-size=4096 build.js"], 3),
    ("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", &["-jar /opt/jenkins/jenkins.war", "-Xmx2g -cp app.jar Main"], 2),
    ("docker", "/usr/bin/docker", &["ps", "run --rm alpine true", "logs web"], 2),
    ("containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2", &["-namespace moby -id 4f2a -address /run/containerd/containerd.sock"], 2),
    ("tar", "/usr/bin/tar", &["-xzf /tmp/pkg.tar.gz -C /opt", "-czf backup.tgz /etc"], 2),
    ("chmod", "/usr/bin/chmod", &["+x /tmp/a.sh", "644 /etc/app.conf"], 2),
    ("apt-get", "/usr/bin/apt-get", &["update", "install -y nginx"], 1),
    ("nginx", "/usr/sbin/nginx", &["-g daemon on; master_process on;"], 2),
    ("postgres", "/usr/lib/postgresql/15/bin/postgres", &["-D /var/lib/postgresql/15/main"], 2),
    ("ps", "/usr/bin/ps", &["aux", "-ef"], 3),
    ("id", "/usr/bin/id", &["-u", ""], 2),
    ("uname", "/usr/bin/uname", &["-a", "-r"], 2),
    ("nc", "/usr/bin/nc", &["-z 10.0.0.5 22", "-lvnp 4444"], 1),
    ("perl", "/usr/bin/perl", &["-e print 1", "/usr/share/debconf/frontend"], 1),
];

const PARENTS: &[(&str, &str)] = &[
    ("bash", "/usr/bin/bash"),
    ("sshd", "/usr/sbin/sshd"),
    ("systemd", "/usr/lib/systemd/systemd"),
    ("cron", "/usr/sbin/cron"),
    ("sh", "/usr/bin/sh"),
    ("python3", "/usr/bin/python3"),
    ("containerd-shim-runc-v2", "/usr/bin/containerd-shim-runc-v2"),
    ("sudo", "/usr/bin/sudo"),
    ("node", "/usr/bin/node"),
];

const USERS: &[(&str, &str)] = &[("0", "root"), ("1000", "ubuntu"), ("33", "www-data"), ("113", "postgres"), ("1001", "deploy")];

const DIRECTORIES: &[&str] = &["/tmp", "/var/tmp", "/home/ubuntu", "/etc", "/opt/app", "/var/log", "/root", "/dev/shm", "/etc/cron.d", "/usr/local/bin"];
const FILE_NAMES: &[&str] =
    &["config.json", "run.sh", "app.log", "data.db", "id_rsa", "authorized_keys", "nginx.conf", "pkg.tar.gz", "cache", "a.sh", "README", "libfoo.so.1"];

const HOSTS: usize = 8;

struct Host {
    id: String,
    name: String,
    ip: String,
    agent: String,
}

/// Writes `count` events, one per line.
pub fn write_events(out: &mut impl Write, count: usize, seed: u64) -> std::io::Result<()> {
    let mut rng = Rng(seed ^ 0x6b65_7374_7265_6c00);
    let hosts: Vec<Host> = (0..HOSTS)
        .map(|idx| Host {
            id: rng.hex(32),
            name: format!("web-{idx:02}.prod"),
            ip: format!("10.0.{}.{}", idx, 10 + rng.below(200)),
            agent: rng.hex(8) + "-" + &rng.hex(4) + "-" + &rng.hex(4) + "-" + &rng.hex(4) + "-" + &rng.hex(12),
        })
        .collect();
    let total_weight: u64 = PROGRAMS.iter().map(|program| program.3).sum();
    // 2024-05-01T00:00:00Z, in microseconds.
    let mut micros: i64 = 1_714_521_600_000_000;
    let mut line = Writer::default();
    for sequence in 0..count {
        micros += 1 + rng.below(400) as i64;
        let host = &hosts[rng.below(HOSTS as u64) as usize];
        let mut pick = rng.below(total_weight);
        let program = PROGRAMS.iter().find(|program| {
            if pick < program.3 {
                return true;
            }
            pick -= program.3;
            false
        });
        let program = program.unwrap_or(&PROGRAMS[0]);
        let kind = rng.below(100);
        line.buf.clear();
        line.comma = false;
        line.buf.push(b'{');
        line.str("@timestamp", &rfc3339(micros));
        agent(&mut line, host);
        let (category, action, event_type, dataset) = if kind < 50 {
            let (action, event_type) = rng.pick(&[("exec", "start"), ("exec", "start"), ("exec", "start"), ("fork", "start"), ("end", "end")]);
            process(&mut line, &mut rng, program, true);
            line.str("message", "Endpoint process event");
            ("process", action, event_type, "endpoint.events.process")
        } else if kind < 85 {
            process(&mut line, &mut rng, program, false);
            let (action, event_type) = rng.pick(&[("creation", "creation"), ("deletion", "deletion"), ("rename", "change"), ("modification", "change")]);
            file(&mut line, &mut rng, action);
            line.str("message", "Endpoint file event");
            ("file", action, event_type, "endpoint.events.file")
        } else {
            process(&mut line, &mut rng, program, false);
            let (action, event_type) = rng.pick(&[("connection_attempted", "start"), ("connection_accepted", "start"), ("disconnect_received", "end")]);
            network(&mut line, &mut rng, host, action);
            line.str("message", "Endpoint network event");
            ("network", action, event_type, "endpoint.events.network")
        };
        line.open("event");
        line.num("sequence", sequence as i64 + 1000);
        line.str("kind", "event");
        line.str("module", "endpoint");
        line.str("action", action);
        line.str("id", &rng.entity_id()[..12]);
        line.strs("category", &[category]);
        line.strs("type", &[event_type]);
        line.str("dataset", dataset);
        line.close();
        line.open("host");
        line.str("hostname", &host.name);
        line.open("os");
        line.str("type", "linux");
        line.str("kernel", "6.5.0-1017-aws");
        line.str("version", "22.04.4");
        line.close();
        line.strs("ip", &[&host.ip]);
        line.str("id", &host.id);
        line.close();
        let (uid, uname) = rng.pick(USERS);
        line.open("user");
        line.str("id", uid);
        line.str("name", uname);
        line.close();
        line.open("data_stream");
        line.str("dataset", dataset);
        line.close();
        line.open("ecs");
        line.str("version", "8.10.0");
        line.close();
        line.buf.extend_from_slice(b"}\n");
        out.write_all(&line.buf)?;
    }
    Ok(())
}

fn agent(line: &mut Writer, host: &Host) {
    line.open("agent");
    line.str("id", &host.agent);
    line.str("type", "endpoint");
    line.str("version", "8.13.2");
    line.close();
}

fn process(line: &mut Writer, rng: &mut Rng, program: &(&str, &str, &[&str], u64), full: bool) {
    let (name, executable, arg_choices, _) = *program;
    let args_text = rng.pick(arg_choices);
    let mut args: Vec<&str> = vec![name];
    args.extend(args_text.split(' ').filter(|arg| !arg.is_empty()));
    let command_line = args.join(" ");
    let (parent_name, parent_executable) = rng.pick(PARENTS);
    let pid = 1000 + rng.below(4_000_000) as i64;
    line.open("process");
    line.str("entity_id", &rng.entity_id());
    line.num("pid", pid);
    line.str("name", name);
    line.str("executable", executable);
    if full {
        line.open("Ext");
        let ancestry: Vec<String> = (0..1 + rng.below(2) * rng.below(2)).map(|_| rng.entity_id()).collect();
        line.strs("ancestry", &ancestry.iter().map(String::as_str).collect::<Vec<_>>());
        line.close();
        line.strs("args", &args);
        line.num("args_count", args.len() as i64);
        line.str("command_line", &command_line);
        line.str("working_directory", rng.pick(DIRECTORIES));
        line.bool("interactive", rng.percent(20));
        line.open("parent");
        line.str("entity_id", &rng.entity_id());
        line.num("pid", pid - 1 - rng.below(900) as i64);
        line.str("name", parent_name);
        line.str("executable", parent_executable);
        line.strs("args", &[parent_name]);
        line.str("command_line", parent_name);
        line.close();
        line.open("entry_leader");
        line.num("pid", 1 + rng.below(2000) as i64);
        line.open("entry_meta");
        line.str("type", rng.pick(&["sshd", "init", "terminal", "container"]));
        line.close();
        line.close();
    }
    line.close();
}

fn file(line: &mut Writer, rng: &mut Rng, action: &str) {
    let directory = rng.pick(DIRECTORIES);
    let name = rng.pick(FILE_NAMES);
    let path = format!("{directory}/{name}");
    line.open("file");
    line.str("path", &path);
    line.str("name", name);
    if let Some((_, extension)) = name.rsplit_once('.') {
        line.str("extension", extension);
    }
    line.num("size", rng.below(1 << 20) as i64);
    line.str("inode", &(100_000 + rng.below(9_000_000)).to_string());
    line.str("mode", "0644");
    if action == "rename" {
        line.open("Ext");
        line.open("original");
        line.str("path", &format!("{directory}/.{name}.tmp"));
        line.str("name", &format!(".{name}.tmp"));
        line.close();
        line.close();
    }
    line.close();
}

fn network(line: &mut Writer, rng: &mut Rng, host: &Host, action: &str) {
    let remote = format!("{}.{}.{}.{}", 1 + rng.below(223), rng.below(256), rng.below(256), 1 + rng.below(254));
    let local_port = 32768 + rng.below(28000) as i64;
    let remote_port = rng.pick(&[22, 53, 80, 443, 443, 443, 5432, 8080, 4444]);
    let egress = action == "connection_attempted";
    let (source_ip, source_port, destination_ip, destination_port) =
        if egress { (host.ip.as_str(), local_port, remote.as_str(), remote_port) } else { (remote.as_str(), local_port, host.ip.as_str(), remote_port) };
    line.open("source");
    line.str("ip", source_ip);
    line.num("port", source_port);
    line.close();
    line.open("destination");
    line.str("ip", destination_ip);
    line.num("port", destination_port);
    line.close();
    line.open("network");
    line.str("transport", "tcp");
    line.str("type", "ipv4");
    line.str("direction", if egress { "egress" } else { "ingress" });
    line.close();
}

/// Microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn rfc3339(micros: i64) -> String {
    // The nanosecond form ends in `000Z`: keep six digits of fraction.
    let nanos = kestrel_bundle::time::format_rfc3339(micros * 1000);
    format!("{}Z", &nanos[..nanos.len() - 4])
}

/// A JSON object written field by field.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
    /// Whether the next member needs a comma before it.
    comma: bool,
}

impl Writer {
    fn key(&mut self, key: &str) {
        if self.comma {
            self.buf.push(b',');
        }
        self.quoted(key);
        self.buf.push(b':');
        self.comma = true;
    }

    fn quoted(&mut self, text: &str) {
        self.buf.push(b'"');
        for byte in text.bytes() {
            if byte == b'"' || byte == b'\\' {
                self.buf.push(b'\\');
            }
            self.buf.push(byte);
        }
        self.buf.push(b'"');
    }

    fn open(&mut self, key: &str) {
        self.key(key);
        self.buf.push(b'{');
        self.comma = false;
    }

    fn close(&mut self) {
        self.buf.push(b'}');
        self.comma = true;
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.quoted(value);
    }

    fn strs(&mut self, key: &str, values: &[&str]) {
        self.key(key);
        self.buf.push(b'[');
        for (idx, value) in values.iter().enumerate() {
            if idx > 0 {
                self.buf.push(b',');
            }
            self.quoted(value);
        }
        self.buf.push(b']');
    }

    fn num(&mut self, key: &str, value: i64) {
        self.key(key);
        self.buf.extend_from_slice(value.to_string().as_bytes());
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.buf.extend_from_slice(if value { b"true" } else { b"false" });
    }
}
