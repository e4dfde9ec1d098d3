// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tapwire's kernel side: syscall tracepoints that follow TCP sockets and copy the
 * bytes of HTTP connections into one ring buffer. No kprobes, no fentry: only
 * syscalls/sys_{enter,exit}_* and sched tracepoints, so it runs where those are all
 * a kernel offers.
 *
 * Every program has one shape: filter, look up, emit, return.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "tapwire.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define O_ACCMODE 3
#define O_RDONLY 0

const volatile struct tw_config tw_config = {};

/* Every record goes here, in the order it was submitted. Size set by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

/* The connection table. Key: (tgid, fd). Value: id, positions, kind.
 * Entries are made at accept/connect, or at the first read/write of a TCP socket that was
 * open before; they die at close, when user space learns the process exited, or by LRU. */
struct tw_conn {
	__u64 id;
	__u64 pos[2];	  /* next stream position, by enum tw_direction */
	__u64 tls_pos[2]; /* the same in the plaintext of a TLS connection */
	__u32 classify_attempts;
	__u16 tls_lib;	  /* the TLS library its plaintext comes from */
	__u8 origin;	  /* enum tw_origin */
	__u8 class;	  /* enum tw_class */
	__u8 announced;	  /* a CONN_OPEN event was sent */
	__u8 reserved[7];
	__u64 paired_ssl; /* the memory-buffer SSL object paired with this socket (0: none) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tw_conn_key);
	__type(value, struct tw_conn);
} conns SEC(".maps");

/* An SSL_read/SSL_write(_ex) call in progress on a thread: its arguments from the entry
 * uprobe, and the socket fd of the first TCP syscall the call makes (-1 until then). */
struct tw_ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 len_ptr; /* _ex: where the byte count is written; PR_Writev: the iovec count */
	__s32 fd;
	__u16 lib;
	__u8 fn; /* enum tw_ssl_fn */
	__u8 reserved;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid: one call per thread at a time */
	__type(value, struct tw_ssl_call);
} ssl_calls SEC(".maps");

/* NSS: the SSL layer's methods table in each process, learnt from SSL_ImportFD's result. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tgid */
	__type(value, __u64);
} nss_methods SEC(".maps");

struct tw_ssl_key {
	__u32 tgid;
	__u32 reserved;
	__u64 ssl;
};

/* SSL* -> socket fd, learned from a call that made a syscall, for calls that make none
 * (a read served from OpenSSL's buffer). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tw_ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

/* Connections of SSL objects whose socket is never seen (the library does its socket I/O
 * elsewhere, as node does): reported without endpoints. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tw_ssl_key);
	__type(value, struct tw_conn);
} ssl_conns SEC(".maps");

/* Go binaries being probed, by library id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct tw_go_config);
} go_bins SEC(".maps");

/* A crypto/tls.(*Conn).Read in progress, by goroutine: a goroutine can move between
 * threads while it waits, so its entry and its return are matched by g (r14), not thread. */
struct tw_go_key {
	__u32 tgid;
	__u32 reserved;
	__u64 g;
};

struct tw_go_call {
	__u64 conn; /* *tls.Conn */
	__u64 buf;
	__u64 len;
	__s32 fd;
	__u16 lib;
	__u8 dir; /* TW_DIR_EGRESS: Write; TW_DIR_INGRESS: Read */
	__u8 reserved;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tw_go_key);
	__type(value, struct tw_go_call);
} go_calls SEC(".maps");

/* What a data syscall was called with, read back at its sys_exit from the registers the
 * kernel saved at entry: one program per syscall, no map, and a read that was already
 * blocked when tapwire attached is still seen when it returns. */
struct tw_syscall_args {
	__u64 buf;    /* the buffer, or the iovec array when iovcnt > 0 */
	__u64 iovcnt; /* 0: buf is a plain buffer */
	__u32 fd;
	__u8 direction;
	__u8 sendfile;
	__u8 iov_len32; /* the iovecs are NSPR's PRIOVec: a 32-bit length (its upper half is padding) */
	__u8 reserved;
};

/* One data event under construction per CPU: a chunk is assembled here from one or more
 * iovec pieces and then copied into the ring buffer. Twice the chunk size so the verifier
 * can prove any (offset < chunk, length <= chunk) write is in bounds. A plain array indexed
 * by CPU, since per-CPU values are limited to 32 KiB; the loader sets max_entries to the
 * number of possible CPUs. */
/* State of one copy of syscall bytes into data events. It lives in the scratch map value,
 * not on the stack, so the verifier sees the bpf_loop callback's state as plain scalars
 * and does not walk every iteration's bounds. */
struct copy_state {
	__u64 iov;	  /* user iovec array, or 0 for a single buffer */
	__u64 iovcnt;
	__u64 iov_idx;
	__u64 base;	  /* current piece */
	__u64 piece_left;
	__u64 remaining;  /* bytes of the syscall not yet copied */
	__u64 pos;	  /* stream position of the chunk being filled */
	__u32 fill;	  /* bytes in the chunk being filled */
	__u32 chunks;	  /* events emitted */
	__u32 chunk_limit;
	__u32 failed;	  /* a read fault or full ring stopped the copy */
	__u32 iov_len32;  /* iovec lengths are 32 bits (NSPR's PRIOVec) */
	__u32 reserved;
};

struct tw_scratch {
	struct copy_state st;
	struct tw_data_event ev;
	__u8 data[2 * TW_CHUNK_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tw_scratch);
} scratch SEC(".maps");

/* enum tw_counter slots, per CPU; user space adds them up. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TW_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Settings that may change at run time (filters). One entry. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tw_settings);
} settings SEC(".maps");

/* Filter sets, consulted when the matching settings flag is 1. Values unused (1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} filter_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[TW_COMM_LEN]);
	__type(value, __u8);
} filter_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} filter_ports SEC(".maps");

/* Cgroup ids (v2) of the containers chosen: a process in one of them or below it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} filter_cgroups SEC(".maps");

/* LD_LIBRARY_PATH of the last exec of each process that had one. Key: tgid. Written at
 * execve entry, deleted at an exec without one; LRU, since exits do not clean it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct tw_exec_env);
} exec_env SEC(".maps");

/* tapwire's own listening sockets (API server), written by user space. A connection of
 * another process to one of them is tapwire's client, and is not traced. Value unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct tw_endpoint);
	__type(value, __u8);
} self_listeners SEC(".maps");

/* Both ends of a TCP connection, seen from one side. */
struct tw_tuple {
	struct tw_endpoint local;
	struct tw_endpoint remote;
};

/* Connections tapwire itself made or accepted, by (local, remote): the peer's side of one,
 * (remote, local) seen from the peer, is not traced — tapwire never captures itself from
 * either end. Written at tapwire's connect (before its first packet) and accept; LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tw_tuple);
	__type(value, __u8);
} self_conns SEC(".maps");

/* Never used: it makes every struct of tapwire.h appear in the
 * object's BTF, where user space reads their layouts (scripts/gen-layout.ts). */
struct tw_btf_anchor {
	struct tw_event_header header;
	struct tw_conn_open_event conn_open;
	struct tw_data_event data;
	struct tw_conn_close_event conn_close;
	struct tw_proc_exec_event proc_exec;
	struct tw_proc_exit_event proc_exit;
	struct tw_lib_open_event lib_open;
	struct tw_go_config go_config;
	struct tw_tls_secret_event tls_secret;
	struct tw_settings settings;
	struct tw_conn_key conn_key;
	struct tw_config config;
	struct tw_exec_env exec_env;
	struct tw_endpoint endpoint;
} tw_btf_anchor;

/* Connection ids: a counter that only grows while the program is loaded. */
__u64 next_conn_id = 0;

static __always_inline void count(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &slot);
	if (v)
		*v += n;
}

static __always_inline struct tw_settings *get_settings(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&settings, &zero);
}

