/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The whole contract between tapwire's BPF program and its loader: every record that
 * crosses the ring buffer, every map key and value user space reads or writes, and the
 * numbers inside them. Enums have explicit values that only ever grow.
 *
 * User space reads these layouts from the compiled object's BTF (scripts/gen-layout.ts
 * writes src/bpf/gen/layout.ts at build time), so a field moved here moves there too.
 */
#ifndef TAPWIRE_H
#define TAPWIRE_H

/* Payload bytes copied per data event; a longer syscall buffer becomes several events. */
#define TW_CHUNK_SIZE 16384
/* Upper bound on the events one syscall may produce (TW_CHUNK_SIZE each): 4 MiB. */
#define TW_MAX_CHUNKS 256
/* iovec entries followed per readv/writev/sendmsg/recvmsg; bytes beyond are counted, not copied. */
#define TW_MAX_IOV 64
/* Syscalls of a connection of unknown kind that are looked at before giving up on it. */
#define TW_MAX_CLASSIFY_ATTEMPTS 1024
#define TW_COMM_LEN 16
#define TW_PATH_LEN 256

/* Ring buffer record kinds. The first field of every record. */
enum tw_event_kind {
	TW_EVENT_CONN_OPEN = 1,	 /* a connection tapwire will report on: endpoints and process */
	TW_EVENT_DATA = 2,	 /* bytes read or written on a reported connection */
	TW_EVENT_CONN_CLOSE = 3, /* a reported connection was closed */
	TW_EVENT_PROC_EXEC = 4,	 /* a process called exec */
	TW_EVENT_PROC_EXIT = 5,	 /* the last thread of a process exited */
	TW_EVENT_LIB_OPEN = 6,	 /* a process opened a file that may be a TLS library */
	TW_EVENT_TLS_SECRET = 7, /* a TLS secret a Go program derived (tapwire keylog) */
};

/* Which way the bytes went, seen from the traced process. */
enum tw_direction {
	TW_DIR_EGRESS = 0,  /* the process sent them (write, send...) */
	TW_DIR_INGRESS = 1, /* the process received them (read, recv...) */
};

/* How tapwire first learned of a connection. */
enum tw_origin {
	TW_ORIGIN_FOUND = 0,   /* first seen in a read/write: opened before tapwire, or unseen */
	TW_ORIGIN_ACCEPT = 1,  /* accept/accept4 returned it: the traced process is the server */
	TW_ORIGIN_CONNECT = 2, /* connect on it succeeded: the traced process is the client */
	TW_ORIGIN_SSL_NEW = 3, /* its SSL object was made while traced (socket unknown): whole stream, side unknown */
};

/* What the first bytes of a connection look like (classified in the kernel).
 * PROTOCOL_LIST: a new protocol adds a value here and a case in classify() in tapwire.bpf.c. */
enum tw_class {
	TW_CLASS_UNKNOWN = 0, /* not decided yet */
	TW_CLASS_HTTP1 = 1,
	TW_CLASS_HTTP2 = 2,   /* the HTTP/2 client preface */
	TW_CLASS_TLS = 3,     /* TLS records: ciphertext is not sent */
	TW_CLASS_OTHER = 4,   /* something else: nothing more is sent */
	TW_CLASS_IGNORED = 5, /* excluded by a filter */
	TW_CLASS_WEBSOCKET = 6, /* WebSocket frames: a connection joined after its upgrade */
	TW_CLASS_REDIS = 7,   /* a Redis command (RESP array of bulk strings) */
};

/* Where the bytes of a data event came from. */
enum tw_source {
	TW_SOURCE_SYSCALL = 0,
	TW_SOURCE_OPENSSL = 1, /* plaintext at SSL_read/SSL_write(_ex) */
	TW_SOURCE_GO = 2,      /* plaintext at Go's crypto/tls.(*Conn).Read/Write */
};

/* The OpenSSL function a uprobe is on: bits 16..23 of its attach cookie. The low 16 bits
 * are the id user space gave the library file (reported as tls_lib). */
enum tw_ssl_fn {
	TW_SSL_READ = 0,
	TW_SSL_WRITE = 1,
	TW_SSL_READ_EX = 2,
	TW_SSL_WRITE_EX = 3,
	TW_SSL_HANDSHAKE = 4, /* SSL_do_handshake, SSL_connect, SSL_accept: only to learn the socket */
	TW_SSL_FREE = 5,      /* SSL_free: the SSL object (and its address) is done with */
	TW_SSL_NEW = 6,	      /* SSL_new: an SSL object whose every byte will be seen */
	TW_GO_WRITE = 7,      /* entry of crypto/tls.(*Conn).Write */
	TW_GO_READ = 8,	      /* entry of crypto/tls.(*Conn).Read */
	TW_GO_RET = 9,	      /* a RET of crypto/tls.(*Conn).Read or Write */
	TW_NSS_IMPORT = 10,   /* NSS's SSL_ImportFD: its result's methods table is the SSL layer's */
	TW_NSS_WRITEV = 11,   /* NSPR's PR_Writev on an NSS SSL socket: plaintext in PRIOVecs */
	TW_NSS_RECV = 12,     /* NSPR's PR_Recv: a read, unless its flags say PR_MSG_PEEK */
};

