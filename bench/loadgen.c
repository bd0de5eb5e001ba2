/*
 * loadgen: a small epoll load generator for the netservices benchmarks.
 *
 * It talks to an echo server on the loopback network only and checks every
 * byte that comes back.  Every run is bounded in time: a warm-up, a measured
 * window, and a stall limit that ends the run with an error if the server
 * stops answering.
 *
 *   loadgen pingpong -p PORT [-c CONNS] [-s SIZE] [-w WARMUP] [-d SECONDS]
 *       CONNS connections each send SIZE bytes (default 64), wait for the
 *       whole echo, compare it, and send the next message.
 *   loadgen stream -p PORT [-c CONNS] [-s CHUNK] [-i INFLIGHT] ...
 *       Each connection writes CHUNK-byte pieces (default 64 KiB) of a
 *       position-dependent pattern while reading the echo back, keeping at
 *       most INFLIGHT bytes unanswered (default 2 MiB).
 *   loadgen udp -p PORT [-W WINDOW] [-s SIZE] ...
 *       Keeps WINDOW datagrams (default 32) of SIZE bytes in flight; each
 *       carries a sequence number and a pattern derived from it.  Datagrams
 *       unanswered for 200 ms are counted lost and replaced.
 *   loadgen hold -p PORT -c CONNS [-d SECONDS]
 *       Opens CONNS connections, each sends one byte and waits for its echo;
 *       then prints "ready" and holds them open until standard input closes
 *       or SECONDS pass.
 *
 * Output: "measuring" when the measured window starts, then one line of
 * JSON with the counts, the window's length and this process's CPU time in
 * the window.  Exit status 0 on success, 1 on a verification error or a
 * stall, 2 on a usage error.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 1024
#define STALL_SECONDS 5.0
#define PATTERN_PERIOD 1048573u /* prime, so chunk boundaries drift */
#define UDP_LOSS_MS 200

struct options {
    const char *mode;
    const char *host;
    int port;
    int conns;
    int size;
    int window;
    long inflight;
    double warmup;
    double duration;
};

struct conn {
    int fd;
    int id;
    int connected;
    uint64_t seq;         /* pingpong: message number; stream: bytes sent */
    uint64_t received;    /* bytes of the current message, or stream total */
    int wantWrite;
};

static unsigned char *pattern; /* PATTERN_PERIOD + max chunk bytes */
static size_t patternSize;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpuSeconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(const char *message) {
    fprintf(stderr, "loadgen: %s\n", message);
    printf("{\"error\": \"%s\"}\n", message);
    fflush(stdout);
    exit(1);
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* The expected content of byte i of message (id, seq). */
static void fillMessage(unsigned char *buf, int size, int id, uint64_t seq) {
    uint64_t state = mix(((uint64_t)id << 40) ^ seq ^ 0x9e3779b97f4a7c15ULL);
    for (int i = 0; i < size; i++) {
        if (i % 8 == 0) state = mix(state + i);
        buf[i] = (unsigned char)(state >> (8 * (i % 8)));
    }
}

static void makePattern(size_t extra) {
    patternSize = PATTERN_PERIOD + extra;
    pattern = malloc(patternSize);
    if (!pattern) die("malloc");
    uint64_t state = 862;
    for (size_t i = 0; i < patternSize; i++) {
        if (i % 8 == 0) state = mix(state + (i % PATTERN_PERIOD));
        pattern[i] = (unsigned char)(state >> (8 * (i % 8)));
    }
    /* Make the pattern periodic: pattern[i] == pattern[i % PERIOD]. */
    memcpy(pattern + PATTERN_PERIOD, pattern, extra);
}

static struct sockaddr_in loopbackAddress(const struct options *o) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)o->port);
    if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) fail("host must be an IPv4 address");
    if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127) fail("only loopback (127.0.0.0/8) targets are allowed");
    return sa;
}

static void raiseFileLimit(int needed) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) die("getrlimit");
    rlim_t want = (rlim_t)needed + 64;
    if (rl.rlim_cur >= want) return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die("setrlimit");
    if (rl.rlim_cur < want) fail("RLIMIT_NOFILE hard limit is too low for that many connections");
}

static int tcpSocket(const struct sockaddr_in *sa) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

static void watch(int ep, struct conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl add");
}

static void rewatch(int ep, struct conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) die("epoll_ctl mod");
}