/* Every record starts with this header. */
static __always_inline void fill_header(struct tw_event_header *h, __u32 kind, __u64 pid_tgid)
{
	h->kind = kind;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->reserved = 0;
	h->ts_ns = bpf_ktime_get_ns();
}

/* Deepest cgroup level looked at above the current one: a container's processes sit at
 * its cgroup or a few levels below (systemd in a container, nested runtimes). */
#define TW_MAX_CGROUP_DEPTH 16

/* The current task's cgroup, or one of its ancestors, is in `filter_cgroups`. */
static __always_inline bool cgroup_wanted(void)
{
	__u64 id = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(&filter_cgroups, &id))
		return true;
	for (int level = 1; level < TW_MAX_CGROUP_DEPTH; level++) {
		__u64 a = bpf_get_current_ancestor_cgroup_id(level);
		if (a == 0 || a == id)
			return false; /* reached the current cgroup */
		if (bpf_map_lookup_elem(&filter_cgroups, &a))
			return true;
	}
	return false;
}

/* Never tapwire; honour the pid filter. Process lifetime events pass this one only: a
 * container's processes must be seen while user space decides whether it is wanted. */
static __always_inline bool process_visible(__u32 tgid)
{
	if (tgid == tw_config.self_tgid)
		return false;
	struct tw_settings *s = get_settings();
	if (s && s->filter_pids && !bpf_map_lookup_elem(&filter_pids, &tgid))
		return false;
	return true;
}

/* The first check of every program that reports traffic: visible, and in a chosen
 * container when containers were chosen. */
static __always_inline bool process_wanted(__u32 tgid)
{
	if (!process_visible(tgid))
		return false;
	struct tw_settings *s = get_settings();
	if (s && s->filter_cgroups && !cgroup_wanted())
		return false;
	return true;
}

/* fd -> struct sock, when fd is an IPv4/IPv6 TCP socket of the current task. */
static __always_inline struct sock *tcp_sock_of_fd(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = BPF_CORE_READ(task, files);
	if (!files)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fdarr = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fdarr[fd]);
	if (!file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return NULL;
	return sk;
}

/* The ends of a socket's connection; IPv4-mapped IPv6 addresses as IPv4 (a dual-stack
 * server's side then matches its IPv4 client's). */
static __always_inline void endpoint_of(struct tw_endpoint *e, __u16 family, const __u8 *addr16, __u16 port)
{
	e->port = port;
	e->reserved = 0;
	bool mapped = family == AF_INET6;
	for (int i = 0; i < 10; i++)
		mapped = mapped && addr16[i] == 0;
	mapped = mapped && addr16[10] == 0xff && addr16[11] == 0xff;
	__builtin_memset(e->addr, 0, 16);
	if (family == AF_INET || mapped) {
		e->family = AF_INET;
		__builtin_memcpy(e->addr, family == AF_INET ? addr16 : addr16 + 12, 4);
	} else {
		e->family = family;
		__builtin_memcpy(e->addr, addr16, 16);
	}
}

static __always_inline void tuple_of(struct tw_tuple *t, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u8 local[16] = {}, remote[16] = {};
	if (family == AF_INET) {
		bpf_core_read(local, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(remote, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(local, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(remote, 16, &sk->__sk_common.skc_v6_daddr);
	}
	endpoint_of(&t->local, family, local, BPF_CORE_READ(sk, __sk_common.skc_num));
	endpoint_of(&t->remote, family, remote, bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)));
}

/* tapwire made or accepted this connection: remember it, so its peer's side is known. */
static __always_inline void note_self_conn(__u32 fd)
{
	struct sock *sk = tcp_sock_of_fd(fd);
	if (!sk)
		return;
	struct tw_tuple t = {};
	tuple_of(&t, sk);
	__u8 one = 1;
	bpf_map_update_elem(&self_conns, &t, &one, BPF_ANY);
}

/* The other end is tapwire: a connection to one of its listeners, or the peer's side of a
 * connection tapwire made or accepted. */
static __always_inline bool peer_is_self(struct sock *sk)
{
	struct tw_tuple t = {};
	tuple_of(&t, sk);
	if (bpf_map_lookup_elem(&self_listeners, &t.remote))
		return true;
	struct tw_endpoint any = t.remote;
	__builtin_memset(any.addr, 0, 16);
	if (bpf_map_lookup_elem(&self_listeners, &any))
		return true;
	struct tw_tuple mirror = { .local = t.remote, .remote = t.local };
	return bpf_map_lookup_elem(&self_conns, &mirror) != NULL;
}

static __always_inline struct tw_conn *conn_create(__u32 tgid, __u32 fd, __u8 origin, struct sock *sk)
{
	struct tw_conn_key key = { .tgid = tgid, .fd = fd };
	struct tw_conn c = {
		.id = __sync_fetch_and_add(&next_conn_id, 1) + 1,
		.origin = origin,
		/* tapwire's own connections are not traced from the other end either. */
		.class = sk && peer_is_self(sk) ? TW_CLASS_IGNORED : TW_CLASS_UNKNOWN,
	};
	if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY)) {
		count(TW_CNT_DROP_CONN_MAP_FULL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&conns, &key);
}

/* The connection behind (tgid, fd), made on first sight of a TCP socket. */
static __always_inline struct tw_conn *conn_of_fd(__u32 tgid, __u32 fd)
{
	struct tw_conn_key key = { .tgid = tgid, .fd = fd };
	struct tw_conn *c = bpf_map_lookup_elem(&conns, &key);
	if (c)
		return c;
	struct sock *sk = tcp_sock_of_fd(fd);
	if (!sk)
		return NULL;
	return conn_create(tgid, fd, TW_ORIGIN_FOUND, sk);
}

static __always_inline bool starts_with(const char *buf, const char *prefix, int n)
{
	for (int i = 0; i < n; i++)
		if (buf[i] != prefix[i])
			return false;
	return true;
}

static __always_inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* PROTOCOL_LIST: what the first bytes of a message say. `n` bytes of `b` are valid. */
static __always_inline __u8 classify(const char *b, __u32 n)
{
	if (n >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04)
		return TW_CLASS_TLS;
	if (n >= 14 && starts_with(b, "PRI * HTTP/2.0", 14))
		return TW_CLASS_HTTP2;
	if (n >= 8 && starts_with(b, "HTTP/1.", 7))
		return TW_CLASS_HTTP1;
	if (n >= 4 && (starts_with(b, "GET ", 4) || starts_with(b, "PUT ", 4)))
		return TW_CLASS_HTTP1;
	if (n >= 5 && (starts_with(b, "POST ", 5) || starts_with(b, "HEAD ", 5)))
		return TW_CLASS_HTTP1;
	if (n >= 6 && (starts_with(b, "PATCH ", 6) || starts_with(b, "TRACE ", 6)))
		return TW_CLASS_HTTP1;
	if (n >= 7 && starts_with(b, "DELETE ", 7))
		return TW_CLASS_HTTP1;
	if (n >= 8 && (starts_with(b, "OPTIONS ", 8) || starts_with(b, "CONNECT ", 8)))
		return TW_CLASS_HTTP1;
	/* A Redis command: an array of 1-9999 bulk strings ("*3\r\n$3\r\nSET..."). Constant
	 * indexes only: the verifier bounds each read of the prefix by itself. */
	if (n >= 6 && b[0] == '*' && b[1] >= '1' && b[1] <= '9') {
		if (b[2] == '\r' && b[3] == '\n' && b[4] == '$')
			return TW_CLASS_REDIS;
		if (is_digit(b[2]) && b[3] == '\r' && b[4] == '\n' && b[5] == '$')
			return TW_CLASS_REDIS;
		if (n >= 7 && is_digit(b[2]) && is_digit(b[3]) && b[4] == '\r' && b[5] == '\n' && b[6] == '$')
			return TW_CLASS_REDIS;
		if (n >= 8 && is_digit(b[2]) && is_digit(b[3]) && is_digit(b[4]) && b[5] == '\r' && b[6] == '\n' && b[7] == '$')
			return TW_CLASS_REDIS;
	}
	return TW_CLASS_UNKNOWN;
}

