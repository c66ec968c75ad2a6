/* scale_c: one scale or latency measurement of the C face, in a process of its own.
 *
 * Run by bench/scale.py (`make -C ffi-c scale`), which starts the testserver and runs this once
 * per measurement: `scale_c --one CLIENT HTTP TASK N BASE SERVER_PID K=V...`. The tasks (`scale`,
 * `rate`, `broadcast`) and the records (schema 1, `REC\t{json}` lines on stdout) are those of
 * the Rust face's bench/src/bin/scale.rs; bench/README.md describes both.
 *
 * Clients: `ours-default` (reqwest; h2c with es_options_set_http2_prior_knowledge) and
 * `ours-lean`, with C callbacks (es_callbacks), which run on the library's runtime threads. There
 * is no C peer in this harness. The message callback reads CLOCK_MONOTONIC (the server's stamp
 * clock) first thing. */
#define _GNU_SOURCE
#include <eventsource.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STALL_MS 10000            /* without progress, a wait gives up */
#define STALL_FIRST_OPEN_MS 60000 /* for the first of N opens (as in scale.rs) */

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("scale_c: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ------------------------------------------------------------------------------------------ */
/* A count that a thread can wait for, woken by the increment that reaches the target. */

typedef struct counter {
    _Atomic uint64_t n, want;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} counter;

#define COUNTER_INIT {0, UINT64_MAX, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER}

static void counter_add(counter *c) {
    uint64_t n = atomic_fetch_add_explicit(&c->n, 1, memory_order_relaxed) + 1;
    if (n == atomic_load_explicit(&c->want, memory_order_relaxed)) {
        pthread_mutex_lock(&c->mu);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
}

static uint64_t counter_get(counter *c) { return atomic_load_explicit(&c->n, memory_order_relaxed); }

/* Until the count is at least `want`; false once it has not moved for `stall_ms`. */
static int counter_wait_progress(counter *c, uint64_t want, int stall_ms) {
    uint64_t last = counter_get(c), since = monotonic_ns();
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->want, want);
    while (counter_get(c) < want) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &until);
        uint64_t now = counter_get(c);
        if (now != last) {
            last = now;
            since = monotonic_ns();
        } else if (monotonic_ns() - since >= (uint64_t)stall_ms * 1000000u) {
            pthread_mutex_unlock(&c->mu);
            return 0;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return 1;
}

static counter OPENED = COUNTER_INIT, MESSAGES = COUNTER_INIT;
static _Atomic uint64_t ERRORS;
static char FIRST_ERROR[512];
static _Atomic int RECORD;

/* Each callback thread's latency samples (ns), uncontended: one buffer per thread. */
typedef struct samples {
    pthread_mutex_t mu;
    uint64_t *v;
    size_t len, cap;
    struct samples *next;
} samples;

static pthread_mutex_t BUFFERS_MU = PTHREAD_MUTEX_INITIALIZER;
static samples *BUFFERS;
static _Thread_local samples *MINE;

static void sample(uint64_t ns) {
    if (MINE == NULL) {
        MINE = calloc(1, sizeof *MINE);
        if (MINE == NULL) die("out of memory");
        pthread_mutex_init(&MINE->mu, NULL);
        pthread_mutex_lock(&BUFFERS_MU);
        MINE->next = BUFFERS;
        BUFFERS = MINE;
        pthread_mutex_unlock(&BUFFERS_MU);
    }
    pthread_mutex_lock(&MINE->mu);
    if (MINE->len == MINE->cap) {
        MINE->cap = MINE->cap ? MINE->cap * 2 : 4096;
        MINE->v = realloc(MINE->v, MINE->cap * sizeof *MINE->v);
        if (MINE->v == NULL) die("out of memory");
    }
    MINE->v[MINE->len++] = ns;
    pthread_mutex_unlock(&MINE->mu);
}

/* Every thread's samples, moved into one array (the buffers are emptied). */
static uint64_t *take_samples(size_t *len) {
    size_t total = 0, at = 0;
    pthread_mutex_lock(&BUFFERS_MU);
    for (samples *b = BUFFERS; b; b = b->next) {
        pthread_mutex_lock(&b->mu);
        total += b->len;
    }
    uint64_t *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL) die("out of memory");
    for (samples *b = BUFFERS; b; b = b->next) {
        memcpy(all + at, b->v, b->len * sizeof *all);
        at += b->len;
        b->len = 0;
        pthread_mutex_unlock(&b->mu);
    }
    pthread_mutex_unlock(&BUFFERS_MU);
    *len = total;
    return all;
}

