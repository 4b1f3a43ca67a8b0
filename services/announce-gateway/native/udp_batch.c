// Batched UDP system calls for the gateway's UDP tracker (docs/udp-batch.md):
// recvmmsg(2) and sendmmsg(2) on a socket of its own, so one system call and
// one call into JavaScript carry up to BATCH datagrams instead of one each.
//
// Node-API only (no libuv or V8 headers): it builds from the npm package
// node-api-headers and the Debian compiler, with no download.
//
// Threads: the event loop cannot watch this socket without libuv, so a
// waiter thread does it. It poll(2)s the socket while "armed"; when a datagram
// is waiting it disarms itself and wakes JavaScript through one thread-safe
// function call. JavaScript then reads batches with recv() (non-blocking),
// answers them with send() and arms the waiter again. The thread never touches
// the datagrams: every read and write happens on the JavaScript thread.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
// A datagram of any size fits (as with node:dgram); pages are touched only as datagrams fill them.
#define SLOT 65536
// Per datagram in the meta array: data offset, length, address offset, family (4|6), port.
#define META 5

typedef struct {
  int fd;
  int wake_fd;
  int v6;
  int closed;
  int thread_started;
  int hooked;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int armed;
  int closing;
  napi_threadsafe_function tsfn;
  napi_env env;
  unsigned char *slots;
  struct mmsghdr rmsgs[BATCH];
  struct iovec riov[BATCH];
  struct sockaddr_in6 raddr[BATCH];
  struct mmsghdr smsgs[BATCH];
  struct iovec siov[BATCH];
  struct sockaddr_in6 saddr[BATCH];
} udp_t;

#define CHECK(call)                                                                    \
  do {                                                                                 \
    if ((call) != napi_ok) {                                                           \
      napi_throw_error(env, NULL, "udp_batch: Node-API call failed: " #call);          \
      return NULL;                                                                     \
    }                                                                                  \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  const char *name = strerrorname_np(err);
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name != NULL ? name : "EIO", msg);
  return NULL;
}

// Stops the waiter thread and closes the socket; safe to call twice, and from
// the environment's cleanup (a worker thread that is terminated).
static void shut(udp_t *u) {
  if (u->closed) return;
  u->closed = 1;
  if (u->thread_started) {
    pthread_mutex_lock(&u->mu);
    u->closing = 1;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
    uint64_t one = 1;
    ssize_t ignored = write(u->wake_fd, &one, sizeof one);
    (void)ignored;
    pthread_join(u->thread, NULL);
    u->thread_started = 0;
    napi_release_threadsafe_function(u->tsfn, napi_tsfn_release);
  }
  close(u->fd);
  close(u->wake_fd);
}

static void cleanup_hook(void *arg) {
  udp_t *u = arg;
  u->hooked = 0;
  shut(u);
}

// Environment cleanup hooks run newest first: (re-)adding this one after the
// thread-safe function exists makes it stop the waiter thread before the
// thread-safe function is torn down (a worker thread that is terminated).
static void hook(napi_env env, udp_t *u) {
  if (u->hooked) napi_remove_env_cleanup_hook(env, cleanup_hook, u);
  u->hooked = napi_add_env_cleanup_hook(env, cleanup_hook, u) == napi_ok;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  udp_t *u = data;
  shut(u);
  if (u->hooked) napi_remove_env_cleanup_hook(env, cleanup_hook, u);
  pthread_mutex_destroy(&u->mu);
  pthread_cond_destroy(&u->cv);
  free(u->slots);
  free(u);
}