/* A connection joined in the middle: does this syscall start with an HTTP/2 frame? A frame
 * header of a known type, reserved bit clear, stream id fitting the type, and a length that
 * fits in what the syscall moved (peers write whole frames). User space checks further. */
static __always_inline bool h2_frame_like(const char *b, __u32 n, __u64 total)
{
	if (n < 9)
		return false;
	__u32 len = ((__u32)(__u8)b[0] << 16) | ((__u32)(__u8)b[1] << 8) | (__u8)b[2];
	__u8 type = b[3];
	__u32 stream = (((__u32)(__u8)b[5] & 0x7f) << 24) | ((__u32)(__u8)b[6] << 16) |
		       ((__u32)(__u8)b[7] << 8) | (__u8)b[8];
	if (type > 9 || ((__u8)b[5] & 0x80) || 9 + (__u64)len > total)
		return false;
	if (type == 4 /* SETTINGS */ || type == 6 /* PING */ || type == 7 /* GOAWAY */)
		return stream == 0 && (type != 6 || len == 8) && (type != 4 || len % 6 == 0);
	if (type == 8 /* WINDOW_UPDATE */)
		return len == 4;
	return stream != 0;
}

/* A joined connection's first syscall is exactly one WebSocket frame: FIN set, RSV2/RSV3
 * clear, a known opcode (a control frame at most 125 bytes), and a length field that says
 * this syscall's size — what tells it from another binary protocol. */
static __always_inline bool ws_frame_like(const char *b, __u32 n, __u64 total)
{
	if (n < 2)
		return false;
	__u8 b0 = b[0], b1 = b[1];
	__u8 opcode = b0 & 0x0f;
	if ((b0 & 0xb0) != 0x80 || !(opcode == 1 || opcode == 2 || (opcode >= 8 && opcode <= 10)))
		return false;
	__u64 len = b1 & 0x7f;
	__u64 head = 2 + ((b1 & 0x80) ? 4 : 0);
	if (len == 126) {
		if (n < 4)
			return false;
		len = ((__u64)(__u8)b[2] << 8) | (__u8)b[3];
		head += 2;
	} else if (len == 127) {
		if (n < 10 || b[2] || b[3] || b[4] || b[5])
			return false;
		len = ((__u64)(__u8)b[6] << 24) | ((__u64)(__u8)b[7] << 16) | ((__u64)(__u8)b[8] << 8) | (__u8)b[9];
		head += 8;
	}
	if (opcode >= 8 && len > 125)
		return false;
	return head + len == total;
}

/* The first bytes a syscall moved: from the buffer, or from the first non-empty iovec. */
static __always_inline __u32 read_prefix(char *out, __u32 cap, __u64 buf, __u64 iovcnt, __u64 total)
{
	__u64 base = buf, len = total;
	if (iovcnt) {
		struct iovec iov = {};
		for (int i = 0; i < 4 && i < iovcnt; i++) {
			if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(buf + i * sizeof(iov))))
				return 0;
			if (iov.iov_len)
				break;
		}
		base = (__u64)iov.iov_base;
		len = iov.iov_len;
	}
	if (len > total)
		len = total;
	if (len > cap)
		len = cap;
	if (len == 0 || bpf_probe_read_user(out, len & 31, (void *)base))
		return 0;
	return len;
}

/* Announce a connection to user space: endpoints, process, how it was found. `sk` is NULL
 * when the socket is not known: no endpoints, and a port filter excludes the connection,
 * since it cannot be shown to match. */
static __always_inline bool announce_sock(struct tw_conn *c, struct sock *sk, __u32 fd, __u64 pid_tgid)
{
	__u16 lport = 0, rport = 0, family = 0;
	if (sk) {
		lport = BPF_CORE_READ(sk, __sk_common.skc_num);
		rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		family = BPF_CORE_READ(sk, __sk_common.skc_family);
	}
	struct tw_settings *s = get_settings();
	if (s && s->filter_ports && !bpf_map_lookup_elem(&filter_ports, &lport) &&
	    !bpf_map_lookup_elem(&filter_ports, &rport))
		return false;
	/* The process's name is its leader's: threads may have named themselves otherwise. */
	char comm[TW_COMM_LEN] = {};
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO(&comm, task, group_leader, comm);
	if (s && s->filter_comms && !bpf_map_lookup_elem(&filter_comms, comm))
		return false;

	struct tw_conn_open_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		return false;
	}
	fill_header(&e->hdr, TW_EVENT_CONN_OPEN, pid_tgid);
	e->conn_id = c->id;
	e->family = family;
	e->local_port = lport;
	e->remote_port = rport;
	e->origin = c->origin;
	e->class = c->class;
	e->fd = fd;
	e->tls_lib = c->tls_lib;
	e->cgroup_id = bpf_get_current_cgroup_id();
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	__builtin_memset(e->local_addr, 0, 16);
	__builtin_memset(e->remote_addr, 0, 16);
	if (sk && family == AF_INET) {
		bpf_core_read(e->local_addr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(e->remote_addr, 4, &sk->__sk_common.skc_daddr);
	} else if (sk) {
		bpf_core_read(e->local_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e->remote_addr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	bpf_ringbuf_submit(e, 0);
	count(TW_CNT_EVENTS, 1);
	count(TW_CNT_CONNS_OPENED, 1);
	c->announced = 1;
	return true;
}

static __always_inline bool announce(struct tw_conn *c, __u32 fd, __u64 pid_tgid)
{
	struct sock *sk = tcp_sock_of_fd(fd);
	if (!sk)
		return false;
	return announce_sock(c, sk, fd, pid_tgid);
}

/* Decide, from the bytes of this syscall, whether the connection is worth sending.
 * Returns true when its data should go to user space. */
static __always_inline bool decide(struct tw_conn *c, struct tw_syscall_args *a, __u64 total,
				   __u64 pos, __u64 pid_tgid)
{
	if (c->class == TW_CLASS_HTTP1 || c->class == TW_CLASS_HTTP2 || c->class == TW_CLASS_WEBSOCKET || c->class == TW_CLASS_REDIS)
		return c->announced;
	if (c->class != TW_CLASS_UNKNOWN)
		return false;

	char prefix[32] = {};
	__u32 n = read_prefix(prefix, 16, a->buf, a->iovcnt, total);
	__u8 class = classify(prefix, n);
	/* A connection joined in the middle may be at any frame; one seen from its start may
	 * begin with the server's SETTINGS (servers need not wait for the client preface). */
	if (class == TW_CLASS_UNKNOWN && h2_frame_like(prefix, n, total) &&
	    (c->origin == TW_ORIGIN_FOUND || (prefix[3] == 4 && prefix[4] == 0)))
		class = TW_CLASS_HTTP2;
	/* Joined after an upgrade to WebSocket: its frames. */
	if (class == TW_CLASS_UNKNOWN && c->origin == TW_ORIGIN_FOUND && ws_frame_like(prefix, n, total))
		class = TW_CLASS_WEBSOCKET;
	if (class == TW_CLASS_UNKNOWN) {
		/* From its first byte a stream that is not HTTP or TLS is something else; a stream
		 * joined in the middle gets more chances to reach a message start. */
		bool from_start = pos == 0 && c->origin != TW_ORIGIN_FOUND;
		if ((from_start && n >= 8) || ++c->classify_attempts >= TW_MAX_CLASSIFY_ATTEMPTS)
			c->class = TW_CLASS_OTHER;
		return false;
	}
	/* tapwire may have accepted this connection only after it was made. */
	struct sock *sk = tcp_sock_of_fd(a->fd);
	if (sk && peer_is_self(sk)) {
		c->class = TW_CLASS_IGNORED;
		return false;
	}
	c->class = class;
	if (class == TW_CLASS_TLS)
		return false;
	if (!announce_sock(c, sk, a->fd, pid_tgid)) {
		c->class = TW_CLASS_IGNORED;
		return false;
	}
	return true;
}

static __always_inline struct tw_scratch *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch, &cpu);
}