static int checkConnected(struct conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        errno = err;
        return 0;
    }
    c->connected = 1;
    return 1;
}

/* The window: warm-up first, then the measured part. */
struct window {
    double start, warmupEnd, end, lastProgress;
    int measuring;
    double cpuAtStart, wallAtStart;
    uint64_t ops, bytes;
};

static void windowInit(struct window *w, const struct options *o) {
    memset(w, 0, sizeof *w);
    w->start = now();
    w->warmupEnd = w->start + o->warmup;
    w->end = w->warmupEnd + o->duration;
    w->lastProgress = w->start;
}

/* Returns 0 when the run is over. */
static int windowTick(struct window *w) {
    double t = now();
    if (!w->measuring && t >= w->warmupEnd) {
        w->measuring = 1;
        w->ops = w->bytes = 0;
        w->cpuAtStart = cpuSeconds();
        w->wallAtStart = t;
        printf("measuring\n");
        fflush(stdout);
    }
    if (t - w->lastProgress > STALL_SECONDS) fail("stalled: no echo for 5 seconds");
    return t < w->end;
}

static void report(const struct options *o, struct window *w, uint64_t errors, uint64_t lost) {
    double wall = now() - w->wallAtStart;
    double cpu = cpuSeconds() - w->cpuAtStart;
    printf("{\"mode\": \"%s\", \"conns\": %d, \"size\": %d, \"ops\": %llu, \"bytes\": %llu, "
           "\"seconds\": %.6f, \"cpu\": %.6f, \"errors\": %llu, \"lost\": %llu}\n",
           o->mode, o->conns, o->size, (unsigned long long)w->ops, (unsigned long long)w->bytes, wall,
           cpu, (unsigned long long)errors, (unsigned long long)lost);
    fflush(stdout);
}

static struct conn *openConns(const struct options *o, int ep, uint32_t events) {
    struct sockaddr_in sa = loopbackAddress(o);
    struct conn *conns = calloc((size_t)o->conns, sizeof *conns);
    if (!conns) die("calloc");
    for (int i = 0; i < o->conns; i++) {
        conns[i].fd = tcpSocket(&sa);
        conns[i].id = i;
        watch(ep, &conns[i], events);
    }
    return conns;
}

static int runPingpong(const struct options *o) {
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    raiseFileLimit(o->conns);
    struct conn *conns = openConns(o, ep, EPOLLOUT);
    unsigned char *expect = malloc((size_t)o->size), *buf = malloc((size_t)o->size);
    if (!expect || !buf) die("malloc");
    struct epoll_event events[MAX_EVENTS];
    struct window w;
    windowInit(&w, o);
    while (windowTick(&w)) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c->connected) {
                if (!checkConnected(c)) die("connect");
                fillMessage(buf, o->size, c->id, c->seq);
                if (send(c->fd, buf, (size_t)o->size, 0) != o->size) die("send");
                rewatch(ep, c, EPOLLIN);
                continue;
            }
            ssize_t r = recv(c->fd, buf + c->received, (size_t)o->size - c->received, 0);
            if (r == 0) fail("the server closed a connection");
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("recv");
            }
            fillMessage(expect, o->size, c->id, c->seq);
            if (memcmp(buf + c->received, expect + c->received, (size_t)r) != 0)
                fail("echoed bytes differ from the bytes sent");
            c->received += (uint64_t)r;
            if (c->received < (uint64_t)o->size) continue;
            c->received = 0;
            c->seq++;
            w.ops++;
            w.bytes += (uint64_t)o->size;
            w.lastProgress = now();
            fillMessage(buf, o->size, c->id, c->seq);
            /* A 64-byte message always fits an empty socket buffer. */
            if (send(c->fd, buf, (size_t)o->size, 0) != o->size) die("send");
        }
    }
    report(o, &w, 0, 0);
    for (int i = 0; i < o->conns; i++) close(conns[i].fd);
    return 0;
}