static void *waiter(void *arg) {
  udp_t *u = arg;
  for (;;) {
    pthread_mutex_lock(&u->mu);
    while (!u->armed && !u->closing) pthread_cond_wait(&u->cv, &u->mu);
    int closing = u->closing;
    pthread_mutex_unlock(&u->mu);
    if (closing) break;
    struct pollfd p[2] = {{u->fd, POLLIN, 0}, {u->wake_fd, POLLIN, 0}};
    int r = poll(p, 2, -1);
    if (r < 0 && errno != EINTR) break;
    if (p[1].revents) break;
    if (r > 0 && p[0].revents) {
      pthread_mutex_lock(&u->mu);
      u->armed = 0;
      pthread_mutex_unlock(&u->mu);
      if (napi_call_threadsafe_function(u->tsfn, NULL, napi_tsfn_nonblocking) != napi_ok) break;
    }
  }
  return NULL;
}

static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  (void)data;
  if (env == NULL || fn == NULL) return;
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  napi_call_function(env, undefined, fn, 0, NULL, NULL);
}

static udp_t *unwrap(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "udp_batch: not a socket handle");
    return NULL;
  }
  udp_t *u = data;
  if (u->closed) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "udp_batch: socket is closed");
    return NULL;
  }
  return u;
}

// open(host, port, reusePort, recvBufferBytes) -> handle. host is an IP literal.
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[64];
  size_t hl = 0;
  uint32_t port = 0, reuse = 0;
  int32_t rcvbuf = 0;
  bool b = false;
  CHECK(napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hl));
  CHECK(napi_get_value_uint32(env, argv[1], &port));
  CHECK(napi_get_value_bool(env, argv[2], &b));
  reuse = b;
  CHECK(napi_get_value_int32(env, argv[3], &rcvbuf));

  struct sockaddr_in6 a6;
  struct sockaddr_in a4;
  memset(&a6, 0, sizeof a6);
  memset(&a4, 0, sizeof a4);
  int v6;
  if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
    v6 = 0;
    a4.sin_family = AF_INET;
    a4.sin_port = htons((uint16_t)port);
  } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
    v6 = 1;
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons((uint16_t)port);
  } else {
    napi_throw_error(env, "EINVAL", "udp_batch: host is not an IP address");
    return NULL;
  }
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1, zero = 0;
  if (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt IPV6_V6ONLY", e);
  }
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt SO_REUSEPORT", e);
  }
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt SO_RCVBUF", e);
  }
  int r = v6 ? bind(fd, (struct sockaddr *)&a6, sizeof a6) : bind(fd, (struct sockaddr *)&a4, sizeof a4);
  if (r < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind", e);
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "eventfd", e);
  }
  udp_t *u = calloc(1, sizeof *u);
  unsigned char *slots = malloc((size_t)BATCH * SLOT);
  if (u == NULL || slots == NULL) {
    free(u);
    free(slots);
    close(fd);
    close(wake);
    return throw_errno(env, "malloc", ENOMEM);
  }
  u->fd = fd;
  u->wake_fd = wake;
  u->v6 = v6;
  u->env = env;
  u->slots = slots;
  pthread_mutex_init(&u->mu, NULL);
  pthread_cond_init(&u->cv, NULL);
  for (int i = 0; i < BATCH; i++) {
    u->riov[i].iov_base = slots + (size_t)i * SLOT;
    u->riov[i].iov_len = SLOT;
    u->rmsgs[i].msg_hdr.msg_iov = &u->riov[i];
    u->rmsgs[i].msg_hdr.msg_iovlen = 1;
    u->rmsgs[i].msg_hdr.msg_name = &u->raddr[i];
    u->smsgs[i].msg_hdr.msg_iov = &u->siov[i];
    u->smsgs[i].msg_hdr.msg_iovlen = 1;
    u->smsgs[i].msg_hdr.msg_name = &u->saddr[i];
  }
  napi_value handle;
  if (napi_create_external(env, u, finalize, NULL, &handle) != napi_ok) {
    shut(u);
    free(slots);
    free(u);
    napi_throw_error(env, NULL, "udp_batch: napi_create_external failed");
    return NULL;
  }
  hook(env, u);
  return handle;
}