/* Send the chunk in scratch (fill bytes) and start the next one. */
static __always_inline void flush_chunk(struct tw_scratch *s)
{
	struct copy_state *st = &s->st;
	if (st->fill == 0)
		return;
	__u32 len = st->fill;
	if (len > TW_CHUNK_SIZE)
		len = TW_CHUNK_SIZE;
	/* A mask the compiler cannot drop, so the verifier sees the bound. */
	barrier_var(len);
	len &= 2 * TW_CHUNK_SIZE - 1;
	s->ev.pos = st->pos;
	s->ev.len = len;
	if (bpf_ringbuf_output(&events, &s->ev, sizeof(struct tw_data_event) + len, 0)) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		count(TW_CNT_DROP_RINGBUF_BYTES, len);
	} else {
		count(TW_CNT_EVENTS, 1);
		count(TW_CNT_DATA_BYTES, len);
	}
	st->pos += len;
	st->fill = 0;
	st->chunks++;
}

static long copy_step(__u32 i, void *ctx)
{
	struct tw_scratch *s = get_scratch();
	if (!s)
		return 1;
	struct copy_state *st = &s->st;
	if (st->remaining == 0 || st->chunks >= st->chunk_limit)
		return 1;
	if (st->piece_left == 0) {
		if (!st->iov || st->iov_idx >= st->iovcnt || st->iov_idx >= TW_MAX_IOV) {
			count(TW_CNT_DROP_IOV_LIMIT_BYTES, st->remaining);
			st->remaining = 0;
			return 1;
		}
		struct iovec v = {};
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(st->iov + st->iov_idx * sizeof(v)))) {
			st->failed = 1;
			return 1;
		}
		st->iov_idx++;
		st->base = (__u64)v.iov_base;
		st->piece_left = st->iov_len32 ? (__u32)v.iov_len : v.iov_len;
		return 0;
	}
	__u64 n = st->piece_left;
	if (n > st->remaining)
		n = st->remaining;
	__u32 room = TW_CHUNK_SIZE - (st->fill & (TW_CHUNK_SIZE - 1));
	if (n > room)
		n = room;
	if (n > TW_CHUNK_SIZE)
		n = TW_CHUNK_SIZE;
	barrier_var(n);
	n &= TW_CHUNK_SIZE * 2 - 1;
	__u32 off = st->fill & (TW_CHUNK_SIZE - 1);
	if (bpf_probe_read_user(&s->data[off], n, (void *)st->base)) {
		st->failed = 1;
		return 1;
	}
	st->fill += n;
	st->base += n;
	st->piece_left -= n;
	st->remaining -= n;
	if (st->fill >= TW_CHUNK_SIZE || st->remaining == 0)
		flush_chunk(s);
	return 0;
}

/* Send `total` bytes a syscall moved, as events of up to TW_CHUNK_SIZE bytes. */
static __always_inline void emit_data(struct tw_syscall_args *a, __u64 conn_id, __u64 pos, __u64 peer_pos,
				      __u64 total, __u64 pid_tgid, __u8 source)
{
	struct tw_scratch *s = get_scratch();
	if (!s)
		return;
	fill_header(&s->ev.hdr, TW_EVENT_DATA, pid_tgid);
	s->ev.conn_id = conn_id;
	s->ev.peer_pos = peer_pos;
	s->ev.skipped = 0;
	s->ev.direction = a->direction;
	s->ev.source = source;
	s->ev.flags = 0;
	__builtin_memset(s->ev.reserved, 0, sizeof(s->ev.reserved));

	struct tw_settings *cfg = get_settings();
	__u32 limit = cfg && cfg->chunk_limit ? cfg->chunk_limit : TW_MAX_CHUNKS;
	if (limit > TW_MAX_CHUNKS)
		limit = TW_MAX_CHUNKS;
	struct copy_state *st = &s->st;
	st->iov = a->iovcnt ? a->buf : 0;
	st->iovcnt = a->iovcnt;
	st->iov_len32 = a->iov_len32;
	st->iov_idx = 0;
	st->base = a->iovcnt ? 0 : a->buf;
	st->piece_left = a->iovcnt ? 0 : total;
	st->remaining = total;
	st->pos = pos;
	st->fill = 0;
	st->chunks = 0;
	st->chunk_limit = limit;
	st->failed = 0;
	bpf_loop(TW_MAX_CHUNKS + TW_MAX_IOV + 1, copy_step, NULL, 0);
	/* The callback may have run on the scratch of this CPU only: look it up again. */
	s = get_scratch();
	if (!s)
		return;
	st = &s->st;
	if (st->failed)
		count(TW_CNT_DROP_READ_FAULT_BYTES, st->remaining + st->fill);
	else if (st->remaining)
		count(TW_CNT_DROP_CHUNK_LIMIT_BYTES, st->remaining);
}

/* An event that only says: `skipped` bytes at `pos` were moved but not copied (sendfile). */
static __always_inline void emit_skipped(__u64 conn_id, __u8 direction, __u64 pos, __u64 peer_pos,
					 __u64 skipped, __u8 flags, __u64 pid_tgid)
{
	struct tw_data_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_header(&e->hdr, TW_EVENT_DATA, pid_tgid);
	e->conn_id = conn_id;
	e->pos = pos;
	e->peer_pos = peer_pos;
	e->skipped = skipped;
	e->direction = direction;
	e->flags = flags;
	bpf_ringbuf_submit(e, 0);
	count(TW_CNT_EVENTS, 1);
}

/* The user registers saved at syscall entry: the syscall's arguments, still there at exit. */
static __always_inline struct pt_regs *syscall_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* TLS over memory buffers (node): the SSL calls touch no socket; the program moves the
 * ciphertext itself, on the same thread — it reads a socket and hands the bytes to OpenSSL
 * before the SSL call that uses them, and writes what an SSL call produced right after it.
 * So, per thread: the last TLS socket read since the last SSL call, and an SSL object whose
 * call ended without a socket, waiting for the thread's next TLS socket write. Only sockets
 * that carry TLS records are noted (ciphertext), never plaintext connections. */
struct tw_thread_tls {
	__u64 pending_ssl;   /* an SSL object whose socket the next TLS write names */
	__s32 last_read_fd;  /* -1: no TLS socket read since the last SSL call */
	__u8 has_pending;
	__u8 reserved[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tw_thread_tls);
} thread_tls SEC(".maps");

/* A TLS socket read or written outside any SSL call of this thread. A socket already paired
 * with another SSL object is never given to a second one. */
static __always_inline void note_tls_socket_io(__u64 pid_tgid, struct tw_conn *c, __s32 fd, __u8 dir)
{
	struct tw_thread_tls *t = bpf_map_lookup_elem(&thread_tls, &pid_tgid);
	if (dir == TW_DIR_INGRESS) {
		if (t) {
			t->last_read_fd = fd;
		} else {
			struct tw_thread_tls fresh = { .last_read_fd = fd };
			bpf_map_update_elem(&thread_tls, &pid_tgid, &fresh, BPF_ANY);
		}
		return;
	}
	if (t && t->has_pending) {
		/* Ciphertext written for another object (a deferred flush): the pending one's
		 * socket is not this; it stays unknown rather than guessed. */
		if (!c->paired_ssl || c->paired_ssl == t->pending_ssl) {
			struct tw_ssl_key key = { .tgid = pid_tgid >> 32, .ssl = t->pending_ssl };
			bpf_map_update_elem(&ssl_fds, &key, &fd, BPF_NOEXIST);
			c->paired_ssl = t->pending_ssl;
		}
		t->has_pending = 0;
	}
}