static void on_open(void *ud, es_source *src) {
    (void)ud;
    (void)src;
    counter_add(&OPENED);
}

static void on_message(void *ud, es_source *src, const es_message *m) {
    (void)ud;
    (void)src;
    if (atomic_load_explicit(&RECORD, memory_order_relaxed)) {
        uint64_t now = monotonic_ns();
        /* data is {"seq":S,"t":T} */
        const char *d = m->data.ptr;
        size_t i = m->data.len;
        while (i > 0 && d[i - 1] != ':') i--;
        uint64_t t = 0;
        for (; i < m->data.len && d[i] >= '0' && d[i] <= '9'; i++) t = t * 10 + (uint64_t)(d[i] - '0');
        if (t) sample(now > t ? now - t : 0);
    }
    counter_add(&MESSAGES);
}

static void on_error(void *ud, es_source *src, const es_error *e) {
    (void)ud;
    (void)src;
    if (atomic_fetch_add(&ERRORS, 1) == 0) {
        int len = e->message.len < sizeof FIRST_ERROR - 1 ? (int)e->message.len : (int)sizeof FIRST_ERROR - 1;
        memcpy(FIRST_ERROR, e->message.ptr, (size_t)len);
        FIRST_ERROR[len] = 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Records: flat JSON objects. */

typedef struct record {
    char buf[8192];
    size_t len;
} record;

static void rec_raw(record *r, const char *name, const char *fmt, ...) {
    va_list ap;
    r->len += (size_t)snprintf(r->buf + r->len, sizeof r->buf - r->len, "%s\"%s\":", r->len > 1 ? "," : "", name);
    va_start(ap, fmt);
    r->len += (size_t)vsnprintf(r->buf + r->len, sizeof r->buf - r->len, fmt, ap);
    va_end(ap);
    if (r->len >= sizeof r->buf) die("record too long");
}

static void rec_text(record *r, const char *name, const char *s) {
    char esc[2048];
    size_t j = 0;
    for (; *s && j < sizeof esc - 8; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            esc[j++] = '\\';
            esc[j++] = (char)c;
        } else if (c < 0x20) {
            j += (size_t)snprintf(esc + j, sizeof esc - j, "\\u%04x", c);
        } else {
            esc[j++] = (char)c;
        }
    }
    esc[j] = 0;
    rec_raw(r, name, "\"%s\"", esc);
}

/* As scale.rs writes numbers: integers whole, others with up to 6 decimals. */
static void rec_num(record *r, const char *name, double v) {
    if (v != v || v - v != 0) {
        rec_raw(r, name, "null");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        rec_raw(r, name, "%.0f", v);
    } else {
        rec_raw(r, name, "%.6f", v);
        while (r->buf[r->len - 1] == '0') r->buf[--r->len] = 0;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The measurement. */

typedef struct one {
    const char *client, *http, *task, *base;
    int lean, h2, server_pid;
    uint64_t n;
    int nparams;
    char **params;
    char run[4096];
    char core_version[64], reqwest_version[64];
    es_options *opts;
    es_source **sources;
    size_t nsources, cap;
} one;

static uint64_t param(one *o, const char *name) {
    size_t len = strlen(name);
    for (int i = 0; i < o->nparams; i++)
        if (strncmp(o->params[i], name, len) == 0 && o->params[i][len] == '=')
            return strtoull(o->params[i] + len + 1, NULL, 10);
    die("--one needs %s=NUMBER", name);
    return 0;
}

static void open_source(one *o, const char *path) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", o->base, path);
    es_callbacks cbs = {0};
    cbs.on_open = on_open;
    cbs.on_message = on_message;
    cbs.on_error = on_error;
    es_source *src = NULL;
    if (es_source_new(url, o->opts, &cbs, &src) != ES_OK) die("es_source_new: %s", es_last_error_message());
    if (o->nsources == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 1024;
        o->sources = realloc(o->sources, o->cap * sizeof *o->sources);
        if (o->sources == NULL) die("out of memory");
    }
    o->sources[o->nsources++] = src;
}

static void record_ok(one *o, record *r, const char *metric, double value, const char *unit, int ok) {
    r->len = 0;
    r->buf[r->len++] = '{';
    rec_raw(r, "schema", "1");
    rec_text(r, "face", "c");
    rec_text(r, "client", "eventsource-core");
    rec_text(r, "client_version", o->core_version);
    rec_text(r, "transport", o->lean ? "lean" : "reqwest");
    rec_text(r, "transport_version", o->lean ? o->core_version : o->reqwest_version);
    rec_text(r, "key", o->client);
    rec_text(r, "http", o->http);
    rec_raw(r, "tls", "false");
    rec_text(r, "metric", metric);
    rec_num(r, "n", (double)o->n);
    rec_num(r, "value", value);
    rec_text(r, "unit", unit);
    rec_raw(r, "ok", ok ? "true" : "false");
}

static void record_start(one *o, record *r, const char *metric, double value, const char *unit) {
    record_ok(o, r, metric, value, unit, 1);
}

static void failed(one *o, record *r, const char *metric, const char *why) {
    record_ok(o, r, metric, 0.0 / 0.0, "", 0);
    rec_text(r, "error", why);
}

static void emit(one *o, record *r) {
    rec_text(r, "run", o->run);
    rec_num(r, "time", (double)time(NULL));
    rec_num(r, "errors", (double)atomic_load(&ERRORS));
    if (FIRST_ERROR[0]) rec_text(r, "first_error", FIRST_ERROR);
    if (r->len + 2 >= sizeof r->buf) die("record too long");
    r->buf[r->len++] = '}';
    r->buf[r->len] = 0;
    printf("REC\t%s\n", r->buf);
    fflush(stdout);
}

static double rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) v = strtod(line + 6, NULL);
    if (f) fclose(f);
    return v;
}

