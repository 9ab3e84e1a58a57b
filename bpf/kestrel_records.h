/* Generated from kestrel-sensor/src/records.rs by `cargo xtask gen-records`. Do not edit. */
#ifndef KESTREL_RECORDS_H
#define KESTREL_RECORDS_H

#define KESTREL_RECORDS_VERSION 1
#define STRING_MAX 4096
#define PATH_DEPTH 40
#define DNS_MAX 512
#define FILE_CREATE 1
#define FILE_DELETE 2
#define FILE_RENAME 3
#define FILE_MODIFY 4
#define NET_CONNECT 1
#define NET_ACCEPT 2
#define NET_DISCONNECT 3
#define CRED_UID 1
#define CRED_GID 2
#define FLAG_TRUNCATED 1

#define KIND_EXEC 1
#define KIND_FORK 2
#define KIND_EXIT 3
#define KIND_FILE 4
#define KIND_NET 5
#define KIND_CRED 6
#define KIND_MEMFD 7
#define KIND_PTRACE 8
#define KIND_MODULE 9
#define KIND_DNS 10

/* Common to every record: when, what, and the acting task. */
struct kestrel_header {
    __u64 ktime;
    __u64 start_ns;
    __u64 parent_start_ns;
    __u64 cgroup_id;
    __u16 kind;
    __u16 flags;
    __u32 size;
    __u32 pid;
    __u32 tid;
    __u32 ppid;
    __u32 uid;
    __u32 euid;
    __u32 gid;
    __u32 egid;
    __u32 sid;
    __u32 tty_major;
    __u32 tty_minor;
    __u8 comm[16];
};
_Static_assert(sizeof(struct kestrel_header) == 96, "kestrel_header size");
_Static_assert(__builtin_offsetof(struct kestrel_header, ktime) == 0, "kestrel_header.ktime offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, start_ns) == 8, "kestrel_header.start_ns offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, parent_start_ns) == 16, "kestrel_header.parent_start_ns offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, cgroup_id) == 24, "kestrel_header.cgroup_id offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, kind) == 32, "kestrel_header.kind offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, flags) == 34, "kestrel_header.flags offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, size) == 36, "kestrel_header.size offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, pid) == 40, "kestrel_header.pid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, tid) == 44, "kestrel_header.tid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, ppid) == 48, "kestrel_header.ppid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, uid) == 52, "kestrel_header.uid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, euid) == 56, "kestrel_header.euid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, gid) == 60, "kestrel_header.gid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, egid) == 64, "kestrel_header.egid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, sid) == 68, "kestrel_header.sid offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, tty_major) == 72, "kestrel_header.tty_major offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, tty_minor) == 76, "kestrel_header.tty_minor offset");
_Static_assert(__builtin_offsetof(struct kestrel_header, comm) == 80, "kestrel_header.comm offset");

/* `exec`: strings executable (path components), args (NUL-separated), cwd (path */
/* components), environment (NUL-separated `NAME=value`, the first `STRING_MAX - 1` bytes). */
struct kestrel_exec {
    __u32 argc;
    __u16 exe_len;
    __u16 args_len;
    __u16 cwd_len;
    __u16 env_len;
    __u32 pad1;
};
_Static_assert(sizeof(struct kestrel_exec) == 16, "kestrel_exec size");
_Static_assert(__builtin_offsetof(struct kestrel_exec, argc) == 0, "kestrel_exec.argc offset");
_Static_assert(__builtin_offsetof(struct kestrel_exec, exe_len) == 4, "kestrel_exec.exe_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_exec, args_len) == 6, "kestrel_exec.args_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_exec, cwd_len) == 8, "kestrel_exec.cwd_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_exec, env_len) == 10, "kestrel_exec.env_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_exec, pad1) == 12, "kestrel_exec.pad1 offset");