/* Bit 24 of a Go entry probe's cookie: the probe sits past the function's stack check, where
 * each call passes once (no restart after the stack grows): Write then needs no RET probes.
 * (1 << 24, written out for scripts/gen-layout.ts.) */
#define TW_COOKIE_ONCE 16777216

/* Bit 25 of an NSPR probe's cookie (PR_Read, PR_Write, PR_Recv, PR_Send, PR_Close): the call
 * counts only on an NSS SSL socket — a PRFileDesc whose methods table is the one SSL_ImportFD
 * returned in this process; every other NSPR file and socket is left alone. (1 << 25.) */
#define TW_COOKIE_NSS 33554432

/* NSPR's PR_MSG_PEEK flag of PR_Recv (prio.h). */
#define TW_PR_MSG_PEEK 2

/* What the Go probes need of one Go binary (the `go_bins` map, keyed by its library id):
 * link-time addresses, and the struct offsets from a *tls.Conn to its socket's fd. */
struct tw_go_config {
	__u64 tcp_conn_itab; /* itab of (net.Conn, *net.TCPConn); 0: unknown, fd never read */
	__u64 read_vaddr;    /* crypto/tls.(*Conn).Read */
	__u64 write_vaddr;   /* crypto/tls.(*Conn).Write */
	__u32 tls_conn_conn; /* tls.Conn.conn */
	__u32 tcp_conn_fd;   /* net.TCPConn.conn.fd */
	__u32 netfd_sysfd;   /* netFD.pfd.Sysfd */
	__u32 reserved;
};

/* Data event flags. */
enum tw_data_flags {
	TW_DATA_SENDFILE = 1, /* `skipped` bytes were sent by sendfile: their content is not known */
};

/* Counters, one slot each in the per-CPU `counters` array. Drops are any bytes or events
 * the kernel side had to give up; the rest are for statistics. */
enum tw_counter {
	TW_CNT_EVENTS = 0,		/* records submitted to the ring buffer */
	TW_CNT_DATA_BYTES = 1,		/* payload bytes submitted */
	TW_CNT_DROP_RINGBUF_EVENTS = 2, /* records lost: ring buffer full */
	TW_CNT_DROP_RINGBUF_BYTES = 3,	/* payload bytes in those records */
	TW_CNT_DROP_CHUNK_LIMIT_BYTES = 4, /* bytes past TW_MAX_CHUNKS in one syscall */
	TW_CNT_DROP_IOV_LIMIT_BYTES = 5,   /* bytes past TW_MAX_IOV iovec entries */
	TW_CNT_DROP_READ_FAULT_BYTES = 6,  /* user memory that could not be read */
	TW_CNT_DROP_CONN_MAP_FULL = 7,	   /* connections not tracked: map full */
	TW_CNT_SKIPPED_OTHER_BYTES = 8,	   /* bytes of connections that are not HTTP */
	TW_CNT_SKIPPED_TLS_BYTES = 9,	   /* ciphertext bytes not sent */
	TW_CNT_SENDFILE_BYTES = 10,	   /* bytes sent with sendfile, reported as skipped */
	TW_CNT_CONNS_OPENED = 11,	   /* connections reported (CONN_OPEN events) */
	TW_CNT_SSL_NO_SOCKET_CALLS = 12,   /* SSL calls on a connection whose socket is unknown */
	TW_CNT_SSL_NOT_TCP_BYTES = 13,	   /* plaintext of SSL over something other than TCP */
	TW_CNT_UPROBE_HITS = 14,	   /* runs of the TLS uprobe programs (what the traced programs pay) */
	TW_CNT_MAX = 15,
};

/* Settings that can change while running: one entry in the `settings` array map. */
struct tw_settings {
	__u32 filter_pids;  /* 1: only processes in the `filter_pids` map */
	__u32 filter_comms; /* 1: only processes whose comm is in `filter_comms` */
	__u32 filter_ports; /* 1: only connections with a local or remote port in `filter_ports` */
	__u32 chunk_limit;  /* events per syscall, at most TW_MAX_CHUNKS */
	__u32 filter_cgroups; /* 1: only processes in (or below) a cgroup of `filter_cgroups` */
	__u32 reserved;
};

