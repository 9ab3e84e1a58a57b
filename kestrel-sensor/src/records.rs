//! The records the eBPF probes write into the ring buffer: defined once, here.
//!
//! Each record is a [`Header`], the body of its kind, then a tail of variable-length
//! strings whose lengths the body gives, in the body's field order. The C side
//! (`bpf/kestrel_records.h`) is generated from these definitions by
//! [`c_header`] (`cargo xtask gen-records`, checked by the test
//! `the_committed_c_header_is_current`); the header carries `_Static_assert`s of every
//! size and offset, so clang refuses probes that disagree with this file, and the
//! Rust structs are checked against the same numbers with `offset_of!`.
//!
//! Decoding never trusts the bytes: a record shorter than its header and body, a length
//! running past its end, or an unknown kind is an error ([`RecordError`]), counted by
//! the caller.

/// Record layout version, emitted into the C header (bump it with any layout change).
pub const RECORDS_VERSION: u32 = 1;

/// Longest string a probe copies (bytes, including the NUL): one path component, an
/// argument vector, a memfd name.
pub const STRING_MAX: usize = 4096;
/// Bytes of a DNS response a probe copies (a classic UDP DNS message is at most 512).
pub const DNS_MAX: usize = 512;
/// Path components a probe walks up from a dentry before it gives up (the path is
/// then marked truncated and starts at the deepest component reached).
pub const PATH_DEPTH: usize = 40;

/// One field of a record, for the C generator and the layout tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    pub name: &'static str,
    pub c_type: &'static str,
    /// `[N]` for arrays.
    pub c_suffix: &'static str,
    pub offset: usize,
    pub size: usize,
}

/// A record struct's layout.
#[derive(Clone, Copy, Debug)]
pub struct RecordLayout {
    pub name: &'static str,
    pub doc: &'static str,
    pub size: usize,
    pub fields: &'static [FieldLayout],
}

/// What went wrong decoding a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    Short {
        need: usize,
        have: usize,
    },
    UnknownKind(u16),
    BadSize {
        declared: u32,
        have: usize,
    },
    StringsPastEnd {
        need: usize,
        have: usize,
    },
    /// A `lookup_result` record whose bytes are not a DNS response.
    NotDns,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Short { need, have } => write!(f, "record too short: {have} bytes, its header and body need {need}"),
            RecordError::UnknownKind(kind) => write!(f, "unknown record kind {kind}"),
            RecordError::BadSize { declared, have } => write!(f, "record declares {declared} bytes but {have} arrived"),
            RecordError::StringsPastEnd { need, have } => write!(f, "record strings need {need} bytes but the record has {have}"),
            RecordError::NotDns => write!(f, "a DNS record that is not a DNS response"),
        }
    }
}

/// Values a field can hold, read little-endian from record bytes.
pub trait Scalar: Sized {
    const C_TYPE: &'static str;
    const C_SUFFIX: &'static str;
    fn read(bytes: &[u8]) -> Self;
}

macro_rules! scalar {
    ($($ty:ty => $c:literal),*) => {$(
        impl Scalar for $ty {
            const C_TYPE: &'static str = $c;
            const C_SUFFIX: &'static str = "";
            fn read(bytes: &[u8]) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$ty>()];
                raw.copy_from_slice(&bytes[..std::mem::size_of::<$ty>()]);
                <$ty>::from_le_bytes(raw)
            }
        }
    )*};
}
scalar!(u8 => "__u8", u16 => "__u16", u32 => "__u32", u64 => "__u64", i32 => "__s32", i64 => "__s64");

impl<const N: usize> Scalar for [u8; N] {
    const C_TYPE: &'static str = "__u8";
    const C_SUFFIX: &'static str = match N {
        16 => "[16]",
        _ => panic!("add the array length to the C suffixes"),
    };
    fn read(bytes: &[u8]) -> Self {
        let mut raw = [0u8; N];
        raw.copy_from_slice(&bytes[..N]);
        raw
    }
}

