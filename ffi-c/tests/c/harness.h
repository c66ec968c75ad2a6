/* Tiny test harness for the C tests of libeventsource: a testserver child process, a minimal
 * HTTP GET for its /log endpoint, percent-encoding, and CHECK macros that count results.
 * Header-only (static functions) so each test program is a single translation unit. */
#ifndef ES_TEST_HARNESS_H
#define ES_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int h_passed, h_failed, h_test_failed;
static const char *h_current = "";
static int h_port;
static char h_base[64];
static pid_t h_server_pid = -1;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "  FAIL %s:%d [%s]: %s\n", __FILE__, __LINE__, h_current, #cond); \
            h_test_failed = 1;                                                                 \
        }                                                                                      \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                     \
    do {                                                                                       \
        long long h_a = (long long)(a), h_b = (long long)(b);                                  \
        if (h_a != h_b) {                                                                      \
            fprintf(stderr, "  FAIL %s:%d [%s]: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, \
                    h_current, #a, #b, h_a, h_b);                                              \
            h_test_failed = 1;                                                                 \
        }                                                                                      \
    } while (0)

#define CHECK_STR(esstr, lit) CHECK(h_str_eq((esstr), (lit), sizeof(lit) - 1))

/* ES_TEST_ONLY=substring runs only the tests whose name contains it. */
#define RUN(fn)                                                                                \
    do {                                                                                       \
        const char *h_only = getenv("ES_TEST_ONLY");                                           \
        if (h_only && !strstr(#fn, h_only)) break;                                             \
        h_current = #fn;                                                                       \
        h_test_failed = 0;                                                                     \
        double h_t0 = h_now_ms();                                                              \
        fn();                                                                                  \
        if (h_test_failed) {                                                                   \
            h_failed++;                                                                        \
            fprintf(stderr, "not ok %s\n", #fn);                                               \
        } else {                                                                               \
            h_passed++;                                                                        \
            fprintf(stderr, "ok %s (%.0f ms)\n", #fn, h_now_ms() - h_t0);                      \
        }                                                                                      \
    } while (0)

static double h_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void h_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Scales waits for slow runs (valgrind): ES_TEST_SLOW=N multiplies timeouts. */
static int h_slow(void) {
    const char *s = getenv("ES_TEST_SLOW");
    int n = s ? atoi(s) : 1;
    return n > 0 ? n : 1;
}

/* The calling thread's kernel id (for h_thread_sleeping). */
static long h_gettid(void) {
    return (long)syscall(SYS_gettid);
}

/* 1 when thread `tid` of this process is asleep in the kernel (state S or D in its stat line),
 * e.g. waiting on a futex inside a blocking call; 0 when running, runnable or unknown. */
static int h_thread_sleeping(long tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')'); /* the command name may contain spaces */
    return paren && paren[1] == ' ' && (paren[2] == 'S' || paren[2] == 'D');
}

/* The transport the tests' sources use: ES_TEST_TRANSPORT=default (the default) or lean, so the
 * same suite runs over both HTTP clients. Anything else stops the run. */
static const char *h_transport(void) {
    const char *t = getenv("ES_TEST_TRANSPORT");
    if (!t || !*t) return "default";
    if (strcmp(t, "default") != 0 && strcmp(t, "lean") != 0) {
        fprintf(stderr, "ES_TEST_TRANSPORT must be default or lean, not %s\n", t);
        exit(99);
    }
    return t;
}

/* Starts `testserver --port 0 --exit-on-eof` (path in $ES_TESTSERVER); its stdin is a pipe we
 * keep open, so it exits with us even if we crash. */
static void h_start_server(void) {
    const char *path = getenv("ES_TESTSERVER");
    if (!path) path = "target/debug/testserver";
    int in[2], out[2];
    if (pipe(in) || pipe(out)) {
        perror("pipe");
        exit(99);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(99);
    }
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execl(path, path, "--port", "0", "--exit-on-eof", (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
        _exit(98);
    }
    close(in[0]);
    close(out[1]);
    /* in[1] stays open (not CLOEXEC-critical: sources do not fork). */
    char line[256];
    size_t n = 0;
    while (n + 1 < sizeof line) {
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0) break;
        if (line[n] == '\n') break;
        n++;
    }
    line[n] = 0;
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon) {
        fprintf(stderr, "testserver did not start (%s): got %s\n", path, line);
        exit(99);
    }
    h_port = atoi(colon + 1);
    snprintf(h_base, sizeof h_base, "http://127.0.0.1:%d", h_port);
    h_server_pid = pid;
    close(out[0]);
}

static void h_stop_server(void) {
    if (h_server_pid > 0) {
        kill(h_server_pid, SIGTERM);
        waitpid(h_server_pid, NULL, 0);
        h_server_pid = -1;
    }
}

/* Percent-encodes `s` into a new malloc'd string. */
static char *h_pct(const char *s) {
    size_t n = strlen(s);
    char *o = (char *)malloc(n * 3 + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.')
            *p++ = (char)c;
        else
            p += sprintf(p, "%%%02X", c);
    }
    *p = 0;
    return o;
}

/* A unique token per call, for /script and /log. */
static const char *h_token(void) {
    static char buf[64];
    static int n;
    snprintf(buf, sizeof buf, "c%ld_%d", (long)getpid(), ++n);
    return buf;
}

/* GET base+path over HTTP/1.0; returns the malloc'd body (or NULL). */
static char *h_http_get(const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)h_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    char req[1024];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)len) != len) {
        close(fd);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = (char *)malloc(cap);
    for (;;) {
        if (n + 1024 > cap) buf = (char *)realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    char *res = strdup(body ? body + 4 : "");
    free(buf);
    return res;
}

static int h_str_eq(es_str s, const char *lit, size_t len) {
    return s.len == len && (len == 0 || memcmp(s.ptr, lit, len) == 0);
}

static int h_summary(void) {
    printf("%d passed, %d failed\n", h_passed, h_failed);
    fflush(stdout);
    return h_failed ? 1 : 0;
}

#endif