/* `fork`: the acting task is the parent; the body names the new process. */
struct kestrel_fork {
    __u32 child_pid;
    __u32 pad0;
    __u64 child_start_ns;
};
_Static_assert(sizeof(struct kestrel_fork) == 16, "kestrel_fork size");
_Static_assert(__builtin_offsetof(struct kestrel_fork, child_pid) == 0, "kestrel_fork.child_pid offset");
_Static_assert(__builtin_offsetof(struct kestrel_fork, pad0) == 4, "kestrel_fork.pad0 offset");
_Static_assert(__builtin_offsetof(struct kestrel_fork, child_start_ns) == 8, "kestrel_fork.child_start_ns offset");

/* `end`: the last thread of the process exited. */
struct kestrel_exit {
    __s32 exit_code;
    __u32 pad0;
};
_Static_assert(sizeof(struct kestrel_exit) == 8, "kestrel_exit size");
_Static_assert(__builtin_offsetof(struct kestrel_exit, exit_code) == 0, "kestrel_exit.exit_code offset");
_Static_assert(__builtin_offsetof(struct kestrel_exit, pad0) == 4, "kestrel_exit.pad0 offset");

/* File operations: strings name, dir, original name, original dir (a `dir` is path */
/* components; a `name` is as the program passed it, relative to `dir` unless absolute; */
/* `dir` is empty when `name` is absolute). */
struct kestrel_file {
    __u32 op;
    __u32 open_flags;
    __u32 mode;
    __u16 name_len;
    __u16 dir_len;
    __u16 orig_name_len;
    __u16 orig_dir_len;
    __u32 pad0;
};
_Static_assert(sizeof(struct kestrel_file) == 24, "kestrel_file size");
_Static_assert(__builtin_offsetof(struct kestrel_file, op) == 0, "kestrel_file.op offset");
_Static_assert(__builtin_offsetof(struct kestrel_file, open_flags) == 4, "kestrel_file.open_flags offset");
_Static_assert(__builtin_offsetof(struct kestrel_file, mode) == 8, "kestrel_file.mode offset");
_Static_assert(__builtin_offsetof(struct kestrel_file, name_len) == 12, "kestrel_file.name_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_file, dir_len) == 14, "kestrel_file.dir_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_file, orig_name_len) == 16, "kestrel_file.orig_name_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_file, orig_dir_len) == 18, "kestrel_file.orig_dir_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_file, pad0) == 20, "kestrel_file.pad0 offset");

/* Network: addresses in network byte order (IPv4 in the first 4 bytes), ports in host order. */
struct kestrel_net {
    __u32 op;
    __u16 family;
    __u16 protocol;
    __u16 sport;
    __u16 dport;
    __u32 pad0;
    __u8 saddr[16];
    __u8 daddr[16];
};
_Static_assert(sizeof(struct kestrel_net) == 48, "kestrel_net size");
_Static_assert(__builtin_offsetof(struct kestrel_net, op) == 0, "kestrel_net.op offset");
_Static_assert(__builtin_offsetof(struct kestrel_net, family) == 4, "kestrel_net.family offset");
_Static_assert(__builtin_offsetof(struct kestrel_net, protocol) == 6, "kestrel_net.protocol offset");
_Static_assert(__builtin_offsetof(struct kestrel_net, sport) == 8, "kestrel_net.sport offset");
_Static_assert(__builtin_offsetof(struct kestrel_net, dport) == 10, "kestrel_net.dport offset");
_Static_assert(__builtin_offsetof(struct kestrel_net, pad0) == 12, "kestrel_net.pad0 offset");
_Static_assert(__builtin_offsetof(struct kestrel_net, saddr) == 16, "kestrel_net.saddr offset");
_Static_assert(__builtin_offsetof(struct kestrel_net, daddr) == 32, "kestrel_net.daddr offset");

