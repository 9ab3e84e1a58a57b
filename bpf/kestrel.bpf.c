// SPDX-License-Identifier: GPL-2.0
/* Kestrel's probes: process, file, network and credential events into one ring buffer.
 *
 * Only hooks this kernel family allows are used: tracepoints (sched, syscalls, sock) and
 * one BTF tracepoint (sched_process_fork, for the child's task). Each event is built in
 * a per-CPU scratch record, then copied into the ring buffer with its exact size; a
 * failed copy (ring buffer full) is counted in DROPS, never lost silently.
 * Record layouts come from kestrel_records.h, generated from kestrel-sensor/src/records.rs.
 */
#include "kestrel_kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "kestrel_records.h"

char LICENSE[] SEC("license") = "GPL";

#define TAIL_MAX 16384
#define TAIL_MASK (TAIL_MAX - 1)
#define NAME_MAX 256
#define BODY_MAX 64
#define AT_FDCWD -100
#define FMODE_CREATED 0x100000
#define O_ACCMODE 3
#define S_IFMT 0170000
#define S_IFREG 0100000
#define S_IFSOCK 0140000
#define SIGNAL_GROUP_EXIT 0x00000004
#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8

struct scratch {
    struct kestrel_header header;
    /* The kind's body, then its strings right after it. */
    char data[BODY_MAX + TAIL_MAX + STRING_MAX];
    /* Not sent: the next byte of a path walk (see write_path). */
    __u32 cursor;
    __u32 pad;
};

/* A syscall's arguments, kept from its entry to its exit. */
struct pending {
    __u64 args[6];
    __u32 nr;
    __u32 old_id;
    __u32 old_eid;
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 8 << 20);
} EVENTS SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} SCRATCH SEC(".maps");

/* Index 0: records the ring buffer had no room for; 1: pending syscalls the map had no room for;
 * 2: processes killed at their exec (KILL_ON_EXEC). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} DROPS SEC(".maps");

/* Index 0: the sensor's own tgid (its events are not reported). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} CONFIG SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __u64);
    __type(value, struct pending);
} PENDING SEC(".maps");

/* Thread → the header of its latest execve/execveat entry (its ktime: when it entered).
 * The exec hook (fanotify) reads it to tell the file an exec names from the interpreters
 * the kernel opens for it in the same call (one entry time, several permission events),
 * and for the caller's ids, credentials and start times without reading /proc. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, struct kestrel_header);
} EXEC_ENTRY SEC(".maps");

/* Process (tgid) → deadline (CLOCK_BOOTTIME ns): killed at its next exec before that
 * deadline, before any instruction of the new image runs. Armed by the runtime when the
 * exec hook decides `kill` on a paused exec; each entry is used once. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, __u64);
} KILL_ON_EXEC SEC(".maps");

/* Open TCP connections: socket → the header of the process that opened them. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct kestrel_header);
} SOCKETS SEC(".maps");

static __always_inline void count_drop(__u32 index)
{
    __u64 *count = bpf_map_lookup_elem(&DROPS, &index);
    if (count)
        *count += 1;
}

static __always_inline bool is_self(void)
{
    __u32 key = 0;
    __u32 *self = bpf_map_lookup_elem(&CONFIG, &key);
    return self && *self == (__u32)(bpf_get_current_pid_tgid() >> 32);
}

static __always_inline struct scratch *scratch(void)
{
    __u32 key = 0;
    return bpf_map_lookup_elem(&SCRATCH, &key);
}

static __always_inline void fill_header(struct kestrel_header *h, struct task_struct *task, __u16 kind)
{
    struct task_struct *leader = BPF_CORE_READ(task, group_leader);
    struct task_struct *parent = BPF_CORE_READ(leader, real_parent);
    const struct cred *cred = BPF_CORE_READ(task, cred);
    struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);

    h->ktime = bpf_ktime_get_boot_ns();
    h->start_ns = BPF_CORE_READ(leader, start_boottime);
    h->parent_start_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
    h->cgroup_id = bpf_get_current_cgroup_id();
    h->kind = kind;
    h->flags = 0;
    h->size = 0;
    h->pid = BPF_CORE_READ(task, tgid);
    h->tid = BPF_CORE_READ(task, pid);
    h->ppid = BPF_CORE_READ(parent, tgid);
    h->uid = BPF_CORE_READ(cred, uid.val);
    h->euid = BPF_CORE_READ(cred, euid.val);
    h->gid = BPF_CORE_READ(cred, gid.val);
    h->egid = BPF_CORE_READ(cred, egid.val);
    h->sid = BPF_CORE_READ(task, signal, pids[3], numbers[0].nr);
    h->tty_major = 0;
    h->tty_minor = 0;
    if (tty) {
        h->tty_major = BPF_CORE_READ(tty, driver, major);
        h->tty_minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
    }
    BPF_CORE_READ_STR_INTO(&h->comm, task, comm);
}

static __always_inline struct task_struct *current_task(void)
{
    return (struct task_struct *)bpf_get_current_task();
}

/* Writes the components of `dentry` in `vfsmnt` from the leaf up, each NUL-terminated,
 * at tail[*off]. Returns the bytes written.
 *
 * The write position lives in the scratch map (`cursor`), not in a register: the
 * verifier then sees the same state at each iteration whatever was written, and the
 * loop verifies in a few thousand instructions instead of exploding. (bpf_loop would
 * do too, but aya 0.14 misplaces CO-RE relocations inside loop callbacks.) */