// start(handle, onReadable): the waiter thread calls onReadable() once per arm.
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  if (u->thread_started) {
    napi_throw_error(env, NULL, "udp_batch: already started");
    return NULL;
  }
  CHECK(napi_create_string_utf8(env, "udp_batch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, call_js,
                                        &u->tsfn));
  u->armed = 1;
  if (pthread_create(&u->thread, NULL, waiter, u) != 0) {
    int e = errno;
    napi_release_threadsafe_function(u->tsfn, napi_tsfn_release);
    return throw_errno(env, "pthread_create", e);
  }
  u->thread_started = 1;
  hook(env, u);
  return NULL;
}

// arm(handle): wake JavaScript again when a datagram is waiting.
static napi_value js_arm(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  pthread_mutex_lock(&u->mu);
  u->armed = 1;
  pthread_cond_signal(&u->cv);
  pthread_mutex_unlock(&u->mu);
  return NULL;
}

// Whether the waiter thread keeps the process alive (as a dgram socket's ref/unref).
static napi_value js_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool ref = true;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ref));
  if (u->thread_started) {
    if (ref)
      CHECK(napi_ref_threadsafe_function(env, u->tsfn));
    else
      CHECK(napi_unref_threadsafe_function(env, u->tsfn));
  }
  return NULL;
}

// recv(handle, meta: Uint32Array) -> Buffer | undefined. Reads up to BATCH
// datagrams without blocking into one new Buffer: the datagrams, then their
// source addresses (4 bytes for IPv4 and IPv4-mapped IPv6, else 16). meta[0]
// is the count; datagram i is at meta[1 + META*i ...]: data offset, length,
// address offset, family, port. A new Buffer per batch: decoded requests keep
// views of their datagram (node:dgram gives each datagram its own Buffer).
static napi_value js_recv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  napi_typedarray_type type;
  size_t mlen;
  void *mdata;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &mlen, &mdata, NULL, NULL));
  if (type != napi_uint32_array || mlen < 1 + META * BATCH) {
    napi_throw_type_error(env, NULL, "udp_batch: meta must be a Uint32Array of 1 + 5 * 64");
    return NULL;
  }
  uint32_t *meta = mdata;
  for (int i = 0; i < BATCH; i++) {
    u->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
    u->rmsgs[i].msg_hdr.msg_flags = 0;
    u->rmsgs[i].msg_hdr.msg_control = NULL;
    u->rmsgs[i].msg_hdr.msg_controllen = 0;
  }
  int n;
  do n = recvmmsg(u->fd, u->rmsgs, BATCH, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    meta[0] = 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return NULL;
    return throw_errno(env, "recvmmsg", errno);
  }
  size_t total = 0;
  for (int i = 0; i < n; i++) total += u->rmsgs[i].msg_len + 16;
  napi_value out;
  void *dst;
  CHECK(napi_create_buffer(env, total > 0 ? total : 1, &dst, &out));
  unsigned char *d = dst;
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    uint32_t len = u->rmsgs[i].msg_len;
    memcpy(d + off, u->riov[i].iov_base, len);
    uint32_t *m = meta + 1 + META * i;
    m[0] = (uint32_t)off;
    m[1] = len;
    off += len;
    struct sockaddr *sa = (struct sockaddr *)&u->raddr[i];
    m[2] = (uint32_t)off;
    if (sa->sa_family == AF_INET) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
      memcpy(d + off, &s4->sin_addr, 4);
      off += 4;
      m[3] = 4;
      m[4] = ntohs(s4->sin_port);
    } else {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
      if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
        memcpy(d + off, s6->sin6_addr.s6_addr + 12, 4);
        off += 4;
        m[3] = 4;
      } else {
        memcpy(d + off, s6->sin6_addr.s6_addr, 16);
        off += 16;
        m[3] = 6;
      }
      m[4] = ntohs(s6->sin6_port);
    }
  }
  meta[0] = (uint32_t)n;
  return out;
}