static int fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    int n = 0;
    while (dir && readdir(dir)) n++;
    if (dir) closedir(dir);
    return n;
}

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

/* Another process's CPU: the sum of its threads' schedstat run times. */
static double server_cpu_seconds(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *dir = opendir(path);
    unsigned long long ns = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char p[320];
        snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p, "r");
        unsigned long long v;
        if (f && fscanf(f, "%llu", &v) == 1) ns += v;
        if (f) fclose(f);
    }
    if (dir) closedir(dir);
    return (double)ns / 1e9;
}

/* One request to the testserver over a connection of its own; its answer (JSON) in `out`. */
static void control(const char *base, const char *method, const char *path, char *out, size_t cap) {
    char host[64], port[16];
    const char *hp = strstr(base, "//") ? strstr(base, "//") + 2 : base;
    const char *colon = strrchr(hp, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - hp), hp);
    snprintf(port, sizeof port, "%s", colon + 1);
    struct addrinfo hints = {0}, *ai;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0) die("control: cannot resolve %s", base);
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) die("control: connect: %s", strerror(errno));
    freeaddrinfo(ai);
    char req[512];
    int len = snprintf(req, sizeof req,
                       "%s %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                       method, path, host, port);
    if (write(fd, req, (size_t)len) != len) die("control: write");
    size_t at = 0;
    ssize_t got;
    while (at < cap - 1 && (got = read(fd, out + at, cap - 1 - at)) > 0) at += (size_t)got;
    out[at] = 0;
    close(fd);
    if (strncmp(out, "HTTP/1.1 200", 12) != 0) die("%s %s: %s", method, path, out);
}