static __always_inline __u32 write_path(struct kestrel_header *h, char *tail, __u32 *off, struct dentry *dentry, struct vfsmount *vfsmnt)
{
    struct scratch *s = scratch();
    if (!s)
        return 0;
    struct mount *mnt = (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
    __u32 start = *off;
    int i;

    s->cursor = start;
#pragma clang loop unroll(disable)
    for (i = 0; i < PATH_DEPTH; i++) {
        struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);
        struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
        if (dentry == root) {
            struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
            if (up == mnt || !up)
                break;
            dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
            mnt = up;
            vfsmnt = (struct vfsmount *)((void *)up + bpf_core_field_offset(struct mount, mnt));
            continue;
        }
        const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
        __u32 at = s->cursor & TAIL_MASK;
        long n = bpf_probe_read_kernel_str(&tail[at], NAME_MAX, name);
        s->cursor = at + (n > 0 ? n : 0);
        /* A root that is not its mount's root: a pseudo file (memfd, pipe, socket) or
         * a disconnected dentry. Its own name is all there is. */
        if (dentry == parent || !parent)
            break;
        dentry = parent;
    }
    if (i == PATH_DEPTH)
        h->flags |= FLAG_TRUNCATED;
    *off = s->cursor;
    return *off - start;
}

static __always_inline __u32 write_file_path(struct kestrel_header *h, char *tail, __u32 *off, struct file *file)
{
    if (!file)
        return 0;
    return write_path(h, tail, off, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt));
}

static __always_inline __u32 write_user_str(char *tail, __u32 *off, const char *src)
{
    __u32 at = *off & TAIL_MASK;
    long n = bpf_probe_read_user_str(&tail[at], STRING_MAX, src);
    if (n <= 0)
        return 0;
    *off = at + n;
    return n;
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *file = NULL;
    if (fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
        return NULL;
    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
    return file;
}

/* The directory a *at() call resolves a relative name against. */
static __always_inline __u32 write_dir(struct kestrel_header *h, char *tail, __u32 *off, struct task_struct *task, long dirfd)
{
    if (dirfd == AT_FDCWD)
        return write_path(h, tail, off, BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt));
    return write_file_path(h, tail, off, fd_file(task, dirfd));
}

static __always_inline void submit(struct scratch *s, __u64 body, __u64 tail_used)
{
    if (tail_used > TAIL_MAX) {
        tail_used = TAIL_MAX;
        s->header.flags |= FLAG_TRUNCATED;
    }
    __u64 size = sizeof(struct kestrel_header) + (body & (BODY_MAX - 1)) + (tail_used & (2 * TAIL_MAX - 1));
    if (size > sizeof(struct kestrel_header) + sizeof(s->data))
        size = sizeof(struct kestrel_header) + sizeof(s->data);
    s->header.size = size;
    if (bpf_ringbuf_output(&EVENTS, s, size, 0))
        count_drop(0);
}

/* ---- processes ---- */

/* The exec hook decided `kill` for this process's exec: SIGKILL now, after the kernel
 * loaded the new image and before its first instruction. */
static __always_inline void kill_if_armed(void)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    __u64 *deadline = bpf_map_lookup_elem(&KILL_ON_EXEC, &tgid);
    if (!deadline)
        return;
    if (bpf_ktime_get_boot_ns() <= *deadline && bpf_send_signal(9) == 0)
        count_drop(2);
    bpf_map_delete_elem(&KILL_ON_EXEC, &tgid);
}