/// Declares `#[repr(C)]` record structs, their layouts and their decoders.
macro_rules! records {
    ($(
        $(#[doc = $doc:literal])*
        struct $name:ident / $c_name:literal { $($(#[doc = $fdoc:literal])* $field:ident : $ty:ty),* $(,)? }
    )*) => {$(
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name { $($(#[doc = $fdoc])* pub $field: $ty),* }

        impl $name {
            pub const SIZE: usize = std::mem::size_of::<$name>();
            pub const LAYOUT: RecordLayout = RecordLayout {
                name: $c_name,
                doc: concat!($($doc, "\n"),*),
                size: std::mem::size_of::<$name>(),
                fields: &[$(FieldLayout {
                    name: stringify!($field),
                    c_type: <$ty as Scalar>::C_TYPE,
                    c_suffix: <$ty as Scalar>::C_SUFFIX,
                    offset: std::mem::offset_of!($name, $field),
                    size: std::mem::size_of::<$ty>(),
                }),*],
            };

            /// Reads the struct from the start of `bytes`.
            pub fn read(bytes: &[u8]) -> Result<$name, RecordError> {
                if bytes.len() < Self::SIZE {
                    return Err(RecordError::Short { need: Self::SIZE, have: bytes.len() });
                }
                Ok($name { $($field: <$ty as Scalar>::read(&bytes[std::mem::offset_of!($name, $field)..])),* })
            }
        }
    )*
        /// Every record struct, in declaration order.
        pub const LAYOUTS: &[RecordLayout] = &[$($name::LAYOUT),*];
    };
}

records! {
    /// Common to every record: when, what, and the acting task.
    struct Header / "kestrel_header" {
        /// CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns).
        ktime: u64,
        /// The acting process's start (task->group_leader->start_boottime, ns).
        start_ns: u64,
        /// The parent's start (ns since boot), to name it uniquely.
        parent_start_ns: u64,
        cgroup_id: u64,
        /// A `Kind`.
        kind: u16,
        /// `FLAG_*` bits.
        flags: u16,
        /// Header + body + strings, in bytes.
        size: u32,
        pid: u32,
        tid: u32,
        ppid: u32,
        uid: u32,
        euid: u32,
        gid: u32,
        egid: u32,
        sid: u32,
        /// Controlling terminal: major, minor; major 0 means none.
        tty_major: u32,
        tty_minor: u32,
        comm: [u8; 16],
    }

    /// `exec`: strings executable (path components), args (NUL-separated), cwd (path
    /// components), environment (NUL-separated `NAME=value`, the first `STRING_MAX - 1` bytes).
    struct ExecBody / "kestrel_exec" {
        argc: u32,
        exe_len: u16,
        args_len: u16,
        cwd_len: u16,
        env_len: u16,
        pad1: u32,
    }

    /// `fork`: the acting task is the parent; the body names the new process.
    struct ForkBody / "kestrel_fork" {
        child_pid: u32,
        pad0: u32,
        child_start_ns: u64,
    }

    /// `end`: the last thread of the process exited.
    struct ExitBody / "kestrel_exit" {
        exit_code: i32,
        pad0: u32,
    }

    /// File operations: strings name, dir, original name, original dir (a `dir` is path
    /// components; a `name` is as the program passed it, relative to `dir` unless absolute;
    /// `dir` is empty when `name` is absolute).
    struct FileBody / "kestrel_file" {
        /// A `FileOp`.
        op: u32,
        open_flags: u32,
        mode: u32,
        name_len: u16,
        dir_len: u16,
        orig_name_len: u16,
        orig_dir_len: u16,
        pad0: u32,
    }

    /// Network: addresses in network byte order (IPv4 in the first 4 bytes), ports in host order.
    struct NetBody / "kestrel_net" {
        /// A `NetOp`.
        op: u32,
        family: u16,
        protocol: u16,
        sport: u16,
        dport: u16,
        pad0: u32,
        saddr: [u8; 16],
        daddr: [u8; 16],
    }

    /// `uid_change` / `gid_change`: the ids before the call (the header has them after).
    struct CredBody / "kestrel_cred" {
        /// A `CredOp`.
        op: u32,
        old_id: u32,
        old_eid: u32,
        pad0: u32,
    }

    /// `memfd_create`: strings name.
    struct MemfdBody / "kestrel_memfd" {
        flags: u32,
        name_len: u16,
        pad0: u16,
    }

    /// `ptrace` requests that touch another process.
    struct PtraceBody / "kestrel_ptrace" {
        request: u32,
        target_pid: u32,
    }

    /// `lookup_result`: a DNS response a process received (UDP, from port 53); strings
    /// the message, up to `DNS_MAX` bytes. Addresses as in `NetBody` (local in saddr).
    struct DnsBody / "kestrel_dns" {
        data_len: u16,
        family: u16,
        sport: u16,
        dport: u16,
        pad0: u32,
        pad1: u32,
        saddr: [u8; 16],
        daddr: [u8; 16],
    }

    /// `load_module`: strings file path components (finit_module) or nothing (init_module).
    struct ModuleBody / "kestrel_module" {
        flags: u32,
        path_len: u16,
        pad0: u16,
    }
}

/// Record kinds (`Header::kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Kind {
    Exec = 1,
    Fork = 2,
    Exit = 3,
    File = 4,
    Net = 5,
    Cred = 6,
    Memfd = 7,
    Ptrace = 8,
    Module = 9,
    Dns = 10,
}

impl Kind {
    pub const ALL: [Kind; 10] = [Kind::Exec, Kind::Fork, Kind::Exit, Kind::File, Kind::Net, Kind::Cred, Kind::Memfd, Kind::Ptrace, Kind::Module, Kind::Dns];

    pub fn from_u16(value: u16) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| *kind as u16 == value)
    }

    fn c_name(self) -> &'static str {
        match self {
            Kind::Exec => "KIND_EXEC",
            Kind::Fork => "KIND_FORK",
            Kind::Exit => "KIND_EXIT",
            Kind::File => "KIND_FILE",
            Kind::Net => "KIND_NET",
            Kind::Cred => "KIND_CRED",
            Kind::Memfd => "KIND_MEMFD",
            Kind::Ptrace => "KIND_PTRACE",
            Kind::Module => "KIND_MODULE",
            Kind::Dns => "KIND_DNS",
        }
    }
}

/// `FileBody::op`.
pub mod file_op {
    pub const CREATE: u32 = 1;
    pub const DELETE: u32 = 2;
    pub const RENAME: u32 = 3;
    pub const MODIFY: u32 = 4;
}

/// `NetBody::op`.
pub mod net_op {
    pub const CONNECT: u32 = 1;
    pub const ACCEPT: u32 = 2;
    pub const DISCONNECT: u32 = 3;
}

/// `CredBody::op`.
pub mod cred_op {
    pub const UID: u32 = 1;
    pub const GID: u32 = 2;
}

/// `Header::flags`.
pub mod flags {
    /// A string was cut at its limit (argv longer than `STRING_MAX`, a path deeper than `PATH_DEPTH`).
    pub const TRUNCATED: u16 = 1;
}

/// Constants shared with the probes, emitted into the C header.
const C_CONSTANTS: &[(&str, u64)] = &[
    ("KESTREL_RECORDS_VERSION", RECORDS_VERSION as u64),
    ("STRING_MAX", STRING_MAX as u64),
    ("PATH_DEPTH", PATH_DEPTH as u64),
    ("DNS_MAX", DNS_MAX as u64),
    ("FILE_CREATE", file_op::CREATE as u64),
    ("FILE_DELETE", file_op::DELETE as u64),
    ("FILE_RENAME", file_op::RENAME as u64),
    ("FILE_MODIFY", file_op::MODIFY as u64),
    ("NET_CONNECT", net_op::CONNECT as u64),
    ("NET_ACCEPT", net_op::ACCEPT as u64),
    ("NET_DISCONNECT", net_op::DISCONNECT as u64),
    ("CRED_UID", cred_op::UID as u64),
    ("CRED_GID", cred_op::GID as u64),
    ("FLAG_TRUNCATED", flags::TRUNCATED as u64),
];

/// The C header the probes include: the same structs, constants, and assertions of
/// every size and offset.
pub fn c_header() -> String {
    let mut out = String::new();
    out.push_str("/* Generated from kestrel-sensor/src/records.rs by `cargo xtask gen-records`. Do not edit. */\n");
    out.push_str("#ifndef KESTREL_RECORDS_H\n#define KESTREL_RECORDS_H\n\n");
    for (name, value) in C_CONSTANTS {
        out.push_str(&format!("#define {name} {value}\n"));
    }
    out.push('\n');
    for kind in Kind::ALL {
        out.push_str(&format!("#define {} {}\n", kind.c_name(), kind as u16));
    }
    for layout in LAYOUTS {
        out.push('\n');
        for line in layout.doc.lines() {
            out.push_str(&format!("/*{line} */\n"));
        }
        out.push_str(&format!("struct {} {{\n", layout.name));
        for field in layout.fields {
            out.push_str(&format!("    {} {}{};\n", field.c_type, field.name, field.c_suffix));
        }
        out.push_str("};\n");
        out.push_str(&format!("_Static_assert(sizeof(struct {}) == {}, \"{} size\");\n", layout.name, layout.size, layout.name));
        for field in layout.fields {
            out.push_str(&format!(
                "_Static_assert(__builtin_offsetof(struct {}, {}) == {}, \"{}.{} offset\");\n",
                layout.name, field.name, field.offset, layout.name, field.name
            ));
        }
    }
    out.push_str("\n#endif\n");
    out
}

/// A decoded record: the header, the body bytes and the strings, borrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub header: Header,
    pub kind: Kind,
    pub body: &'a [u8],
    /// Everything after the body.
    pub tail: &'a [u8],
}

impl<'a> Record<'a> {
    /// Splits one ring-buffer item into its parts; checks the kind and the sizes.
    pub fn parse(bytes: &'a [u8]) -> Result<Record<'a>, RecordError> {
        let header = Header::read(bytes)?;
        let kind = Kind::from_u16(header.kind).ok_or(RecordError::UnknownKind(header.kind))?;
        if header.size as usize > bytes.len() || (header.size as usize) < Header::SIZE {
            return Err(RecordError::BadSize { declared: header.size, have: bytes.len() });
        }
        let bytes = &bytes[..header.size as usize];
        let body_size = match kind {
            Kind::Exec => ExecBody::SIZE,
            Kind::Fork => ForkBody::SIZE,
            Kind::Exit => ExitBody::SIZE,
            Kind::File => FileBody::SIZE,
            Kind::Net => NetBody::SIZE,
            Kind::Cred => CredBody::SIZE,
            Kind::Memfd => MemfdBody::SIZE,
            Kind::Ptrace => PtraceBody::SIZE,
            Kind::Module => ModuleBody::SIZE,
            Kind::Dns => DnsBody::SIZE,
        };
        let need = Header::SIZE + body_size;
        if bytes.len() < need {
            return Err(RecordError::Short { need, have: bytes.len() });
        }
        Ok(Record { header, kind, body: &bytes[Header::SIZE..need], tail: &bytes[need..] })
    }

    /// The tail cut into strings of the given lengths, in order.
    pub fn strings<const N: usize>(&self, lengths: [u16; N]) -> Result<[&'a [u8]; N], RecordError> {
        let need: usize = lengths.iter().map(|len| *len as usize).sum();
        if need > self.tail.len() {
            return Err(RecordError::StringsPastEnd { need, have: self.tail.len() });
        }
        let mut at = 0;
        Ok(lengths.map(|len| {
            let piece = &self.tail[at..at + len as usize];
            at += len as usize;
            piece
        }))
    }
}

/// The process's comm as text (up to the first NUL).
pub fn comm(header: &Header) -> String {
    let end = header.comm.iter().position(|byte| *byte == 0).unwrap_or(header.comm.len());
    String::from_utf8_lossy(&header.comm[..end]).into_owned()
}

/// A path written by the probes as NUL-terminated components from the leaf up to the
/// root, as an absolute path. Empty input gives an empty path.
pub fn components_to_path(bytes: &[u8]) -> String {
    let parts: Vec<&[u8]> = bytes.split(|byte| *byte == 0).filter(|part| !part.is_empty() && *part != b"/").collect();
    if parts.is_empty() {
        return if bytes.is_empty() { String::new() } else { "/".to_string() };
    }
    let mut path = String::new();
    for part in parts.iter().rev() {
        path.push('/');
        path.push_str(&String::from_utf8_lossy(part));
    }
    path
}

/// A C string from the probes (up to the first NUL).
pub fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|byte| *byte == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `name` (as a program passed it) resolved against the directory `dir`, with `.` and
/// `..` removed lexically.
pub fn resolve(dir: &str, name: &str) -> String {
    let joined = if name.starts_with('/') || dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() { "/".to_string() } else { parts.iter().fold(String::new(), |path, part| path + "/" + part) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_c_header_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpf/kestrel_records.h");
        let expected = c_header();
        if std::env::var_os("KESTREL_WRITE_RECORDS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == expected, "bpf/kestrel_records.h is stale: run `cargo xtask gen-records`");
    }

    #[test]
    fn layouts_have_no_implicit_padding() {
        for layout in LAYOUTS {
            let mut end = 0;
            for field in layout.fields {
                assert_eq!(field.offset, end, "{}.{} follows padding", layout.name, field.name);
                end = field.offset + field.size;
            }
            assert_eq!(end, layout.size, "{} has tail padding", layout.name);
            assert_eq!(layout.size % 8, 0, "{} is not a multiple of 8 bytes", layout.name);
        }
    }

    #[test]
    fn records_decode_and_reject_bad_sizes() {
        let mut bytes = vec![0u8; Header::SIZE + ForkBody::SIZE];
        bytes[32..34].copy_from_slice(&(Kind::Fork as u16).to_le_bytes());
        let size = bytes.len() as u32;
        bytes[36..40].copy_from_slice(&size.to_le_bytes());
        bytes[Header::SIZE..Header::SIZE + 4].copy_from_slice(&77u32.to_le_bytes());
        let record = Record::parse(&bytes).unwrap();
        assert_eq!(record.kind, Kind::Fork);
        assert_eq!(ForkBody::read(record.body).unwrap().child_pid, 77);
        assert!(matches!(Record::parse(&bytes[..10]), Err(RecordError::Short { .. })));
        let mut unknown = bytes.clone();
        unknown[32] = 99;
        assert_eq!(Record::parse(&unknown), Err(RecordError::UnknownKind(99)));
        let mut oversized = bytes.clone();
        oversized[36..40].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(Record::parse(&oversized), Err(RecordError::BadSize { .. })));
        assert!(matches!(record.strings([4]), Err(RecordError::StringsPastEnd { .. })));
        // Arbitrary bytes never panic.
        for len in 0..200 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let _ = Record::parse(&junk);
        }
    }

    #[test]
    fn paths_come_back_from_components() {
        assert_eq!(components_to_path(b"bash\0bin\0usr\0"), "/usr/bin/bash");
        assert_eq!(components_to_path(b"/\0"), "/");
        assert_eq!(components_to_path(b""), "");
        assert_eq!(resolve("/home/u", "../x/./y"), "/home/x/y");
        assert_eq!(resolve("/home/u", "/etc/passwd"), "/etc/passwd");
        assert_eq!(resolve("/", ".."), "/");
    }
}