static int runStream(const struct options *o) {
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    raiseFileLimit(o->conns);
    size_t bufSize = 256 * 1024;
    makePattern(bufSize > (size_t)o->size ? bufSize : (size_t)o->size);
    struct conn *conns = openConns(o, ep, EPOLLIN | EPOLLOUT);
    unsigned char *buf = malloc(bufSize);
    if (!buf) die("malloc");
    struct epoll_event events[MAX_EVENTS];
    struct window w;
    windowInit(&w, o);
    for (int i = 0; i < o->conns; i++) conns[i].wantWrite = 1;
    while (windowTick(&w)) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c->connected && !checkConnected(c)) die("connect");
            if (events[i].events & EPOLLIN) {
                ssize_t r = recv(c->fd, buf, bufSize, 0);
                if (r == 0) fail("the server closed a connection");
                if (r < 0 && errno != EAGAIN && errno != EINTR) die("recv");
                if (r > 0) {
                    if (c->received + (uint64_t)r > c->seq) fail("received more than was sent");
                    if (memcmp(buf, pattern + c->received % PATTERN_PERIOD, (size_t)r) != 0)
                        fail("echoed bytes differ from the bytes sent");
                    c->received += (uint64_t)r;
                    w.bytes += (uint64_t)r;
                    w.ops++;
                    w.lastProgress = now();
                }
            }
            if (c->wantWrite && (events[i].events & EPOLLOUT)) {
                ssize_t s = send(c->fd, pattern + c->seq % PATTERN_PERIOD, (size_t)o->size, 0);
                if (s < 0 && errno != EAGAIN && errno != EINTR) die("send");
                if (s > 0) c->seq += (uint64_t)s;
            }
            int want = (long)(c->seq - c->received) < o->inflight;
            if (want != c->wantWrite) {
                c->wantWrite = want;
                rewatch(ep, c, EPOLLIN | (want ? EPOLLOUT : 0));
            }
        }
    }
    report(o, &w, 0, 0);
    return 0;
}

#define UDP_BATCH 64

/* Keeps o->window datagrams in flight, sending and receiving them in
 * batches (sendmmsg, recvmmsg) so that the generator spends as little as
 * possible per datagram. */
static int runUdp(const struct options *o) {
    struct sockaddr_in sa = loopbackAddress(o);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) die("connect");
    size_t size = (size_t)o->size;
    unsigned char *out = malloc(UDP_BATCH * size), *in = malloc(UDP_BATCH * 65536UL);
    unsigned char *expect = malloc(size);
    if (!out || !in || !expect) die("malloc");
    struct mmsghdr outMsgs[UDP_BATCH], inMsgs[UDP_BATCH];
    struct iovec outIov[UDP_BATCH], inIov[UDP_BATCH];
    memset(outMsgs, 0, sizeof outMsgs);
    memset(inMsgs, 0, sizeof inMsgs);
    for (int i = 0; i < UDP_BATCH; i++) {
        outIov[i].iov_base = out + i * size;
        outIov[i].iov_len = size;
        outMsgs[i].msg_hdr.msg_iov = &outIov[i];
        outMsgs[i].msg_hdr.msg_iovlen = 1;
        inIov[i].iov_base = in + i * 65536UL;
        inIov[i].iov_len = 65536;
        inMsgs[i].msg_hdr.msg_iov = &inIov[i];
        inMsgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t next = 0, outstanding = 0, lost = 0;
    double lastReceive = now();
    struct window w;
    windowInit(&w, o);
    while (windowTick(&w)) {
        int want = o->window - (int)outstanding;
        if (want > UDP_BATCH) want = UDP_BATCH;
        if (want > 0) {
            for (int i = 0; i < want; i++) {
                uint64_t seq = next + (uint64_t)i;
                fillMessage(out + i * size, o->size, 0, seq);
                memcpy(out + i * size, &seq, 8);
            }
            int sent = sendmmsg(fd, outMsgs, (unsigned)want, 0);
            if (sent < 0) {
                if (errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED && errno != EINTR)
                    die("sendmmsg");
                sent = 0;
            }
            next += (uint64_t)sent;
            outstanding += (uint64_t)sent;
        }
        int got = recvmmsg(fd, inMsgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) {
            if (got < 0 && errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) die("recvmmsg");
            fd_set readable;
            FD_ZERO(&readable);
            FD_SET(fd, &readable);
            struct timeval tv = {0, 20000};
            select(fd + 1, &readable, NULL, NULL, &tv);
            if (now() - lastReceive > UDP_LOSS_MS / 1000.0 && outstanding) {
                lost += outstanding;
                outstanding = 0;
                lastReceive = now();
            }
            continue;
        }
        for (int i = 0; i < got; i++) {
            unsigned char *buf = in + i * 65536UL;
            uint64_t seq;
            if (inMsgs[i].msg_len != size) fail("an echoed datagram has the wrong size");
            memcpy(&seq, buf, 8);
            if (seq >= next) fail("an echoed datagram carries a sequence number never sent");
            fillMessage(expect, o->size, 0, seq);
            memcpy(expect, &seq, 8);
            if (memcmp(buf, expect, size) != 0) fail("echoed bytes differ from the bytes sent");
            if (outstanding) outstanding--;
            w.ops++;
            w.bytes += size;
        }
        lastReceive = w.lastProgress = now();
    }
    report(o, &w, 0, lost);
    return 0;
}