// send(handle, buf, meta: Uint32Array, count) -> datagrams sent. Datagram i is
// described as recv() describes one (data offset, length, address offset,
// family, port) at meta[1 + META*i]. A datagram the kernel refuses is skipped
// (counted by the caller as not sent); a full send queue (EAGAIN) drops the
// rest of the batch.
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  void *bdata;
  size_t blen;
  CHECK(napi_get_buffer_info(env, argv[1], &bdata, &blen));
  napi_typedarray_type type;
  size_t mlen;
  void *mdata;
  CHECK(napi_get_typedarray_info(env, argv[2], &type, &mlen, &mdata, NULL, NULL));
  uint32_t count;
  CHECK(napi_get_value_uint32(env, argv[3], &count));
  if (type != napi_uint32_array || (size_t)count * META + 1 > mlen) {
    napi_throw_type_error(env, NULL, "udp_batch: meta too short for count");
    return NULL;
  }
  const uint32_t *meta = (const uint32_t *)mdata + 1;
  unsigned char *b = bdata;
  uint32_t sent = 0, next = 0;
  while (next < count) {
    uint32_t k = 0;
    for (; k < BATCH && next + k < count; k++) {
      const uint32_t *m = meta + META * (next + k);
      uint32_t addr_len = m[3] == 4 ? 4 : 16;
      if ((size_t)m[0] + m[1] > blen || (size_t)m[2] + addr_len > blen) {
        napi_throw_range_error(env, NULL, "udp_batch: datagram outside the buffer");
        return NULL;
      }
      struct sockaddr_in6 *s6 = &u->saddr[k];
      memset(s6, 0, sizeof *s6);
      socklen_t sl;
      if (!u->v6) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)s6;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)m[4]);
        memcpy(&s4->sin_addr, b + m[2], 4);
        sl = sizeof(struct sockaddr_in);
      } else {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)m[4]);
        if (m[3] == 4) {
          s6->sin6_addr.s6_addr[10] = 0xff;
          s6->sin6_addr.s6_addr[11] = 0xff;
          memcpy(s6->sin6_addr.s6_addr + 12, b + m[2], 4);
        } else {
          memcpy(s6->sin6_addr.s6_addr, b + m[2], 16);
        }
        sl = sizeof(struct sockaddr_in6);
      }
      u->smsgs[k].msg_hdr.msg_namelen = sl;
      u->siov[k].iov_base = b + m[0];
      u->siov[k].iov_len = m[1];
    }
    int r;
    do r = sendmmsg(u->fd, u->smsgs, k, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
      next += 1;  // this datagram is refused (an address the kernel will not send to): skip it
      continue;
    }
    sent += (uint32_t)r;
    next += (uint32_t)r;
  }
  CHECK(napi_create_uint32(env, sent, &result));
  return result;
}

static napi_value js_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  struct sockaddr_in6 a;
  socklen_t l = sizeof a;
  if (getsockname(u->fd, (struct sockaddr *)&a, &l) < 0) return throw_errno(env, "getsockname", errno);
  CHECK(napi_create_uint32(env, ntohs(a.sin6_port), &result));  // sin_port sits at the same offset
  return result;
}

static napi_value js_recv_buffer_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  udp_t *u = unwrap(env, argv[0]);
  if (u == NULL) return NULL;
  int v = 0;
  socklen_t l = sizeof v;
  if (getsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &v, &l) < 0) return throw_errno(env, "getsockopt", errno);
  CHECK(napi_create_int32(env, v, &result));
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_external(env, argv[0], &data));
  if (data != NULL) shut((udp_t *)data);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"arm", NULL, js_arm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recv", NULL, js_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"port", NULL, js_port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvBufferSize", NULL, js_recv_buffer_size, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_value batch;
  if (napi_create_uint32(env, BATCH, &batch) != napi_ok) return NULL;
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "BATCH", batch) != napi_ok) return NULL;
  return exports;
}
