// scale-load: closed-loop BEP 15 announce generator over a fixed population of
// TORRENTS swarms of PEERS peers each, for bench/scale.sh. The shared harness's
// udpload (../shared/bench/udpload.c, whose loop this follows) gives every
// announce a new peer, so its swarms grow with the run; here peer k of a swarm
// is always the same peer (port k + 1, a peer_id made from k, a seeder when k
// is odd), so a swarm holds exactly PEERS peers once filled and every measured
// announce refreshes a stored peer.
//   scale-load HOST PORT fill TORRENTS PEERS [WINDOW] [SOCKETS]
//     announces every (torrent, peer) once, in order, then prints the count
//   scale-load HOST PORT SECONDS TORRENTS PEERS [WINDOW] [SOCKETS]
//     announces random (torrent, peer) pairs for SECONDS, prints responses/s
// Answers ask for 50 peers. Info hashes are a fixed pseudo-random sequence.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec; }
static uint64_t rng = 88172645463325252ull;
static uint64_t xr(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static void put32(uint8_t *p, uint32_t v) { v = htonl(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v >> 32); put32(p + 4, (uint32_t)v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return ntohl(v); }

#define MAXS 64
int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: %s HOST PORT fill|SECONDS TORRENTS PEERS [WINDOW] [SOCKETS]\n", argv[0]); return 2; }
  const char *host = argv[1]; int port = atoi(argv[2]);
  int fill = strcmp(argv[3], "fill") == 0; double secs = fill ? 1e9 : atof(argv[3]);
  long torrents = atol(argv[4]); long peers = atol(argv[5]);
  int window = argc > 6 ? atoi(argv[6]) : 64; int nsock = argc > 7 ? atoi(argv[7]) : 4;
  if (torrents < 1 || peers < 1 || peers > 65535) { fprintf(stderr, "TORRENTS >= 1, PEERS in 1..65535\n"); return 2; }
  if (nsock < 1) nsock = 1;
  if (nsock > MAXS) nsock = MAXS;
  if (window < nsock) window = nsock;
  uint8_t (*hashes)[20] = malloc((size_t)torrents * 20);
  for (long i = 0; i < torrents; i++) for (int j = 0; j < 20; j++) hashes[i][j] = (uint8_t)xr();
  rng ^= (uint64_t)now_ns(); // the measured order differs run to run; the population does not
  int fds[MAXS]; uint64_t cid[MAXS]; struct pollfd pf[MAXS];
  struct sockaddr_in sa = {0}; sa.sin_family = AF_INET; sa.sin_port = htons(port); inet_pton(AF_INET, host, &sa.sin_addr);
  uint8_t buf[2048], req[98];
  for (int k = 0; k < nsock; k++) {
    fds[k] = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 4 << 20; setsockopt(fds[k], SOL_SOCKET, SO_RCVBUF, &big, sizeof big); setsockopt(fds[k], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (connect(fds[k], (struct sockaddr *)&sa, sizeof sa)) { perror("connect"); return 1; }
    pf[k].fd = fds[k]; pf[k].events = POLLIN;
    int ok = 0;
    for (int tries = 0; tries < 50 && !ok; tries++) {
      put64(req, 0x41727101980ull); put32(req + 8, 0); put32(req + 12, 0xabcdef);
      send(fds[k], req, 16, 0);
      struct pollfd p = {fds[k], POLLIN, 0};
      if (poll(&p, 1, 200) > 0) { ssize_t n = recv(fds[k], buf, sizeof buf, 0); if (n >= 16 && get32(buf) == 0 && get32(buf + 4) == 0xabcdef) { memcpy(&cid[k], buf + 8, 8); ok = 1; } }
    }
    if (!ok) { fprintf(stderr, "no connect response\n"); return 1; }
  }
  uint64_t *sent_at = calloc(window, 8); uint32_t *slot_tid = calloc(window, 4);
  long *slot_pair = calloc(window, sizeof(long));
  long total = torrents * peers, next = 0;
  uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9), last_connect = start;
  long done = 0, errors = 0, lost = 0, peers_seen = 0, outstanding = 0; uint32_t gen = 1;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= end || (fill && next >= total && outstanding == 0)) break;
    if (t - last_connect > 50000000000ull) { // refresh connection ids well inside their lifetime
      for (int k = 0; k < nsock; k++) { put64(req, 0x41727101980ull); put32(req + 8, 0); put32(req + 12, 0xfffffff0); send(fds[k], req, 16, 0); }
      last_connect = t;
    }
    for (int s = 0; s < window; s++) {
      long pair;
      if (slot_tid[s]) {
        if (t - sent_at[s] < 1000000000ull) continue;
        lost++; outstanding--;
        pair = slot_pair[s]; // a lost fill announce is sent again, so the fill stays complete
      } else if (fill) {
        if (next >= total) continue;
        pair = next++;
      } else {
        pair = (long)(xr() % (uint64_t)total);
      }
      long h = pair % torrents, p = pair / torrents;
      int k = s % nsock;
      uint32_t tid = ((gen++ & 0x7fff) << 16) | (uint32_t)s;
      memcpy(req, &cid[k], 8); put32(req + 8, 1); put32(req + 12, tid); memcpy(req + 16, hashes[h], 20);
      memcpy(req + 36, "-SC0001-", 8); for (int j = 0; j < 12; j++) req[44 + j] = (uint8_t)('0' + (p >> (j * 2) & 3) + (j & 1) * 4);
      put64(req + 56, 0); put64(req + 64, (p & 1) ? 0 : 1000); put64(req + 72, 0);
      put32(req + 80, 0); put32(req + 84, 0); put32(req + 88, (uint32_t)p); put32(req + 92, 50);
      req[96] = (uint8_t)((p + 1) >> 8); req[97] = (uint8_t)(p + 1);
      send(fds[k], req, 98, 0); slot_tid[s] = tid; sent_at[s] = t; slot_pair[s] = pair; outstanding++;
    }
    if (poll(pf, nsock, 10) <= 0) continue;
    for (int k = 0; k < nsock; k++) {
      if (!(pf[k].revents & POLLIN)) continue;
      for (;;) {
        ssize_t n = recv(fds[k], buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0) break;
        if (n < 8) { errors++; continue; }
        uint32_t action = get32(buf), tid = get32(buf + 4);
        if (action == 0) { if (n >= 16) memcpy(&cid[k], buf + 8, 8); continue; }
        uint32_t s = tid & 0xffff;
        if (s >= (uint32_t)window || slot_tid[s] != tid) continue;
        if (action == 3) errors++;
        else { done++; if (n >= 20) peers_seen += (n - 20) / 6; }
        slot_tid[s] = 0; outstanding--;
      }
    }
  }
  double el = (now_ns() - start) / 1e9;
  printf("responses=%ld errors=%ld lost=%ld seconds=%.2f rps=%.0f peers_per_resp=%.1f\n", done, errors, lost, el, done / el, done ? (double)peers_seen / done : 0);
  return 0;
}
