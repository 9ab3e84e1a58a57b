/* The kernel types Kestrel's probes read, declared with only the fields they use.
 *
 * Every struct is `preserve_access_index`: clang records each field access as a CO-RE
 * relocation by name, and the loader (aya) resolves it against the running kernel's
 * BTF (/sys/kernel/btf/vmlinux). So the declared layouts below need not match any
 * kernel; only the field names and kinds must exist. This replaces a generated
 * vmlinux.h (134k lines) and keeps the build free of bpftool.
 */
#ifndef KESTREL_KERNEL_H
#define KESTREL_KERNEL_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

enum bpf_map_type {
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_ARRAY = 2,
    BPF_MAP_TYPE_PERCPU_ARRAY = 6,
    BPF_MAP_TYPE_LRU_HASH = 9,
    BPF_MAP_TYPE_RINGBUF = 27,
};

#define BPF_ANY 0

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct { int counter; } atomic_t;
typedef struct { unsigned int val; } kuid_t;
typedef struct { unsigned int val; } kgid_t;

struct qstr {
    union {
        struct {
            __u32 hash;
            __u32 len;
        };
        __u64 hash_len;
    };
    const unsigned char *name;
};

struct dentry {
    struct dentry *d_parent;
    struct qstr d_name;
    struct inode *d_inode;
};

struct inode {
    unsigned short i_mode;
    unsigned long i_ino;
};

struct vfsmount {
    struct dentry *mnt_root;
};

struct mount {
    struct mount *mnt_parent;
    struct dentry *mnt_mountpoint;
    struct vfsmount mnt;
};

struct path {
    struct vfsmount *mnt;
    struct dentry *dentry;
};

struct file {
    struct path f_path;
    struct inode *f_inode;
    unsigned int f_flags;
    unsigned int f_mode;
    void *private_data;
};

struct fdtable {
    unsigned int max_fds;
    struct file **fd;
};

struct files_struct {
    struct fdtable *fdt;
};

struct fs_struct {
    struct path pwd;
};

struct mm_struct {
    unsigned long arg_start;
    unsigned long arg_end;
    unsigned long env_start;
    unsigned long env_end;
    struct file *exe_file;
};

struct cred {
    kuid_t uid;
    kgid_t gid;
    kuid_t euid;
    kgid_t egid;
};

struct tty_driver {
    int major;
    int minor_start;
};

struct tty_struct {
    struct tty_driver *driver;
    int index;
};

struct upid {
    int nr;
};

struct pid {
    struct upid numbers[1];
};

struct signal_struct {
    atomic_t live;
    struct tty_struct *tty;
    struct pid *pids[4];
    int group_exit_code;
    unsigned int flags;
};

struct task_struct {
    int pid;
    int tgid;
    int exit_code;
    struct task_struct *real_parent;
    struct task_struct *group_leader;
    __u64 start_boottime;
    const struct cred *cred;
    struct mm_struct *mm;
    struct fs_struct *fs;
    struct files_struct *files;
    struct signal_struct *signal;
    char comm[16];
};

struct in6_addr {
    __u8 in6_u[16];
};

/* Flat here; anonymous unions in the kernel (CO-RE matches members by name). */
struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
    struct sock_common __sk_common;
    __u16 sk_protocol;
    __u16 sk_type;
};

struct socket {
    struct sock *sk;
};

#pragma clang attribute pop

/* Tracepoint contexts, at the offsets of their tracefs `format` files (stable ABI). */
struct tp_common {
    __u16 common_type;
    __u8 common_flags;
    __u8 common_preempt_count;
    __s32 common_pid;
};

struct tp_sys_enter {
    struct tp_common common;
    __s32 syscall_nr;
    __u32 pad;
    __u64 args[6];
};

struct tp_sys_exit {
    struct tp_common common;
    __s32 syscall_nr;
    __u32 pad;
    __s64 ret;
};

struct tp_sched_process_exec {
    struct tp_common common;
    __u32 filename_loc;
    __s32 pid;
    __s32 old_pid;
};

struct tp_inet_sock_set_state {
    struct tp_common common;
    const void *skaddr;
    __s32 oldstate;
    __s32 newstate;
    __u16 sport;
    __u16 dport;
    __u16 family;
    __u16 protocol;
    __u8 saddr[4];
    __u8 daddr[4];
    __u8 saddr_v6[16];
    __u8 daddr_v6[16];
};

struct sockaddr_in {
    __u16 sin_family;
    __be16 sin_port;
    __be32 sin_addr;
};

struct sockaddr_in6 {
    __u16 sin6_family;
    __be16 sin6_port;
    __u32 sin6_flowinfo;
    __u8 sin6_addr[16];
};

#endif