/* `uid_change` / `gid_change`: the ids before the call (the header has them after). */
struct kestrel_cred {
    __u32 op;
    __u32 old_id;
    __u32 old_eid;
    __u32 pad0;
};
_Static_assert(sizeof(struct kestrel_cred) == 16, "kestrel_cred size");
_Static_assert(__builtin_offsetof(struct kestrel_cred, op) == 0, "kestrel_cred.op offset");
_Static_assert(__builtin_offsetof(struct kestrel_cred, old_id) == 4, "kestrel_cred.old_id offset");
_Static_assert(__builtin_offsetof(struct kestrel_cred, old_eid) == 8, "kestrel_cred.old_eid offset");
_Static_assert(__builtin_offsetof(struct kestrel_cred, pad0) == 12, "kestrel_cred.pad0 offset");

/* `memfd_create`: strings name. */
struct kestrel_memfd {
    __u32 flags;
    __u16 name_len;
    __u16 pad0;
};
_Static_assert(sizeof(struct kestrel_memfd) == 8, "kestrel_memfd size");
_Static_assert(__builtin_offsetof(struct kestrel_memfd, flags) == 0, "kestrel_memfd.flags offset");
_Static_assert(__builtin_offsetof(struct kestrel_memfd, name_len) == 4, "kestrel_memfd.name_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_memfd, pad0) == 6, "kestrel_memfd.pad0 offset");

/* `ptrace` requests that touch another process. */
struct kestrel_ptrace {
    __u32 request;
    __u32 target_pid;
};
_Static_assert(sizeof(struct kestrel_ptrace) == 8, "kestrel_ptrace size");
_Static_assert(__builtin_offsetof(struct kestrel_ptrace, request) == 0, "kestrel_ptrace.request offset");
_Static_assert(__builtin_offsetof(struct kestrel_ptrace, target_pid) == 4, "kestrel_ptrace.target_pid offset");

/* `lookup_result`: a DNS response a process received (UDP, from port 53); strings */
/* the message, up to `DNS_MAX` bytes. Addresses as in `NetBody` (local in saddr). */
struct kestrel_dns {
    __u16 data_len;
    __u16 family;
    __u16 sport;
    __u16 dport;
    __u32 pad0;
    __u32 pad1;
    __u8 saddr[16];
    __u8 daddr[16];
};
_Static_assert(sizeof(struct kestrel_dns) == 48, "kestrel_dns size");
_Static_assert(__builtin_offsetof(struct kestrel_dns, data_len) == 0, "kestrel_dns.data_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_dns, family) == 2, "kestrel_dns.family offset");
_Static_assert(__builtin_offsetof(struct kestrel_dns, sport) == 4, "kestrel_dns.sport offset");
_Static_assert(__builtin_offsetof(struct kestrel_dns, dport) == 6, "kestrel_dns.dport offset");
_Static_assert(__builtin_offsetof(struct kestrel_dns, pad0) == 8, "kestrel_dns.pad0 offset");
_Static_assert(__builtin_offsetof(struct kestrel_dns, pad1) == 12, "kestrel_dns.pad1 offset");
_Static_assert(__builtin_offsetof(struct kestrel_dns, saddr) == 16, "kestrel_dns.saddr offset");
_Static_assert(__builtin_offsetof(struct kestrel_dns, daddr) == 32, "kestrel_dns.daddr offset");

/* `load_module`: strings file path components (finit_module) or nothing (init_module). */
struct kestrel_module {
    __u32 flags;
    __u16 path_len;
    __u16 pad0;
};
_Static_assert(sizeof(struct kestrel_module) == 8, "kestrel_module size");
_Static_assert(__builtin_offsetof(struct kestrel_module, flags) == 0, "kestrel_module.flags offset");
_Static_assert(__builtin_offsetof(struct kestrel_module, path_len) == 4, "kestrel_module.path_len offset");
_Static_assert(__builtin_offsetof(struct kestrel_module, pad0) == 6, "kestrel_module.pad0 offset");

#endif