/* The first number field of that name in a JSON text. */
static double json_num(const char *json, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(json, key);
    return at ? strtod(at + strlen(key), NULL) : 0.0 / 0.0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct latency {
    size_t samples;
    double p50, p99, p999, max, mean;
} latency;

/* Nearest-rank percentiles in µs of latencies in ns (sorts them). */
static latency latency_of(uint64_t *ns, size_t len) {
    qsort(ns, len, sizeof *ns, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < len; i++) sum += (double)ns[i];
    double q[] = {0.5, 0.99, 0.999, 1.0}, v[4];
    for (int i = 0; i < 4; i++) {
        size_t rank = (size_t)ceil(q[i] * (double)len);
        rank = rank < 1 ? 1 : rank > len ? len : rank;
        v[i] = len ? (double)ns[rank - 1] / 1e3 : 0.0 / 0.0;
    }
    return (latency){len, v[0], v[1], v[2], v[3], sum / (double)(len ? len : 1) / 1e3};
}

static void latency_fields(record *r, const latency *l) {
    rec_num(r, "samples", (double)l->samples);
    rec_num(r, "p50_us", l->p50);
    rec_num(r, "p99_us", l->p99);
    rec_num(r, "p999_us", l->p999);
    rec_num(r, "max_us", l->max);
    rec_num(r, "mean_us", l->mean);
}

/* A first source on the plain /stream, so that the runtime and the HTTP client exist before
 * the "before" figures are taken. */
static void warm_up(one *o) {
    open_source(o, "/stream?count=1&hold=1");
    if (!counter_wait_progress(&OPENED, 1, 20000) || !counter_wait_progress(&MESSAGES, 1, 20000))
        die("the warm-up source got no event");
    atomic_store(&OPENED.n, 0);
    atomic_store(&MESSAGES.n, 0);
}

/* Opens N load streams; seconds until every source saw its open, or -1. */
static double open_all(one *o) {
    uint64_t t0 = monotonic_ns();
    for (uint64_t i = 0; i < o->n; i++) open_source(o, "/load/stream");
    if (!counter_wait_progress(&OPENED, 1, STALL_FIRST_OPEN_MS) || !counter_wait_progress(&OPENED, o->n, STALL_MS))
        return -1;
    return (double)(monotonic_ns() - t0) / 1e9;
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void task_scale(one *o) {
    record r;
    char why[256], stats[4096], path[128];
    uint64_t n = o->n;
    double rss_before = rss_kib();
    int fds_before = fds();
    uint64_t errors_before = atomic_load(&ERRORS);
    double secs = open_all(o);
    if (secs < 0) {
        snprintf(why, sizeof why, "%llu of %llu sources opened", (unsigned long long)counter_get(&OPENED),
                 (unsigned long long)n);
        failed(o, &r, "open_ms", why);
        return emit(o, &r);
    }
    record_start(o, &r, "open_ms", secs * 1e3, "ms");
    rec_num(&r, "errors_while_opening", (double)(atomic_load(&ERRORS) - errors_before));
    emit(o, &r);

    sleep_ms(param(o, "settle_ms"));
    double rss_open = rss_kib();
    control(o->base, "GET", "/load/stats", stats, sizeof stats);
    double h1 = json_num(stats, "http1"), h2 = json_num(stats, "http2");
    record_start(o, &r, "connections", h1 + h2, "connections");
    rec_num(&r, "http1_connections", h1);
    rec_num(&r, "http2_connections", h2);
    rec_num(&r, "server_open_streams", json_num(stats, "open_streams"));
    emit(o, &r);

    /* Every source gets one event, then idles: the memory of a source that has seen traffic. */
    control(o->base, "POST", "/load/broadcast?n=1", stats, sizeof stats);
    if (!counter_wait_progress(&MESSAGES, n, STALL_MS)) {
        snprintf(why, sizeof why, "%llu of %llu sources got the first broadcast",
                 (unsigned long long)counter_get(&MESSAGES), (unsigned long long)n);
        failed(o, &r, "idle_kib_per_source", why);
        return emit(o, &r);
    }
    sleep_ms(param(o, "settle_ms"));
    double rss_idle = rss_kib();
    record_start(o, &r, "idle_kib_per_source", (rss_idle - rss_before) / (double)n, "KiB");
    rec_num(&r, "rss_before_kib", rss_before);
    rec_num(&r, "rss_open_kib", rss_open);
    rec_num(&r, "rss_idle_kib", rss_idle);
    rec_num(&r, "open_kib_per_source", (rss_open - rss_before) / (double)n);
    rec_num(&r, "fds_per_source", (double)(fds() - fds_before) / (double)n);
    emit(o, &r);

    /* Write-paced broadcasts: one event per write, as fast as every stream takes them. */
    uint64_t rounds = param(o, "rounds"), total = n * rounds;
    size_t len;
    atomic_store(&MESSAGES.n, 0);
    free(take_samples(&len));
    atomic_store(&RECORD, 1);
    double cpu0 = cpu_seconds(), server0 = server_cpu_seconds(o->server_pid);
    uint64_t t0 = monotonic_ns();
    snprintf(path, sizeof path, "/load/broadcast?n=%llu&paced=1", (unsigned long long)rounds);
    control(o->base, "POST", path, stats, sizeof stats);
    int done = counter_wait_progress(&MESSAGES, total, STALL_MS);
    secs = (double)(monotonic_ns() - t0) / 1e9;
    double cpu = cpu_seconds() - cpu0, server_cpu = server_cpu_seconds(o->server_pid) - server0;
    atomic_store(&RECORD, 0);
    if (!done) {
        snprintf(why, sizeof why, "%llu of %llu broadcast events arrived", (unsigned long long)counter_get(&MESSAGES),
                 (unsigned long long)total);
        failed(o, &r, "broadcast_events_per_s", why);
        return emit(o, &r);
    }
    uint64_t *ns = take_samples(&len);
    latency lat = latency_of(ns, len);
    free(ns);
    double per = 1e6 / (double)total;
    record_start(o, &r, "broadcast_events_per_s", (double)total / secs, "events/s");
    rec_num(&r, "events", (double)total);
    rec_num(&r, "rounds", (double)rounds);
    rec_num(&r, "secs", secs);
    rec_num(&r, "cpu_us_per_event", cpu * per);
    rec_num(&r, "server_cpu_us_per_event", server_cpu * per);
    latency_fields(&r, &lat);
    emit(o, &r);
    record_start(o, &r, "cpu_us_per_event", cpu * per, "us");
    rec_num(&r, "server_cpu_us_per_event", server_cpu * per);
    rec_num(&r, "events", (double)total);
    emit(o, &r);
}

static void task_rate(one *o) {
    record r;
    char why[256], path[128];
    uint64_t hz = param(o, "hz"), count = param(o, "count"), skip = param(o, "skip");
    atomic_store(&RECORD, 1);
    snprintf(path, sizeof path, "/load/rate?hz=%llu&count=%llu", (unsigned long long)hz, (unsigned long long)count);
    open_source(o, path);
    if (!counter_wait_progress(&MESSAGES, count, STALL_MS)) {
        snprintf(why, sizeof why, "%llu of %llu events arrived", (unsigned long long)counter_get(&MESSAGES),
                 (unsigned long long)count);
        failed(o, &r, "latency_rate_us", why);
        return emit(o, &r);
    }
    /* One source: its callbacks never run concurrently, and a source's events are handled
     * in order; the warm-up cut is by count, as in scale.rs. */
    size_t len;
    uint64_t *ns = take_samples(&len);
    size_t cut = skip < len ? (size_t)skip : len;
    latency lat = latency_of(ns + cut, len - cut);
    free(ns);
    record_start(o, &r, "latency_rate_us", lat.p99, "us");
    rec_num(&r, "hz", (double)hz);
    rec_num(&r, "events", (double)count);
    rec_num(&r, "skipped", (double)skip);
    latency_fields(&r, &lat);
    emit(o, &r);
}

static void task_broadcast(one *o) {
    record r;
    char why[256], path[128], answer[4096];
    uint64_t n = o->n, rounds = param(o, "rounds"), every_us = param(o, "every_us");
    if (open_all(o) < 0) {
        snprintf(why, sizeof why, "%llu of %llu sources opened", (unsigned long long)counter_get(&OPENED),
                 (unsigned long long)n);
        failed(o, &r, "latency_broadcast_us", why);
        return emit(o, &r);
    }
    control(o->base, "POST", "/load/broadcast?n=1", answer, sizeof answer);
    if (!counter_wait_progress(&MESSAGES, n, STALL_MS)) {
        failed(o, &r, "latency_broadcast_us", "the warm-up broadcast did not arrive");
        return emit(o, &r);
    }
    size_t len;
    atomic_store(&MESSAGES.n, 0);
    free(take_samples(&len));
    atomic_store(&RECORD, 1);
    snprintf(path, sizeof path, "/load/broadcast?n=%llu&every_us=%llu", (unsigned long long)rounds,
             (unsigned long long)every_us);
    control(o->base, "POST", path, answer, sizeof answer);
    if (!counter_wait_progress(&MESSAGES, n * rounds, STALL_MS)) {
        snprintf(why, sizeof why, "%llu of %llu events arrived", (unsigned long long)counter_get(&MESSAGES),
                 (unsigned long long)(n * rounds));
        failed(o, &r, "latency_broadcast_us", why);
        return emit(o, &r);
    }
    uint64_t *ns = take_samples(&len);
    latency lat = latency_of(ns, len);
    free(ns);
    record_start(o, &r, "latency_broadcast_us", lat.p99, "us");
    rec_num(&r, "rounds", (double)rounds);
    rec_num(&r, "every_us", (double)every_us);
    latency_fields(&r, &lat);
    emit(o, &r);
}

/* The version Cargo.lock resolved for `name` (`prefix` picks among several). */
static void cargo_lock_version(const char *lock, const char *name, const char *prefix, char *out, size_t cap) {
    snprintf(out, cap, "?");
    FILE *f = fopen(lock, "r");
    if (!f) return;
    char line[512], want_name[128], want_version[128];
    snprintf(want_name, sizeof want_name, "name = \"%s\"\n", name);
    snprintf(want_version, sizeof want_version, "version = \"%s", prefix);
    int hit = 0;
    while (fgets(line, sizeof line, f)) {
        if (hit && strncmp(line, want_version, strlen(want_version)) == 0) {
            char *q = strchr(line, '"') + 1;
            snprintf(out, cap, "%.*s", (int)(strchr(q, '"') - q), q);
            break;
        }
        hit = strcmp(line, want_name) == 0;
    }
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 9 || strcmp(argv[1], "--one") != 0) {
        fprintf(stderr, "usage: scale_c --one CLIENT HTTP TASK N BASE SERVER_PID K=V...\n");
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    one o = {0};
    o.client = argv[2];
    o.http = argv[3];
    o.task = argv[4];
    o.n = strtoull(argv[5], NULL, 10);
    o.base = argv[6];
    o.server_pid = atoi(argv[7]);
    o.params = argv + 8;
    o.nparams = argc - 8;
    o.h2 = strcmp(o.http, "2") == 0;
    if (strcmp(o.client, "ours-lean") == 0) o.lean = 1;
    else if (strcmp(o.client, "ours-default") != 0) die("unknown client %s", o.client);
    if (o.lean && o.h2) die("the lean transport is HTTP/1.1 only");
    size_t at = 0;
    char exe[PATH_MAX];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = 0;
    at += (size_t)snprintf(o.run, sizeof o.run, "%s", exe);
    for (int i = 1; i < argc && at < sizeof o.run; i++) at += (size_t)snprintf(o.run + at, sizeof o.run - at, " %s", argv[i]);
    /* The binary lives in target/ffi-c/: Cargo.lock is two levels up. */
    char lock[PATH_MAX + 32];
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(lock, sizeof lock, "%s/../../Cargo.lock", exe);
    snprintf(o.core_version, sizeof o.core_version, "%s", es_version());
    cargo_lock_version(lock, "reqwest", "0.13", o.reqwest_version, sizeof o.reqwest_version);

    o.opts = es_options_new();
    if (es_options_set_transport(o.opts, o.lean ? "lean" : "default") != ES_OK ||
        es_options_set_http2_prior_knowledge(o.opts, o.h2) != ES_OK)
        die("options: %s", es_last_error_message());
    warm_up(&o);
    if (strcmp(o.task, "scale") == 0) task_scale(&o);
    else if (strcmp(o.task, "rate") == 0) task_rate(&o);
    else if (strcmp(o.task, "broadcast") == 0) task_broadcast(&o);
    else die("unknown task %s", o.task);
    /* Exit without tearing down thousands of sources: the kernel closes the sockets. */
    fflush(stdout);
    _exit(0);
}