/* An SSL call that ended without touching a socket, for an object whose socket is not known:
 * the socket the thread read since its last SSL call is the one whose bytes this call used;
 * if none, the thread's next TLS write carries what it produced. Every SSL call ends the
 * thread's window. Returns the socket when known now, else -1. */
static __always_inline __s32 pair_by_thread(__u64 pid_tgid, struct tw_ssl_key *key, bool unknown)
{
	struct tw_thread_tls *t = bpf_map_lookup_elem(&thread_tls, &pid_tgid);
	if (!unknown) {
		if (t) {
			t->last_read_fd = -1;
			t->has_pending = 0;
		}
		return -1;
	}
	__s32 fd = -1;
	if (t && t->last_read_fd >= 0) {
		fd = t->last_read_fd;
		t->last_read_fd = -1;
		t->has_pending = 0;
		struct tw_conn *c = conn_of_fd(key->tgid, fd);
		/* Not a socket that is another object's (its bytes were not this call's). */
		if (!c || (c->paired_ssl && c->paired_ssl != key->ssl))
			return -1;
		c->paired_ssl = key->ssl;
		bpf_map_update_elem(&ssl_fds, key, &fd, BPF_ANY);
		return fd;
	}
	struct tw_thread_tls pending = { .pending_ssl = key->ssl, .last_read_fd = -1, .has_pending = 1 };
	bpf_map_update_elem(&thread_tls, &pid_tgid, &pending, BPF_ANY);
	return -1;
}

/* sys_exit of a data syscall: copy the `ret` bytes it moved, if its connection is HTTP. */
static __always_inline void data_syscall_exit(long ret, struct tw_syscall_args *a)
{
	if (ret <= 0)
		return;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!process_wanted(tgid))
		return;
	struct tw_conn *c = conn_of_fd(tgid, a->fd);
	if (!c)
		return; /* not TCP */
	/* Inside an SSL call on this thread: its first TCP syscall names its socket. */
	struct tw_ssl_call *call = bpf_map_lookup_elem(&ssl_calls, &pid_tgid);
	if (call && call->fd < 0)
		call->fd = a->fd;
	if (c->class == TW_CLASS_OTHER || c->class == TW_CLASS_IGNORED)
		return; /* nothing of it reaches user space: positions not kept */
	__u8 dir = a->direction & 1;
	/* Reserve this syscall's range of the stream: concurrent writers get disjoint ones. */
	__u64 pos = __sync_fetch_and_add(&c->pos[dir], (__u64)ret);
	if (a->sendfile) {
		if (c->announced && (c->class == TW_CLASS_HTTP1 || c->class == TW_CLASS_HTTP2)) {
			count(TW_CNT_SENDFILE_BYTES, ret);
			emit_skipped(c->id, dir, pos, c->pos[dir ^ 1], ret, TW_DATA_SENDFILE, pid_tgid);
		}
		return;
	}
	bool keep = decide(c, a, ret, pos, pid_tgid);
	/* Ciphertext moved outside an SSL call: a memory-buffer TLS program's socket I/O. */
	if (c->class == TW_CLASS_TLS && !call)
		note_tls_socket_io(pid_tgid, c, a->fd, dir);
	if (!keep) {
		count(c->class == TW_CLASS_TLS ? TW_CNT_SKIPPED_TLS_BYTES : TW_CNT_SKIPPED_OTHER_BYTES, ret);
		return;
	}
	emit_data(a, c->id, pos, c->pos[dir ^ 1], ret, pid_tgid, TW_SOURCE_SYSCALL);
}

/* read, write, sendto, recvfrom: (fd, buf, ...) */
static __always_inline void buffer_syscall_exit(long ret, __u8 direction)
{
	if (ret <= 0)
		return;
	struct pt_regs *regs = syscall_regs();
	struct tw_syscall_args a = {
		.fd = PT_REGS_PARM1_CORE_SYSCALL(regs),
		.buf = PT_REGS_PARM2_CORE_SYSCALL(regs),
		.direction = direction,
	};
	data_syscall_exit(ret, &a);
}

/* readv, writev: (fd, iov, iovcnt) */
static __always_inline void iovec_syscall_exit(long ret, __u8 direction)
{
	if (ret <= 0)
		return;
	struct pt_regs *regs = syscall_regs();
	struct tw_syscall_args a = {
		.fd = PT_REGS_PARM1_CORE_SYSCALL(regs),
		.buf = PT_REGS_PARM2_CORE_SYSCALL(regs),
		.iovcnt = PT_REGS_PARM3_CORE_SYSCALL(regs),
		.direction = direction,
	};
	if (a.iovcnt)
		data_syscall_exit(ret, &a);
}

/* sendmsg, recvmsg: (fd, msghdr, flags); the iovec array comes from the user's msghdr. */
static __always_inline void msg_syscall_exit(long ret, __u8 direction)
{
	if (ret <= 0)
		return;
	struct pt_regs *regs = syscall_regs();
	struct user_msghdr m = {};
	if (bpf_probe_read_user(&m, sizeof(m), (void *)PT_REGS_PARM2_CORE_SYSCALL(regs))) {
		count(TW_CNT_DROP_READ_FAULT_BYTES, ret);
		return;
	}
	struct tw_syscall_args a = {
		.fd = PT_REGS_PARM1_CORE_SYSCALL(regs),
		.buf = (__u64)m.msg_iov,
		.iovcnt = m.msg_iovlen,
		.direction = direction,
	};
	if (a.iovcnt)
		data_syscall_exit(ret, &a);
}

/* ---- data syscalls: all work happens at sys_exit, when the bytes are known ---- */