SEC("tracepoint/sched/sched_process_exec")
int kestrel_exec(struct tp_sched_process_exec *ctx)
{
    struct scratch *s = scratch();
    struct task_struct *task = current_task();
    if (!s || is_self())
        return 0;
    fill_header(&s->header, task, KIND_EXEC);
    struct kestrel_exec *body = (void *)s->data;
    char *tail = s->data + sizeof(struct kestrel_exec);
    __u32 off = 0;
    struct mm_struct *mm = BPF_CORE_READ(task, mm);

    body->argc = 0;
    body->env_len = 0;
    body->pad1 = 0;
    body->exe_len = write_file_path(&s->header, tail, &off, BPF_CORE_READ(mm, exe_file));

    unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
    unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
    __u64 len = arg_end > arg_start ? arg_end - arg_start : 0;
    if (len > STRING_MAX - 1) {
        len = STRING_MAX - 1;
        s->header.flags |= FLAG_TRUNCATED;
    }
    __u32 at = off & TAIL_MASK;
    len &= STRING_MAX - 1;
    if (len > 0 && bpf_probe_read_user(&tail[at], len, (void *)arg_start) == 0) {
        off = at + len;
        body->args_len = len;
    } else {
        body->args_len = 0;
    }
    body->cwd_len = write_path(&s->header, tail, &off, BPF_CORE_READ(task, fs, pwd.dentry), BPF_CORE_READ(task, fs, pwd.mnt));

    unsigned long env_start = BPF_CORE_READ(mm, env_start);
    unsigned long env_end = BPF_CORE_READ(mm, env_end);
    __u64 env = env_end > env_start ? env_end - env_start : 0;
    if (env > STRING_MAX - 1)
        env = STRING_MAX - 1;
    env &= STRING_MAX - 1;
    at = off & TAIL_MASK;
    if (env > 0 && bpf_probe_read_user(&tail[at], env, (void *)env_start) == 0) {
        off = at + env;
        body->env_len = env;
    }
    submit(s, sizeof(struct kestrel_exec), off);
    kill_if_armed();
    return 0;
}