static int runHold(const struct options *o) {
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    raiseFileLimit(o->conns);
    struct sockaddr_in sa = loopbackAddress(o);
    struct conn *conns = calloc((size_t)o->conns, sizeof *conns);
    if (!conns) die("calloc");
    struct epoll_event events[MAX_EVENTS];
    double deadline = now() + o->duration;
    int opened = 0, pending = 0, ready = 0;
    double lastProgress = now();
    /* Connect in batches so the listen queue never overflows. */
    while (ready < o->conns) {
        while (opened < o->conns && pending < 256) {
            conns[opened].fd = tcpSocket(&sa);
            conns[opened].id = opened;
            watch(ep, &conns[opened], EPOLLOUT);
            opened++;
            pending++;
        }
        if (now() > deadline) fail("timed out opening connections");
        if (now() - lastProgress > STALL_SECONDS) fail("stalled: no echo for 5 seconds");
        int n = epoll_wait(ep, events, MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c->connected) {
                if (!checkConnected(c)) die("connect");
                if (send(c->fd, "x", 1, 0) != 1) die("send");
                rewatch(ep, c, EPOLLIN);
                continue;
            }
            char byte;
            ssize_t r = recv(c->fd, &byte, 1, 0);
            if (r == 0) fail("the server closed a connection");
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                die("recv");
            }
            if (byte != 'x') fail("echoed bytes differ from the bytes sent");
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            pending--;
            ready++;
            lastProgress = now();
        }
    }
    printf("ready %d\n", ready);
    fflush(stdout);
    /* Hold until stdin closes or the deadline passes. */
    fcntl(0, F_SETFL, O_NONBLOCK);
    while (now() < deadline) {
        char sink[64];
        ssize_t r = read(0, sink, sizeof sink);
        if (r == 0) break;
        fd_set in;
        FD_ZERO(&in);
        FD_SET(0, &in);
        struct timeval tv = {0, 100000};
        select(1, &in, NULL, NULL, &tv);
    }
    for (int i = 0; i < opened; i++) close(conns[i].fd);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen pingpong|stream|udp|hold -p PORT [-H 127.0.0.1] [-c CONNS] [-s SIZE]\n"
            "               [-W WINDOW] [-i INFLIGHT] [-w WARMUP] [-d SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    struct options o = {.mode = argv[1], .host = "127.0.0.1", .port = 0, .conns = 1, .size = -1,
                        .window = 32, .inflight = 2L << 20, .warmup = 0.5, .duration = 2.0};
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "H:p:c:s:W:i:w:d:")) != -1) {
        switch (opt) {
        case 'H': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'c': o.conns = atoi(optarg); break;
        case 's': o.size = atoi(optarg); break;
        case 'W': o.window = atoi(optarg); break;
        case 'i': o.inflight = atol(optarg); break;
        case 'w': o.warmup = atof(optarg); break;
        case 'd': o.duration = atof(optarg); break;
        default: usage();
        }
    }
    if (o.port <= 0 || o.port > 65535 || o.conns < 1 || o.conns > 100000 || o.duration <= 0 ||
        o.duration > 600 || o.warmup < 0 || o.warmup > 60 || o.window < 1 || o.window > 4096)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(o.mode, "pingpong")) {
        if (o.size < 0) o.size = 64;
        if (o.size < 1 || o.size > 65536) usage();
        return runPingpong(&o);
    }
    if (!strcmp(o.mode, "stream")) {
        if (o.size < 0) o.size = 65536;
        if (o.size < 1 || o.size > 1 << 20) usage();
        return runStream(&o);
    }
    if (!strcmp(o.mode, "udp")) {
        if (o.size < 0) o.size = 64;
        if (o.size < 8 || o.size > 65507) usage();
        return runUdp(&o);
    }
    if (!strcmp(o.mode, "hold")) return runHold(&o);
    usage();
    return 2;
}