/* Key of the `conns` map: a socket fd of a process. */
struct tw_conn_key {
	__u32 tgid;
	__u32 fd;
};

/* Every record starts with this. */
struct tw_event_header {
	__u32 kind; /* enum tw_event_kind */
	__u32 pid;  /* thread group id */
	__u32 tid;
	__u32 reserved;
	__u64 ts_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
};

struct tw_conn_open_event {
	struct tw_event_header hdr;
	__u64 conn_id;
	__u16 family; /* AF_INET or AF_INET6; 0: the socket is not known (no endpoints) */
	__u16 local_port;
	__u16 remote_port;
	__u8 origin; /* enum tw_origin */
	__u8 class;  /* enum tw_class */
	__u8 local_addr[16];  /* IPv4: first 4 bytes */
	__u8 remote_addr[16];
	char comm[TW_COMM_LEN];
	__u32 fd;      /* (__u32)-1 when the socket is not known */
	__u32 tls_lib; /* the TLS library's id (see enum tw_ssl_fn), 0 for plaintext */
	__u64 cgroup_id; /* the process's cgroup (v2): names its container */
};

/* Followed in the record by `len` payload bytes. */
struct tw_data_event {
	struct tw_event_header hdr;
	__u64 conn_id;
	__u64 pos;     /* stream position, in this direction, of the first byte */
	__u64 peer_pos; /* the other direction's position when this event was made: what it had
			 * moved by then (user space tells a lost request from one still to come) */
	__u32 len;     /* payload bytes after this struct */
	__u32 skipped; /* bytes after the payload (at pos + len) that were not copied */
	__u8 direction; /* enum tw_direction */
	__u8 source;    /* enum tw_source */
	__u8 flags;     /* enum tw_data_flags */
	__u8 reserved[5];
};

struct tw_conn_close_event {
	struct tw_event_header hdr;
	__u64 conn_id;
	__u64 egress_bytes; /* final stream positions */
	__u64 ingress_bytes;
};

struct tw_proc_exec_event {
	struct tw_event_header hdr;
	__u32 ppid;
	__u32 reserved;
	__u64 cgroup_id; /* the process's cgroup (v2) */
	char comm[TW_COMM_LEN];
	char filename[TW_PATH_LEN]; /* as passed to exec, NUL-terminated */
};

struct tw_lib_open_event {
	struct tw_event_header hdr;
	__s32 fd; /* what openat returned */
	__u32 reserved;
	char path[TW_PATH_LEN]; /* as passed to openat, NUL-terminated */
};

struct tw_proc_exit_event {
	struct tw_event_header hdr;
	char comm[TW_COMM_LEN];
};

/* Sizes of a TLS secret event's fields: labels are at most 31 bytes
 * ("CLIENT_HANDSHAKE_TRAFFIC_SECRET"), client randoms 32, secrets 48 (SHA-384 suites). */
#define TW_SECRET_LABEL_LEN 64
#define TW_SECRET_RANDOM_LEN 32
#define TW_SECRET_LEN 64

/* crypto/tls.(*Config).writeKeyLog(label string, clientRandom, secret []byte), at entry. */
struct tw_tls_secret_event {
	struct tw_event_header hdr;
	__u32 label_len; /* as passed: longer than the field means cut */
	__u32 random_len;
	__u32 secret_len;
	__u32 reserved;
	char label[TW_SECRET_LABEL_LEN];
	__u8 client_random[TW_SECRET_RANDOM_LEN];
	__u8 secret[TW_SECRET_LEN];
};

/* The LD_LIBRARY_PATH a program is exec'd with (the `exec_env` map, by tgid): the loader
 * searches it first, so user space follows it when it looks ahead at the libraries of an
 * exec it holds. Written at execve entry (where the new environment is), gone when the next
 * exec of the process has none. */
#define TW_ENV_VALUE_LEN 256
struct tw_exec_env {
	__s32 len; /* what bpf_probe_read_user_str returned: bytes with the NUL, or < 0 */
	__u32 reserved;
	char ld_library_path[TW_ENV_VALUE_LEN];
};

/* One end of a TCP connection, as the `self_listeners` map keys tapwire's own listening
 * sockets (written by user space: a local process connecting to one is tapwire's client,
 * and its side of the connection is not traced). IPv4 addresses fill the first 4 bytes; an
 * IPv4-mapped IPv6 address is written as IPv4; all zeros is any address. */
struct tw_endpoint {
	__u16 family; /* AF_INET or AF_INET6 */
	__u16 port;
	__u32 reserved;
	__u8 addr[16];
};

/* Settings fixed at load time (a `const volatile` global, set between open and load). */
struct tw_config {
	__u32 self_tgid; /* tapwire itself: never traced */
	__u32 reserved;
};

#endif /* TAPWIRE_H */