static __always_inline void note_exec_entry(void)
{
    if (is_self())
        return;
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct kestrel_header h = {};
    fill_header(&h, current_task(), KIND_EXEC);
    bpf_map_update_elem(&EXEC_ENTRY, &tid, &h, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int kestrel_enter_execve(void *ctx)
{
    note_exec_entry();
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int kestrel_enter_execveat(void *ctx)
{
    note_exec_entry();
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(kestrel_fork, struct task_struct *parent, struct task_struct *child)
{
    struct scratch *s = scratch();
    if (!s || is_self())
        return 0;
    /* Threads are not processes. */
    if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
        return 0;
    fill_header(&s->header, child, KIND_FORK);
    struct kestrel_fork *body = (void *)s->data;
    body->child_pid = BPF_CORE_READ(child, tgid);
    body->pad0 = 0;
    body->child_start_ns = BPF_CORE_READ(child, start_boottime);
    /* The child's start is its own; its parent is the forking process. */
    s->header.start_ns = body->child_start_ns;
    s->header.ppid = BPF_CORE_READ(parent, tgid);
    s->header.parent_start_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
    submit(s, sizeof(struct kestrel_fork), 0);
    return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int kestrel_exit(void *ctx)
{
    struct scratch *s = scratch();
    struct task_struct *task = current_task();
    if (!s || is_self())
        return 0;
    /* Only when the last thread of the process goes. */
    if (BPF_CORE_READ(task, signal, live.counter) != 0)
        return 0;
    fill_header(&s->header, task, KIND_EXIT);
    struct kestrel_exit *body = (void *)s->data;
    if (BPF_CORE_READ(task, signal, flags) & SIGNAL_GROUP_EXIT)
        body->exit_code = BPF_CORE_READ(task, signal, group_exit_code);
    else
        body->exit_code = BPF_CORE_READ(task, exit_code);
    body->pad0 = 0;
    submit(s, sizeof(struct kestrel_exit), 0);
    return 0;
}

/* ---- syscall entries: keep the arguments for the exit ---- */

/* Reads only the syscall's own `nargs` arguments: a tracepoint program may not read
 * past its context, or the kernel refuses to attach it (EACCES). */
static __always_inline int stash(struct tp_sys_enter *ctx, int nargs)
{
    if (is_self())
        return 0;
    __u64 id = bpf_get_current_pid_tgid();
    struct pending p = {};
    struct task_struct *task = current_task();
    const struct cred *cred = BPF_CORE_READ(task, cred);
#pragma clang loop unroll(full)
    for (int i = 0; i < 6; i++)
        if (i < nargs)
            p.args[i] = ctx->args[i];
    p.nr = ctx->syscall_nr;
    p.old_id = BPF_CORE_READ(cred, uid.val);
    p.old_eid = BPF_CORE_READ(cred, euid.val);
    if (bpf_map_update_elem(&PENDING, &id, &p, BPF_ANY))
        count_drop(1);
    return 0;
}

static __always_inline int stash_gid(struct tp_sys_enter *ctx, int nargs)
{
    stash(ctx, nargs);
    __u64 id = bpf_get_current_pid_tgid();
    struct pending *p = bpf_map_lookup_elem(&PENDING, &id);
    if (p) {
        const struct cred *cred = BPF_CORE_READ(current_task(), cred);
        p->old_id = BPF_CORE_READ(cred, gid.val);
        p->old_eid = BPF_CORE_READ(cred, egid.val);
    }
    return 0;
}

/* The kept arguments of this thread's syscall, removed from the map (copied out). */
static __always_inline bool take(struct pending *out)
{
    __u64 id = bpf_get_current_pid_tgid();
    struct pending *p = bpf_map_lookup_elem(&PENDING, &id);
    if (!p)
        return false;
    __builtin_memcpy(out, p, sizeof(*out));
    bpf_map_delete_elem(&PENDING, &id);
    return true;
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int kestrel_enter_unlinkat(struct tp_sys_enter *ctx) { return stash(ctx, 3); }
SEC("tracepoint/syscalls/sys_enter_unlink")
int kestrel_enter_unlink(struct tp_sys_enter *ctx) { return stash(ctx, 1); }
SEC("tracepoint/syscalls/sys_enter_renameat2")
int kestrel_enter_renameat2(struct tp_sys_enter *ctx) { return stash(ctx, 5); }
SEC("tracepoint/syscalls/sys_enter_renameat")
int kestrel_enter_renameat(struct tp_sys_enter *ctx) { return stash(ctx, 4); }
SEC("tracepoint/syscalls/sys_enter_rename")
int kestrel_enter_rename(struct tp_sys_enter *ctx) { return stash(ctx, 2); }
SEC("tracepoint/syscalls/sys_enter_memfd_create")
int kestrel_enter_memfd_create(struct tp_sys_enter *ctx) { return stash(ctx, 2); }
SEC("tracepoint/syscalls/sys_enter_ptrace")
int kestrel_enter_ptrace(struct tp_sys_enter *ctx) { return stash(ctx, 4); }
SEC("tracepoint/syscalls/sys_enter_setuid")
int kestrel_enter_setuid(struct tp_sys_enter *ctx) { return stash(ctx, 1); }
SEC("tracepoint/syscalls/sys_enter_setreuid")
int kestrel_enter_setreuid(struct tp_sys_enter *ctx) { return stash(ctx, 2); }
SEC("tracepoint/syscalls/sys_enter_setresuid")
int kestrel_enter_setresuid(struct tp_sys_enter *ctx) { return stash(ctx, 3); }
SEC("tracepoint/syscalls/sys_enter_setgid")
int kestrel_enter_setgid(struct tp_sys_enter *ctx) { return stash_gid(ctx, 1); }
SEC("tracepoint/syscalls/sys_enter_setregid")
int kestrel_enter_setregid(struct tp_sys_enter *ctx) { return stash_gid(ctx, 2); }
SEC("tracepoint/syscalls/sys_enter_setresgid")
int kestrel_enter_setresgid(struct tp_sys_enter *ctx) { return stash_gid(ctx, 3); }
SEC("tracepoint/syscalls/sys_enter_recvfrom")
int kestrel_enter_recvfrom(struct tp_sys_enter *ctx) { return stash(ctx, 6); }
SEC("tracepoint/syscalls/sys_enter_recvmsg")
int kestrel_enter_recvmsg(struct tp_sys_enter *ctx) { return stash(ctx, 3); }
SEC("tracepoint/syscalls/sys_enter_finit_module")
int kestrel_enter_finit_module(struct tp_sys_enter *ctx) { return stash(ctx, 3); }
SEC("tracepoint/syscalls/sys_enter_init_module")
int kestrel_enter_init_module(struct tp_sys_enter *ctx) { return stash(ctx, 3); }

/* ---- files ---- */

static __always_inline int opened(struct tp_sys_exit *ctx)
{
    if (ctx->ret < 0 || is_self())
        return 0;
    struct task_struct *task = current_task();
    struct file *file = fd_file(task, ctx->ret);
    if (!file)
        return 0;
    unsigned int mode = BPF_CORE_READ(file, f_mode);
    unsigned int flags = BPF_CORE_READ(file, f_flags);
    unsigned short imode = BPF_CORE_READ(file, f_inode, i_mode);
    __u32 op;
    if (mode & FMODE_CREATED)
        op = FILE_CREATE;
    else if ((flags & O_ACCMODE) != 0 && (imode & S_IFMT) == S_IFREG)
        op = FILE_MODIFY;
    else
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    fill_header(&s->header, task, KIND_FILE);
    struct kestrel_file *body = (void *)s->data;
    char *tail = s->data + sizeof(struct kestrel_file);
    __u32 off = 0;
    body->op = op;
    body->open_flags = flags;
    body->mode = imode;
    body->name_len = 0;
    body->dir_len = write_file_path(&s->header, tail, &off, file);
    body->orig_name_len = 0;
    body->orig_dir_len = 0;
    body->pad0 = 0;
    submit(s, sizeof(struct kestrel_file), off);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int kestrel_exit_openat(struct tp_sys_exit *ctx) { return opened(ctx); }
SEC("tracepoint/syscalls/sys_exit_openat2")
int kestrel_exit_openat2(struct tp_sys_exit *ctx) { return opened(ctx); }
SEC("tracepoint/syscalls/sys_exit_creat")
int kestrel_exit_creat(struct tp_sys_exit *ctx) { return opened(ctx); }
SEC("tracepoint/syscalls/sys_exit_open")
int kestrel_exit_open(struct tp_sys_exit *ctx) { return opened(ctx); }

/* A name relative to dirfd: the name, then the directory unless the name is absolute. */
static __always_inline void write_name_at(struct kestrel_header *h, char *tail, __u32 *off, struct task_struct *task, long dirfd,
                                          const char *name, __u16 *name_len, __u16 *dir_len)
{
    __u32 at = *off & TAIL_MASK;
    *name_len = write_user_str(tail, off, name);
    *dir_len = 0;
    char first = tail[at & TAIL_MASK];
    if (*name_len > 0 && first != '/')
        *dir_len = write_dir(h, tail, off, task, dirfd);
}

static __always_inline int file_changed(struct tp_sys_exit *ctx, __u32 op, int dirfd_arg, int name_arg, int new_dirfd_arg, int new_name_arg)
{
    struct pending p;
    if (!take(&p) || ctx->ret != 0)
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    struct task_struct *task = current_task();
    fill_header(&s->header, task, KIND_FILE);
    struct kestrel_file *body = (void *)s->data;
    char *tail = s->data + sizeof(struct kestrel_file);
    __u32 off = 0;
    long dirfd = dirfd_arg >= 0 ? (long)(int)p.args[dirfd_arg & 7] : AT_FDCWD;
    body->op = op;
    body->open_flags = 0;
    body->mode = 0;
    body->pad0 = 0;
    if (op == FILE_RENAME) {
        long new_dirfd = new_dirfd_arg >= 0 ? (long)(int)p.args[new_dirfd_arg & 7] : AT_FDCWD;
        write_name_at(&s->header, tail, &off, task, new_dirfd, (const char *)p.args[new_name_arg & 7], &body->name_len, &body->dir_len);
        write_name_at(&s->header, tail, &off, task, dirfd, (const char *)p.args[name_arg & 7], &body->orig_name_len, &body->orig_dir_len);
    } else {
        write_name_at(&s->header, tail, &off, task, dirfd, (const char *)p.args[name_arg & 7], &body->name_len, &body->dir_len);
        body->orig_name_len = 0;
        body->orig_dir_len = 0;
    }
    submit(s, sizeof(struct kestrel_file), off);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int kestrel_exit_unlinkat(struct tp_sys_exit *ctx) { return file_changed(ctx, FILE_DELETE, 0, 1, -1, -1); }
SEC("tracepoint/syscalls/sys_exit_unlink")
int kestrel_exit_unlink(struct tp_sys_exit *ctx) { return file_changed(ctx, FILE_DELETE, -1, 0, -1, -1); }
SEC("tracepoint/syscalls/sys_exit_renameat2")
int kestrel_exit_renameat2(struct tp_sys_exit *ctx) { return file_changed(ctx, FILE_RENAME, 0, 1, 2, 3); }
SEC("tracepoint/syscalls/sys_exit_renameat")
int kestrel_exit_renameat(struct tp_sys_exit *ctx) { return file_changed(ctx, FILE_RENAME, 0, 1, 2, 3); }
SEC("tracepoint/syscalls/sys_exit_rename")
int kestrel_exit_rename(struct tp_sys_exit *ctx) { return file_changed(ctx, FILE_RENAME, -1, 0, -1, 1); }

/* ---- network ---- */

static __always_inline struct sock *fd_sock(struct task_struct *task, long fd)
{
    struct file *file = fd_file(task, fd);
    if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
        return NULL;
    struct socket *sock = BPF_CORE_READ(file, private_data);
    return BPF_CORE_READ(sock, sk);
}

/* Local address into saddr/sport, remote into daddr/dport. */
static __always_inline bool read_sock(struct kestrel_net *body, struct sock *sk)
{
    __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    body->family = family;
    body->protocol = BPF_CORE_READ(sk, sk_protocol);
    body->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
    body->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    __builtin_memset(body->saddr, 0, 16);
    __builtin_memset(body->daddr, 0, 16);
    if (family == AF_INET) {
        __be32 saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        __be32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
        __builtin_memcpy(body->saddr, &saddr, 4);
        __builtin_memcpy(body->daddr, &daddr, 4);
        return true;
    }
    if (family == AF_INET6) {
        BPF_CORE_READ_INTO(&body->saddr, sk, __sk_common.skc_v6_rcv_saddr);
        BPF_CORE_READ_INTO(&body->daddr, sk, __sk_common.skc_v6_daddr);
        return true;
    }
    return false;
}

/* A socket is tracked from its connect call on, not from the call's return: on a local
 * connection the peer can accept and close before the caller runs again, and the FIN
 * would find no opener (no `disconnect_received`). The return tracks it again, with the
 * same process; a socket that never connects leaves on its way to TCP_CLOSE, or from
 * the LRU map. */
SEC("tracepoint/syscalls/sys_enter_connect")
int kestrel_enter_connect(struct tp_sys_enter *ctx)
{
    stash(ctx, 3);
    if (is_self())
        return 0;
    struct task_struct *task = current_task();
    struct sock *sk = fd_sock(task, (long)(int)ctx->args[0]);
    if (!sk)
        return 0;
    struct kestrel_header opener = {};
    fill_header(&opener, task, KIND_NET);
    __u64 key = (__u64)sk;
    bpf_map_update_elem(&SOCKETS, &key, &opener, BPF_ANY);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int kestrel_exit_connect(struct tp_sys_exit *ctx)
{
    struct pending p;
    if (!take(&p) || (ctx->ret != 0 && ctx->ret != -EINPROGRESS))
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    struct task_struct *task = current_task();
    struct sock *sk = fd_sock(task, (long)(int)p.args[0]);
    if (!sk)
        return 0;
    fill_header(&s->header, task, KIND_NET);
    struct kestrel_net *body = (void *)s->data;
    body->op = NET_CONNECT;
    body->pad0 = 0;
    if (!read_sock(body, sk))
        return 0;
    /* A connect that has not finished yet has no remote in the socket: take the caller's. */
    __u16 family = 0;
    bpf_probe_read_user(&family, sizeof(family), (void *)p.args[1]);
    if (family == AF_INET) {
        struct sockaddr_in sin = {};
        bpf_probe_read_user(&sin, sizeof(sin), (void *)p.args[1]);
        __builtin_memset(body->daddr, 0, 16);
        __builtin_memcpy(body->daddr, &sin.sin_addr, 4);
        body->dport = bpf_ntohs(sin.sin_port);
    } else if (family == AF_INET6) {
        struct sockaddr_in6 sin6 = {};
        bpf_probe_read_user(&sin6, sizeof(sin6), (void *)p.args[1]);
        __builtin_memcpy(body->daddr, sin6.sin6_addr, 16);
        body->dport = bpf_ntohs(sin6.sin6_port);
    }
    __u64 key = (__u64)sk;
    bpf_map_update_elem(&SOCKETS, &key, &s->header, BPF_ANY);
    submit(s, sizeof(struct kestrel_net), 0);
    return 0;
}

static __always_inline int accepted(struct tp_sys_exit *ctx)
{
    if (ctx->ret < 0 || is_self())
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    struct task_struct *task = current_task();
    struct sock *sk = fd_sock(task, ctx->ret);
    if (!sk)
        return 0;
    fill_header(&s->header, task, KIND_NET);
    struct kestrel_net *body = (void *)s->data;
    body->op = NET_ACCEPT;
    body->pad0 = 0;
    if (!read_sock(body, sk))
        return 0;
    __u64 key = (__u64)sk;
    bpf_map_update_elem(&SOCKETS, &key, &s->header, BPF_ANY);
    submit(s, sizeof(struct kestrel_net), 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int kestrel_exit_accept4(struct tp_sys_exit *ctx) { return accepted(ctx); }
SEC("tracepoint/syscalls/sys_exit_accept")
int kestrel_exit_accept(struct tp_sys_exit *ctx) { return accepted(ctx); }

/* The peer closed its side (ESTABLISHED → CLOSE_WAIT): reported for the process that
 * opened the connection, which need not be the one running now. */
SEC("tracepoint/sock/inet_sock_set_state")
int kestrel_sock_state(struct tp_inet_sock_set_state *ctx)
{
    __u64 key = (__u64)ctx->skaddr;
    if (ctx->newstate == TCP_CLOSE) {
        bpf_map_delete_elem(&SOCKETS, &key);
        return 0;
    }
    if (ctx->newstate != TCP_CLOSE_WAIT)
        return 0;
    struct kestrel_header *opener = bpf_map_lookup_elem(&SOCKETS, &key);
    struct scratch *s = scratch();
    if (!opener || !s)
        return 0;
    __builtin_memcpy(&s->header, opener, sizeof(s->header));
    s->header.ktime = bpf_ktime_get_boot_ns();
    s->header.kind = KIND_NET;
    s->header.flags = 0;
    struct kestrel_net *body = (void *)s->data;
    body->op = NET_DISCONNECT;
    body->pad0 = 0;
    body->family = ctx->family;
    body->protocol = ctx->protocol;
    body->sport = ctx->sport;
    body->dport = ctx->dport;
    __builtin_memset(body->saddr, 0, 16);
    __builtin_memset(body->daddr, 0, 16);
    if (ctx->family == AF_INET) {
        __builtin_memcpy(body->saddr, ctx->saddr, 4);
        __builtin_memcpy(body->daddr, ctx->daddr, 4);
    } else {
        __builtin_memcpy(body->saddr, ctx->saddr_v6, 16);
        __builtin_memcpy(body->daddr, ctx->daddr_v6, 16);
    }
    submit(s, sizeof(struct kestrel_net), 0);
    return 0;
}

/* ---- DNS responses ---- */

#define IPPROTO_UDP 17
#define DNS_PORT 53

/* A DNS response received on a UDP socket whose peer is port 53 (connected, as libc's
 * resolver does, or named by recvfrom's address): its first DNS_MAX bytes. */
static __always_inline int dns_received(long ret, long fd, const void *buf, const void *from)
{
    if (ret <= 12)
        return 0;
    struct task_struct *task = current_task();
    struct sock *sk = fd_sock(task, fd);
    if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_UDP)
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    struct kestrel_dns *body = (void *)s->data;
    struct kestrel_net addresses = {};
    if (!read_sock(&addresses, sk))
        return 0;
    if (addresses.dport != DNS_PORT && from) {
        struct sockaddr_in6 sin6 = {};
        bpf_probe_read_user(&sin6, sizeof(sin6), from);
        addresses.dport = bpf_ntohs(sin6.sin6_port);
        if (sin6.sin6_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&sin6;
            __builtin_memset(addresses.daddr, 0, 16);
            __builtin_memcpy(addresses.daddr, &sin->sin_addr, 4);
        } else if (sin6.sin6_family == AF_INET6) {
            __builtin_memcpy(addresses.daddr, sin6.sin6_addr, 16);
        }
    }
    if (addresses.dport != DNS_PORT)
        return 0;
    fill_header(&s->header, task, KIND_DNS);
    body->family = addresses.family;
    body->sport = addresses.sport;
    body->dport = addresses.dport;
    body->pad0 = 0;
    body->pad1 = 0;
    __builtin_memcpy(body->saddr, addresses.saddr, 16);
    __builtin_memcpy(body->daddr, addresses.daddr, 16);
    char *tail = s->data + sizeof(struct kestrel_dns);
    __u32 len = ret > DNS_MAX ? DNS_MAX : ret;
    len &= 2 * DNS_MAX - 1;
    if (bpf_probe_read_user(tail, len, buf))
        return 0;
    body->data_len = len;
    submit(s, sizeof(struct kestrel_dns), len);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int kestrel_exit_recvfrom(struct tp_sys_exit *ctx)
{
    struct pending p;
    if (!take(&p))
        return 0;
    return dns_received(ctx->ret, (long)(int)p.args[0], (const void *)p.args[1], (const void *)p.args[4]);
}

/* struct user_msghdr and struct iovec, as user memory lays them out. */
struct user_msghdr_head {
    void *msg_name;
    int msg_namelen;
    int pad;
    struct { void *iov_base; __u64 iov_len; } *msg_iov;
};

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int kestrel_exit_recvmsg(struct tp_sys_exit *ctx)
{
    struct pending p;
    if (!take(&p) || ctx->ret <= 12)
        return 0;
    struct user_msghdr_head msg = {};
    void *base = NULL;
    if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)p.args[1]) || !msg.msg_iov)
        return 0;
    bpf_probe_read_user(&base, sizeof(base), &msg.msg_iov->iov_base);
    if (!base)
        return 0;
    return dns_received(ctx->ret, (long)(int)p.args[0], base, msg.msg_name);
}

/* ---- credentials, memfd, ptrace, modules ---- */

static __always_inline int cred_changed(struct tp_sys_exit *ctx, __u32 op)
{
    struct pending p;
    if (!take(&p) || ctx->ret != 0)
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    struct task_struct *task = current_task();
    fill_header(&s->header, task, KIND_CRED);
    __u32 id = op == CRED_UID ? s->header.uid : s->header.gid;
    __u32 eid = op == CRED_UID ? s->header.euid : s->header.egid;
    if (id == p.old_id && eid == p.old_eid)
        return 0;
    struct kestrel_cred *body = (void *)s->data;
    body->op = op;
    body->old_id = p.old_id;
    body->old_eid = p.old_eid;
    body->pad0 = 0;
    submit(s, sizeof(struct kestrel_cred), 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_setuid")
int kestrel_exit_setuid(struct tp_sys_exit *ctx) { return cred_changed(ctx, CRED_UID); }
SEC("tracepoint/syscalls/sys_exit_setreuid")
int kestrel_exit_setreuid(struct tp_sys_exit *ctx) { return cred_changed(ctx, CRED_UID); }
SEC("tracepoint/syscalls/sys_exit_setresuid")
int kestrel_exit_setresuid(struct tp_sys_exit *ctx) { return cred_changed(ctx, CRED_UID); }
SEC("tracepoint/syscalls/sys_exit_setgid")
int kestrel_exit_setgid(struct tp_sys_exit *ctx) { return cred_changed(ctx, CRED_GID); }
SEC("tracepoint/syscalls/sys_exit_setregid")
int kestrel_exit_setregid(struct tp_sys_exit *ctx) { return cred_changed(ctx, CRED_GID); }
SEC("tracepoint/syscalls/sys_exit_setresgid")
int kestrel_exit_setresgid(struct tp_sys_exit *ctx) { return cred_changed(ctx, CRED_GID); }

SEC("tracepoint/syscalls/sys_exit_memfd_create")
int kestrel_exit_memfd_create(struct tp_sys_exit *ctx)
{
    struct pending p;
    if (!take(&p) || ctx->ret < 0)
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    fill_header(&s->header, current_task(), KIND_MEMFD);
    struct kestrel_memfd *body = (void *)s->data;
    char *tail = s->data + sizeof(struct kestrel_memfd);
    __u32 off = 0;
    body->flags = p.args[1];
    body->pad0 = 0;
    body->name_len = write_user_str(tail, &off, (const char *)p.args[0]);
    submit(s, sizeof(struct kestrel_memfd), off);
    return 0;
}

#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_SETREGS 13
#define PTRACE_SETFPREGS 15
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206
#define PTRACE_SETREGSET 0x4205

SEC("tracepoint/syscalls/sys_exit_ptrace")
int kestrel_exit_ptrace(struct tp_sys_exit *ctx)
{
    struct pending p;
    if (!take(&p) || ctx->ret != 0)
        return 0;
    __u32 request = p.args[0];
    if (request != PTRACE_POKETEXT && request != PTRACE_POKEDATA && request != PTRACE_POKEUSR && request != PTRACE_SETREGS &&
        request != PTRACE_SETFPREGS && request != PTRACE_ATTACH && request != PTRACE_SEIZE && request != PTRACE_SETREGSET)
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    fill_header(&s->header, current_task(), KIND_PTRACE);
    struct kestrel_ptrace *body = (void *)s->data;
    body->request = request;
    body->target_pid = p.args[1];
    submit(s, sizeof(struct kestrel_ptrace), 0);
    return 0;
}

static __always_inline int module_loaded(struct tp_sys_exit *ctx, bool from_fd)
{
    struct pending p;
    if (!take(&p) || ctx->ret != 0)
        return 0;
    struct scratch *s = scratch();
    if (!s)
        return 0;
    struct task_struct *task = current_task();
    fill_header(&s->header, task, KIND_MODULE);
    struct kestrel_module *body = (void *)s->data;
    char *tail = s->data + sizeof(struct kestrel_module);
    __u32 off = 0;
    body->flags = from_fd ? p.args[2] : 0;
    body->pad0 = 0;
    body->path_len = from_fd ? write_file_path(&s->header, tail, &off, fd_file(task, (long)(int)p.args[0])) : 0;
    submit(s, sizeof(struct kestrel_module), off);
    return 0;
}

SEC("tracepoint/syscalls/sys_exit_finit_module")
int kestrel_exit_finit_module(struct tp_sys_exit *ctx) { return module_loaded(ctx, true); }
SEC("tracepoint/syscalls/sys_exit_init_module")
int kestrel_exit_init_module(struct tp_sys_exit *ctx) { return module_loaded(ctx, false); }