SEC("tracepoint/syscalls/sys_exit_read")
int tw_exit_read(struct syscall_trace_exit *ctx)
{
	buffer_syscall_exit(ctx->ret, TW_DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int tw_exit_write(struct syscall_trace_exit *ctx)
{
	buffer_syscall_exit(ctx->ret, TW_DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int tw_exit_recvfrom(struct syscall_trace_exit *ctx)
{
	buffer_syscall_exit(ctx->ret, TW_DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int tw_exit_sendto(struct syscall_trace_exit *ctx)
{
	buffer_syscall_exit(ctx->ret, TW_DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_readv")
int tw_exit_readv(struct syscall_trace_exit *ctx)
{
	iovec_syscall_exit(ctx->ret, TW_DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_writev")
int tw_exit_writev(struct syscall_trace_exit *ctx)
{
	iovec_syscall_exit(ctx->ret, TW_DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int tw_exit_recvmsg(struct syscall_trace_exit *ctx)
{
	msg_syscall_exit(ctx->ret, TW_DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int tw_exit_sendmsg(struct syscall_trace_exit *ctx)
{
	msg_syscall_exit(ctx->ret, TW_DIR_EGRESS);
	return 0;
}

/* sendfile(out_fd, in_fd, offset, count): the bytes are a file's, not in user memory.
 * Their count keeps positions right and tells user space what it did not see. */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int tw_exit_sendfile(struct syscall_trace_exit *ctx)
{
	if (ctx->ret <= 0)
		return 0;
	struct tw_syscall_args a = {
		.fd = PT_REGS_PARM1_CORE_SYSCALL(syscall_regs()),
		.direction = TW_DIR_EGRESS,
		.sendfile = 1,
	};
	data_syscall_exit(ctx->ret, &a);
	return 0;
}

/* A reported connection ends: its final positions, of the stream user space saw. */
static __always_inline void emit_close(struct tw_conn *c, __u64 pid_tgid)
{
	struct tw_conn_close_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		return;
	}
	fill_header(&e->hdr, TW_EVENT_CONN_CLOSE, pid_tgid);
	e->conn_id = c->id;
	/* Plaintext positions for TLS. */
	bool tls = c->class == TW_CLASS_TLS;
	e->egress_bytes = tls ? c->tls_pos[TW_DIR_EGRESS] : c->pos[TW_DIR_EGRESS];
	e->ingress_bytes = tls ? c->tls_pos[TW_DIR_INGRESS] : c->pos[TW_DIR_INGRESS];
	bpf_ringbuf_submit(e, 0);
	count(TW_CNT_EVENTS, 1);
}

/* ---- OpenSSL: plaintext at SSL_read / SSL_write / SSL_read_ex / SSL_write_ex ---- */

/* Entry: remember the call's arguments for its return, on this thread. The attach cookie
 * says which function and which library file. (BPF_KPROBE: the same pt_regs access for a
 * uprobe; libbpf 1.1 has no BPF_UPROBE.) */
SEC("uprobe")
int BPF_KPROBE(tw_ssl_enter, void *ssl, void *buf, __u64 num, __u64 *len_ptr)
{
	count(TW_CNT_UPROBE_HITS, 1);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!process_wanted(pid_tgid >> 32))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	if (cookie & TW_COOKIE_NSS) {
		/* An NSPR call: only on an SSL socket of NSS (its methods table says so). */
		__u32 tgid = pid_tgid >> 32;
		__u64 *ssl_methods = bpf_map_lookup_elem(&nss_methods, &tgid);
		__u64 methods = 0;
		if (!ssl_methods || bpf_probe_read_user(&methods, sizeof(methods), ssl) || methods != *ssl_methods)
			return 0;
	}
	if (((cookie >> 16) & 0xff) == TW_SSL_FREE) {
		/* Its address may be reused by the next SSL object: forget what it was. */
		struct tw_ssl_key key = { .tgid = pid_tgid >> 32, .ssl = (__u64)ssl };
		struct tw_thread_tls *t = bpf_map_lookup_elem(&thread_tls, &pid_tgid);
		if (t && t->has_pending && t->pending_ssl == key.ssl)
			t->has_pending = 0;
		bpf_map_delete_elem(&ssl_fds, &key);
		struct tw_conn *c = bpf_map_lookup_elem(&ssl_conns, &key);
		if (c && c->announced)
			emit_close(c, pid_tgid);
		bpf_map_delete_elem(&ssl_conns, &key);
		return 0;
	}
	struct tw_ssl_call call = {
		.ssl = (__u64)ssl,
		.buf = (__u64)buf,
		.fd = -1,
		.lib = cookie & 0xffff,
		.fn = (cookie >> 16) & 0xff,
	};
	if (call.fn == TW_SSL_READ_EX || call.fn == TW_SSL_WRITE_EX)
		call.len_ptr = (__u64)len_ptr;
	if (call.fn == TW_NSS_WRITEV) /* PR_Writev(fd, iov, iov_size, timeout) */
		call.len_ptr = num;
	/* PR_Recv(fd, buf, amount, flags, timeout) with PR_MSG_PEEK: the bytes stay to be read
	 * again; only the real read counts. */
	if (call.fn == TW_NSS_RECV) {
		if ((__u64)len_ptr & TW_PR_MSG_PEEK)
			return 0;
		call.fn = TW_SSL_READ;
	}
	bpf_map_update_elem(&ssl_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

/* The connection of an SSL object whose socket is not known: made when SSL_new returns it
 * (origin SSL_NEW: seen from the start) or at its first data (FOUND). */
static __always_inline struct tw_conn *ssl_conn_lookup(struct tw_ssl_key *key, __u16 lib, __u8 origin)
{
	struct tw_conn *c = bpf_map_lookup_elem(&ssl_conns, key);
	if (c)
		return c;
	struct tw_conn fresh = {
		.id = __sync_fetch_and_add(&next_conn_id, 1) + 1,
		.origin = origin,
		.class = TW_CLASS_TLS,
		.tls_lib = lib,
	};
	if (bpf_map_update_elem(&ssl_conns, key, &fresh, BPF_NOEXIST) && !bpf_map_lookup_elem(&ssl_conns, key)) {
		count(TW_CNT_DROP_CONN_MAP_FULL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&ssl_conns, key);
}

/* The same, announced at its first data. */
static __always_inline struct tw_conn *ssl_conn_without_socket(struct tw_ssl_key *key, __u16 lib, __u64 pid_tgid)
{
	struct tw_conn *c = ssl_conn_lookup(key, lib, TW_ORIGIN_FOUND);
	if (!c || c->class == TW_CLASS_IGNORED)
		return NULL;
	if (c->announced)
		return c;
	if (!announce_sock(c, NULL, (__u32)-1, pid_tgid)) {
		c->class = TW_CLASS_IGNORED;
		return NULL;
	}
	return c;
}

/* Plaintext of a TLS connection: `n` bytes at `buf`, on the socket `fd` when known, else on
 * the connection kept for the TLS object `key` (SSL* or *tls.Conn) without endpoints. */
static __always_inline void tls_plaintext(__u64 pid_tgid, struct tw_ssl_key *key, __s32 fd, __u16 lib, __u8 dir,
					  __u64 buf, __u64 iovcnt, __u64 n, __u8 source)
{
	__u32 tgid = pid_tgid >> 32;
	struct tw_conn *c;
	if (fd >= 0) {
		c = conn_of_fd(tgid, fd);
		if (!c) {
			count(TW_CNT_SSL_NOT_TCP_BYTES, n);
			return;
		}
		if (c->class == TW_CLASS_IGNORED)
			return;
		/* Plaintext from a TLS library proves TLS, also on a connection joined late. */
		c->class = TW_CLASS_TLS;
		if (!c->announced) {
			c->tls_lib = lib;
			if (!announce(c, fd, pid_tgid)) {
				c->class = TW_CLASS_IGNORED;
				return;
			}
		}
	} else {
		count(TW_CNT_SSL_NO_SOCKET_CALLS, 1);
		c = ssl_conn_without_socket(key, lib, pid_tgid);
		if (!c)
			return;
	}
	__u64 pos = __sync_fetch_and_add(&c->tls_pos[dir & 1], n);
	/* iovcnt: NSS's PR_Writev, whose PRIOVec lengths are 32 bits. */
	struct tw_syscall_args a = { .buf = buf, .iovcnt = iovcnt, .fd = fd, .direction = dir, .iov_len32 = iovcnt > 0 };
	emit_data(&a, c->id, pos, c->tls_pos[(dir & 1) ^ 1], n, pid_tgid, source);
}

/* Return: the plaintext is in the buffer now (read) or was taken (write). */
SEC("uretprobe")
int BPF_KRETPROBE(tw_ssl_exit, long rax)
{
	count(TW_CNT_UPROBE_HITS, 1);
	/* All four return int: the upper half of rax is not part of the value. */
	int ret = (int)rax;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tw_ssl_call *p = bpf_map_lookup_elem(&ssl_calls, &pid_tgid);
	if (!p)
		return 0;
	struct tw_ssl_call call = *p;
	bpf_map_delete_elem(&ssl_calls, &pid_tgid);
	__u32 tgid = pid_tgid >> 32;
	struct tw_ssl_key key = { .tgid = tgid, .ssl = call.ssl };
	/* A call that touched no socket, of an object whose socket is not known: memory buffers. */
	if (call.fn <= TW_SSL_HANDSHAKE) {
		bool unknown = call.fd < 0 && !bpf_map_lookup_elem(&ssl_fds, &key);
		__s32 paired = pair_by_thread(pid_tgid, &key, unknown);
		if (paired >= 0)
			call.fd = paired;
	}

	if (call.fn == TW_SSL_HANDSHAKE) {
		/* The handshake's socket I/O names the socket before any data: a first read
		 * served from what the handshake already buffered then knows it too. */
		if (call.fd >= 0)
			bpf_map_update_elem(&ssl_fds, &key, &call.fd, BPF_ANY);
		return 0;
	}
	if (call.fn == TW_NSS_IMPORT) {
		/* Every SSL socket of NSS in this process shares the methods table of this one. */
		__u64 methods = 0;
		if (rax && !bpf_probe_read_user(&methods, sizeof(methods), (void *)rax) && methods)
			bpf_map_update_elem(&nss_methods, &tgid, &methods, BPF_ANY);
		return 0;
	}
	if (call.fn == TW_SSL_NEW) {
		/* If this object's socket is never seen (node), its connection is still known to
		 * start here. Objects with sockets never use the entry; SSL_free removes it. */
		key.ssl = rax;
		if (rax)
			ssl_conn_lookup(&key, call.lib, TW_ORIGIN_SSL_NEW);
		return 0;
	}

	__u64 n = 0;
	if (call.fn == TW_SSL_READ_EX || call.fn == TW_SSL_WRITE_EX) {
		if (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)call.len_ptr))
			return 0;
	} else {
		if (ret <= 0)
			return 0;
		n = ret;
	}
	if (n == 0)
		return 0;
	__u8 dir = (call.fn == TW_SSL_WRITE || call.fn == TW_SSL_WRITE_EX || call.fn == TW_NSS_WRITEV) ? TW_DIR_EGRESS : TW_DIR_INGRESS;
	__s32 *known = bpf_map_lookup_elem(&ssl_fds, &key);
	if (call.fd < 0 && known)
		call.fd = *known;
	else if (call.fd >= 0 && (!known || *known != call.fd))
		bpf_map_update_elem(&ssl_fds, &key, &call.fd, BPF_ANY);

	tls_plaintext(pid_tgid, &key, call.fd, call.lib, dir, call.buf, call.fn == TW_NSS_WRITEV ? call.len_ptr : 0, n, TW_SOURCE_OPENSSL);
	return 0;
}

/* ---- Go: crypto/tls.(*Conn).Write and Read, at entry and at every RET ---- */

/* The socket fd behind a *tls.Conn: its net.Conn field, if that holds a *net.TCPConn (the
 * itab says so), -> netFD -> poll.FD.Sysfd. -1 when it cannot be known. `bias` is where
 * the binary was loaded (PIE) relative to its link-time addresses. */
static __always_inline __s32 go_conn_fd(__u64 conn, struct tw_go_config *cfg, __u64 bias)
{
	if (!cfg->tcp_conn_itab)
		return -1;
	__u64 iface[2] = {};
	if (bpf_probe_read_user(iface, sizeof(iface), (void *)(conn + cfg->tls_conn_conn)))
		return -1;
	if (iface[0] != cfg->tcp_conn_itab + bias || !iface[1])
		return -1;
	__u64 netfd = 0;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(iface[1] + cfg->tcp_conn_fd)) || !netfd)
		return -1;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + cfg->netfd_sysfd)))
		return -1;
	return sysfd >= 0 && sysfd < (1 << 24) ? (__s32)sysfd : -1;
}

/* Entries of Write and Read (or the first place past the stack check where the kernel
 * emulates the instruction: src/probes/uprobe-placement.ts; the arguments are still in
 * their registers there). Go's register ABI: rax = *tls.Conn, rbx = buffer, rcx = len.
 * Write's bytes are sent at entry, before they can reach the peer: sent at return, a reply
 * read by another goroutine could be seen first. A function whose stack must grow runs its
 * entry twice (the runtime grows the stack and starts it again): the call is kept by
 * goroutine (r14) until it returns, and a second entry with the same arguments is that
 * restart, not a new call. Read's bytes are sent at return, with the count it returned. */
SEC("uprobe")
int tw_go_enter(struct pt_regs *ctx)
{
	count(TW_CNT_UPROBE_HITS, 1);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (!process_wanted(tgid))
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 lib = cookie & 0xffff;
	__u8 fn = (cookie >> 16) & 0xff;
	struct tw_go_config *cfg = bpf_map_lookup_elem(&go_bins, &lib);
	if (!cfg)
		return 0;
	__u64 conn = ctx->ax;
	struct tw_go_key gk = { .tgid = tgid, .g = ctx->r14 };
	bool write = fn == TW_GO_WRITE;
	bool once = cookie & TW_COOKIE_ONCE;
	if (write && !once) {
		struct tw_go_call *prev = bpf_map_lookup_elem(&go_calls, &gk);
		if (prev && prev->dir == TW_DIR_EGRESS && prev->conn == conn && prev->buf == ctx->bx && prev->len == ctx->cx)
			return 0;
	}
	__u64 bias = bpf_get_func_ip(ctx) - (write ? cfg->write_vaddr : cfg->read_vaddr);
	struct tw_go_call call = {
		.conn = conn,
		.buf = ctx->bx,
		.len = ctx->cx,
		.fd = go_conn_fd(conn, cfg, bias),
		.lib = lib,
		.dir = write ? TW_DIR_EGRESS : TW_DIR_INGRESS,
	};
	/* Past the stack check, a Write is neither restarted nor followed by RET probes: nothing
	 * to remember. */
	if (!(write && once))
		bpf_map_update_elem(&go_calls, &gk, &call, BPF_ANY);
	if (write && call.len > 0 && call.len < (1ULL << 32)) {
		struct tw_ssl_key key = { .tgid = tgid, .ssl = conn };
		tls_plaintext(pid_tgid, &key, call.fd, lib, TW_DIR_EGRESS, call.buf, 0, call.len, TW_SOURCE_GO);
	}
	return 0;
}

/* A RET of Read or Write: rax = n, and r14 still holds the goroutine. */
SEC("uprobe")
int tw_go_ret(struct pt_regs *ctx)
{
	count(TW_CNT_UPROBE_HITS, 1);
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tw_go_key gk = { .tgid = pid_tgid >> 32, .g = ctx->r14 };
	struct tw_go_call *p = bpf_map_lookup_elem(&go_calls, &gk);
	if (!p)
		return 0;
	struct tw_go_call call = *p;
	bpf_map_delete_elem(&go_calls, &gk);
	__s64 n = ctx->ax;
	if (call.dir != TW_DIR_INGRESS || n <= 0 || n >= (1LL << 32))
		return 0;
	struct tw_ssl_key key = { .tgid = gk.tgid, .ssl = call.conn };
	tls_plaintext(pid_tgid, &key, call.fd, call.lib, TW_DIR_INGRESS, call.buf, 0, n, TW_SOURCE_GO);
	return 0;
}

/* ---- TLS libraries being loaded: openat of a file named libssl.so*, libgnutls.so* or libssl3.so ---- */

static const char libssl_name[] = "libssl.so";
static const char libgnutls_name[] = "libgnutls.so";
static const char libssl3_name[] = "libssl3.so"; /* NSS's */

/* Whether the base name at `base` in scratch starts with `name` (a constant of length n). */
#define BASENAME_STARTS_WITH(s, base, name)                                                   \
	({                                                                                     \
		bool same = true;                                                              \
		for (__u32 k = 0; k < sizeof(name) - 1; k++)                                   \
			if ((s)->data[((base) + k) & (2 * TW_CHUNK_SIZE - 1)] != (name)[k])    \
				same = false;                                                  \
		same;                                                                          \
	})

/* bpf_loop callback: remembers where the base name of the path in scratch starts. A
 * callback keeps the verifier from walking every iteration of a 256-byte scan. */
struct basename_scan {
	struct tw_scratch *s;
	__u32 base;
};

static long basename_step(__u32 i, void *ctx)
{
	struct basename_scan *scan = ctx;
	char ch = scan->s->data[i & (TW_PATH_LEN - 1)];
	if (!ch)
		return 1;
	if (ch == '/')
		scan->base = i + 1;
	return 0;
}

/* ---- TLS secrets of Go programs (tapwire keylog) ---- */

/* Up to `cap` (a power of two) bytes of a Go slice or string of the traced program, sizes the
 * verifier can bound; its pages are faulted in if need be (sleepable programs only). */
static __always_inline bool read_field(void *dst, __u32 cap, __u64 src, __u64 len)
{
	if (len == 0)
		return true;
	if (len >= cap)
		return bpf_copy_from_user(dst, cap, (void *)src) == 0;
	return bpf_copy_from_user(dst, len & (cap - 1), (void *)src) == 0;
}

/* Entry of crypto/tls.(*Config).writeKeyLog, which every handshake calls for each secret it
 * derives, key log configured or not. Register ABI: rax = *Config, rbx/rcx = label,
 * rdi/rsi/r8 = clientRandom, r9/r10/r11 = secret. A restart of the entry (stack growth)
 * sends the secret twice: user space writes each line once. Sleepable, so that the label —
 * a constant in the program's read-only data that the program itself may never have touched
 * (no key log configured) — is read even from a page not yet mapped in (bpf_copy_from_user
 * faults it in; bpf_probe_read_user would fail and lose the secret). */
SEC("uprobe.s")
int tw_go_keylog(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!process_wanted(pid_tgid >> 32))
		return 0;
	/* Copied first (a copy may wait for a page to come in): a record reserved meanwhile would
	 * keep user space from every record after it. */
	char label[TW_SECRET_LABEL_LEN] = {};
	__u8 random[TW_SECRET_RANDOM_LEN] = {};
	__u8 secret[TW_SECRET_LEN] = {};
	bool have_label = read_field(label, TW_SECRET_LABEL_LEN, ctx->bx, ctx->cx);
	bool have_random = read_field(random, TW_SECRET_RANDOM_LEN, ctx->di, ctx->si);
	bool have_secret = read_field(secret, TW_SECRET_LEN, ctx->r9, ctx->r10);
	struct tw_tls_secret_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		return 0;
	}
	fill_header(&e->hdr, TW_EVENT_TLS_SECRET, pid_tgid);
	e->label_len = have_label ? ctx->cx : 0;
	e->random_len = have_random ? ctx->si : 0;
	e->secret_len = have_secret ? ctx->r10 : 0;
	e->reserved = 0;
	__builtin_memcpy(e->label, label, sizeof(label));
	__builtin_memcpy(e->client_random, random, sizeof(random));
	__builtin_memcpy(e->secret, secret, sizeof(secret));
	bpf_ringbuf_submit(e, 0);
	count(TW_CNT_EVENTS, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tw_exit_openat(struct syscall_trace_exit *ctx)
{
	if (ctx->ret < 0)
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((pid_tgid >> 32) == tw_config.self_tgid)
		return 0;
	/* Loaders open libraries read-only; a file opened for writing (being copied or
	 * installed) is not looked at until it is complete and opened to be loaded. */
	struct pt_regs *regs = syscall_regs();
	if ((PT_REGS_PARM3_CORE_SYSCALL(regs) & O_ACCMODE) != O_RDONLY)
		return 0;
	struct tw_scratch *s = get_scratch();
	if (!s)
		return 0;
	const char *name = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
	long len = bpf_probe_read_user_str(s->data, TW_PATH_LEN, name);
	if (len <= (long)sizeof(libssl_name))
		return 0;
	struct basename_scan scan = { .s = s, .base = 0 };
	bpf_loop(TW_PATH_LEN, basename_step, &scan, 0);
	if (!BASENAME_STARTS_WITH(s, scan.base, libssl_name) && !BASENAME_STARTS_WITH(s, scan.base, libgnutls_name) &&
	    !BASENAME_STARTS_WITH(s, scan.base, libssl3_name))
		return 0;

	struct tw_lib_open_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		return 0;
	}
	fill_header(&e->hdr, TW_EVENT_LIB_OPEN, pid_tgid);
	e->fd = ctx->ret;
	e->reserved = 0;
	__builtin_memcpy(e->path, s->data, TW_PATH_LEN);
	bpf_ringbuf_submit(e, 0);
	count(TW_CNT_EVENTS, 1);
	return 0;
}

/* ---- connection lifetime ---- */

static __always_inline void accepted(long ret)
{
	if (ret < 0)
		return;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == tw_config.self_tgid) {
		note_self_conn(ret);
		return;
	}
	if (!process_wanted(tgid))
		return;
	struct sock *sk = tcp_sock_of_fd(ret);
	if (!sk)
		return;
	conn_create(tgid, ret, TW_ORIGIN_ACCEPT, sk);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int tw_exit_accept(struct syscall_trace_exit *ctx)
{
	accepted(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int tw_exit_accept4(struct syscall_trace_exit *ctx)
{
	accepted(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int tw_exit_connect(struct syscall_trace_exit *ctx)
{
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 fd = PT_REGS_PARM1_CORE_SYSCALL(syscall_regs());
	/* Both ends are known once connect returns, EINPROGRESS included: before the peer can
	 * accept. */
	if (tgid == tw_config.self_tgid) {
		note_self_conn(fd);
		return 0;
	}
	if (!process_wanted(tgid))
		return 0;
	struct sock *sk = tcp_sock_of_fd(fd);
	if (!sk)
		return 0;
	conn_create(tgid, fd, TW_ORIGIN_CONNECT, sk);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int tw_enter_close(struct syscall_trace_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct tw_conn_key key = { .tgid = pid_tgid >> 32, .fd = ctx->args[0] };
	struct tw_conn *c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	if (c->announced)
		emit_close(c, pid_tgid);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* ---- processes ---- */

SEC("tracepoint/sched/sched_process_exec")
int tw_process_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!process_visible(pid_tgid >> 32))
		return 0;
	struct tw_proc_exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		return 0;
	}
	fill_header(&e->hdr, TW_EVENT_PROC_EXEC, pid_tgid);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->reserved = 0;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	unsigned int loc = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + loc);
	bpf_ringbuf_submit(e, 0);
	count(TW_CNT_EVENTS, 1);
	return 0;
}

/* ---- the environment of an exec ---- */

/* Environment entries looked at per exec. */
#define TW_MAX_ENV 256

struct env_scan {
	const char *const *envp;
	struct tw_exec_env *out;
	int found;
};

static const char ld_library_path_key[] = "LD_LIBRARY_PATH=";

static long env_step(__u32 i, void *ctx)
{
	struct env_scan *scan = ctx;
	const char *entry = 0;
	if (bpf_probe_read_user(&entry, sizeof(entry), &scan->envp[i]) || !entry)
		return 1; /* the end of envp */
	char head[sizeof(ld_library_path_key) - 1];
	if (bpf_probe_read_user(head, sizeof(head), entry))
		return 0;
#pragma unroll
	for (int k = 0; k < (int)sizeof(head); k++)
		if (head[k] != ld_library_path_key[k])
			return 0;
	scan->out->len = bpf_probe_read_user_str(scan->out->ld_library_path, TW_ENV_VALUE_LEN, entry + sizeof(head));
	scan->found = 1;
	return 1;
}

/* Stash LD_LIBRARY_PATH from the environment the program is exec'd with. */
static __always_inline void note_exec_env(const char *const *envp)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == tw_config.self_tgid || !envp)
		return;
	struct tw_exec_env env = {};
	struct env_scan scan = { .envp = envp, .out = &env, .found = 0 };
	bpf_loop(TW_MAX_ENV, env_step, &scan, 0);
	if (scan.found && env.len > 1)
		bpf_map_update_elem(&exec_env, &tgid, &env, BPF_ANY);
	else
		bpf_map_delete_elem(&exec_env, &tgid);
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tw_enter_execve(struct syscall_trace_enter *ctx)
{
	note_exec_env((const char *const *)ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int tw_enter_execveat(struct syscall_trace_enter *ctx)
{
	note_exec_env((const char *const *)ctx->args[3]);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int tw_process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!process_visible(pid_tgid >> 32))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0; /* other threads live on */
	struct tw_proc_exit_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(TW_CNT_DROP_RINGBUF_EVENTS, 1);
		return 0;
	}
	fill_header(&e->hdr, TW_EVENT_PROC_EXIT, pid_tgid);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	count(TW_CNT_EVENTS, 1);
	return 0;
}
