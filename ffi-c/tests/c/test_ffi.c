#define _GNU_SOURCE 1 /* clock_gettime, strdup, kill under -std=c11 */
/* C tests of libeventsource against the real testserver (started by the harness).
 * Built with -std=c11 -Wall -Wextra -Werror, linked against the shared and the static library,
 * and run plain, under valgrind memcheck and under -fsanitize=address,undefined (ffi-c/Makefile).
 * Prints "N passed, N failed" last. */
#include "eventsource.h"

#include "harness.h"

#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>

/* Valgrind's client requests (header-only; no-ops when not running under valgrind). */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define THREAD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define THREAD_SANITIZED 1
#endif
#endif
#ifndef THREAD_SANITIZED
#define THREAD_SANITIZED 0
#endif
#if defined(__SANITIZE_ADDRESS__) || THREAD_SANITIZED
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_COUNT_ERRORS 0
#endif

/* ---------------------------------------------------------------------------------------- */
/* A recorder: every callback appends a line; waiters block on a condition variable.        */

#define MAXLOG 64
typedef struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char log[MAXLOG][192];
    int n;
    int opens, messages, errors, closed;
    int frees;
    int close_on_msg; /* es_source_close from inside the Nth message callback */
    int free_on_msg;  /* es_source_free from inside the Nth message callback */
    atomic_int after_close, violations, in_cb;
    double t_error, t_reopen;
    int in_cb_state_ok;
} rec;

static void rec_init(rec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->in_cb_state_ok = 1;
}

static void rec_destroy(rec *r) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void rec_add(rec *r, const char *line) {
    if (r->n < MAXLOG) snprintf(r->log[r->n++], sizeof r->log[0], "%s", line);
    pthread_cond_broadcast(&r->cv);
}

/* Appends an es_str to dst with NUL shown as \0. */
static void cat_str(char *dst, size_t cap, es_str s) {
    size_t n = strlen(dst);
    for (size_t i = 0; i < s.len && n + 3 < cap; i++) {
        if (s.ptr[i] == 0) {
            dst[n++] = '\\';
            dst[n++] = '0';
        } else {
            dst[n++] = s.ptr[i];
        }
    }
    dst[n] = 0;
}

static void on_open(void *ud, es_source *src) {
    rec *r = (rec *)ud;
    if (atomic_load(&r->after_close)) atomic_fetch_add(&r->violations, 1);
    pthread_mutex_lock(&r->mu);
    if (es_source_ready_state(src) != ES_OPEN) r->in_cb_state_ok = 0;
    r->opens++;
    if (r->opens == 2) r->t_reopen = h_now_ms();
    rec_add(r, "open");
    pthread_mutex_unlock(&r->mu);
}

static void on_message(void *ud, es_source *src, const es_message *m) {
    rec *r = (rec *)ud;
    atomic_fetch_add(&r->in_cb, 1);
    if (atomic_load(&r->after_close)) atomic_fetch_add(&r->violations, 1);
    char line[192] = "message|";
    cat_str(line, sizeof line, m->type);
    strcat(line, "|");
    cat_str(line, sizeof line, m->data);
    strcat(line, "|");
    cat_str(line, sizeof line, m->last_event_id);
    pthread_mutex_lock(&r->mu);
    r->messages++;
    int n = r->messages;
    if (r->n == 0 || r->messages <= 8) rec_add(r, line);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->close_on_msg && n == r->close_on_msg) {
        CHECK_EQ_INT(es_source_close(src), ES_OK);
        CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    }
    if (r->free_on_msg && n == r->free_on_msg) es_source_free(src);
    atomic_fetch_sub(&r->in_cb, 1);
}

static void on_error(void *ud, es_source *src, const es_error *e) {
    rec *r = (rec *)ud;
    (void)src;
    if (atomic_load(&r->after_close)) atomic_fetch_add(&r->violations, 1);
    char line[192];
    snprintf(line, sizeof line, "error|%u|%s|%u", (unsigned)e->ready_state, es_error_kind_str(e->kind),
             (unsigned)e->status);
    pthread_mutex_lock(&r->mu);
    r->errors++;
    if (e->message.len == 0) r->in_cb_state_ok = 0;
    if (r->errors == 1) r->t_error = h_now_ms();
    if (e->ready_state == ES_CLOSED) r->closed = 1;
    rec_add(r, line);
    pthread_mutex_unlock(&r->mu);
}

static void on_free(void *ud) {
    rec *r = (rec *)ud;
    pthread_mutex_lock(&r->mu);
    r->frees++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static es_callbacks callbacks_for(rec *r) {
    es_callbacks cbs;
    memset(&cbs, 0, sizeof cbs);
    cbs.user_data = r;
    cbs.on_open = on_open;
    cbs.on_message = on_message;
    cbs.on_error = on_error;
    cbs.on_free = on_free;
    return cbs;
}

/* Waits until *field >= value (under the recorder's lock), at most ms * ES_TEST_SLOW. */
static int wait_for(rec *r, const int *field, int value, int ms) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    long long ns = dl.tv_nsec + (long long)ms * h_slow() * 1000000LL;
    dl.tv_sec += (time_t)(ns / 1000000000LL);
    dl.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (*field < value && rc == 0) rc = pthread_cond_timedwait(&r->cv, &r->mu, &dl);
    int ok = *field >= value;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static int log_is(rec *r, int i, const char *want) {
    pthread_mutex_lock(&r->mu);
    int ok = i < r->n && strcmp(r->log[i], want) == 0;
    if (!ok) fprintf(stderr, "  log[%d] = %s, want %s\n", i, i < r->n ? r->log[i] : "(none)", want);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

/* "/script?t=TOKEN&c1=<body1>[&c2=<body2>]<extra>" */
static char *script_url(const char *token, const char *c1, const char *c2, const char *extra) {
    char *e1 = h_pct(c1), *e2 = c2 ? h_pct(c2) : NULL;
    size_t n = strlen(h_base) + strlen(e1) + (e2 ? strlen(e2) : 0) + strlen(extra) + 128;
    char *u = (char *)malloc(n);
    snprintf(u, n, "%s/script?t=%s&c1=%s%s%s%s", h_base, token, e1, e2 ? "&c2=" : "", e2 ? e2 : "", extra);
    free(e1);
    free(e2);
    return u;
}

/* The options every test source starts from: the transport named by ES_TEST_TRANSPORT. */
static es_options *base_opts(void) {
    es_options *o = es_options_new();
    if (es_options_set_transport(o, h_transport()) != ES_OK) {
        fprintf(stderr, "es_options_set_transport: %s\n", es_last_error_message());
        exit(99);
    }
    return o;
}

static es_options *fast_opts(void) {
    es_options *o = base_opts();
    es_options_set_retry_ms(o, 50);
    return o;
}

/* es_source_new with base_opts(). */
static es_status new_source(const char *url, const es_callbacks *cbs, es_source **out) {
    es_options *o = base_opts();
    es_status st = es_source_new(url, o, cbs, out);
    es_options_free(o);
    return st;
}

/* ---------------------------------------------------------------------------------------- */

static void test_version_and_names(void) {
    CHECK(strcmp(es_version(), "0.1.0") == 0 || strlen(es_version()) > 0);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", ES_VERSION_MAJOR, ES_VERSION_MINOR, ES_VERSION_PATCH);
    CHECK(strcmp(es_version(), want) == 0);
    CHECK_EQ_INT(ES_VERSION_NUMBER, ES_VERSION_MAJOR * 10000 + ES_VERSION_MINOR * 100 + ES_VERSION_PATCH);
    CHECK_EQ_INT(es_abi_version(), ES_ABI_VERSION);
    CHECK(strcmp(es_status_str(ES_ERR_TIMEOUT), "ES_ERR_TIMEOUT") == 0);
    CHECK(strcmp(es_status_str(12345), "ES_UNKNOWN") == 0);
    CHECK(strcmp(es_error_kind_str(ES_ERROR_KIND_HTTP_STATUS), "http_status") == 0);
    CHECK_EQ_INT(ES_OK, 0);
    CHECK_EQ_INT(ES_CONNECTING, 0);
    CHECK_EQ_INT(ES_OPEN, 1);
    CHECK_EQ_INT(ES_CLOSED, 2);
}

static void test_null_and_invalid_arguments(void) {
    es_source *src = (es_source *)0x1; /* must stay untouched on failure */
    CHECK_EQ_INT(es_source_new(NULL, NULL, NULL, &src), ES_ERR_INVALID_ARGUMENT);
    CHECK(strstr(es_last_error_message(), "url") != NULL);
    CHECK_EQ_INT(es_source_new(h_base, NULL, NULL, NULL), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_source_new("not a url", NULL, NULL, &src), ES_ERR_INVALID_URL);
    CHECK(strlen(es_last_error_message()) > 0);
    CHECK_EQ_INT(es_source_new("http://\xff\xfe/", NULL, NULL, &src), ES_ERR_INVALID_URL);
    CHECK(strstr(es_last_error_message(), "UTF-8") != NULL);
    CHECK(src == (es_source *)0x1);

    es_options *o = es_options_new();
    CHECK(o != NULL);
    CHECK_EQ_INT(es_options_set_header(o, "X-Bad", "\xc3\x28"), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(es_options_set_header(o, NULL, "v"), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_header(NULL, "a", "v"), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_backoff(o, 0.5), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(es_options_set_body(o, NULL, 3), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_header(o, "Bad Name", "v"), ES_OK);
    CHECK_EQ_INT(es_source_new(h_base, o, NULL, &src), ES_ERR_INVALID_OPTION);
    CHECK(strstr(es_last_error_message(), "Bad Name") != NULL);
    CHECK_EQ_INT(es_options_clear_headers(o), ES_OK);
    CHECK_EQ_INT(es_options_set_last_event_id(o, "a\nb"), ES_OK);
    CHECK_EQ_INT(es_source_new(h_base, o, NULL, &src), ES_ERR_INVALID_OPTION);
    CHECK(src == (es_source *)0x1);
    es_options_free(o);

    CHECK_EQ_INT(es_source_close(NULL), ES_ERR_INVALID_ARGUMENT);
    es_event ev = {0};
    CHECK_EQ_INT(es_source_next(NULL, &ev, 0), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_source_fd(NULL), -1);
    CHECK_EQ_INT(es_source_ready_state(NULL), ES_CLOSED);
    CHECK(es_source_url(NULL) == NULL);
    CHECK(!es_source_with_credentials(NULL));
    es_source_free(NULL);
    es_options_free(NULL);
    es_event_clear(NULL);
    es_event_clear(&ev);
}

/* open, message, named event with id, NUL in data, reconnect, then a fatal 204. */
static void test_callbacks_open_message_error(void) {
    rec r;
    rec_init(&r);
    es_callbacks cbs = callbacks_for(&r);
    const char *t = h_token();
    char *url = script_url(t, "data: a\n\nevent: update\ndata: b\nid: 7\n\ndata: x\0", NULL, "");
    /* h_pct stops at the NUL above; add the NUL event explicitly. */
    free(url);
    char *e1 = h_pct("data: a\n\nevent: update\ndata: b\nid: 7\n\n");
    size_t n = strlen(h_base) + strlen(e1) + 200;
    url = (char *)malloc(n);
    snprintf(url, n, "%s/script?t=%s&c1=%sdata%%3A%%20x%%00y%%0A%%0A", h_base, t, e1);
    free(e1);

    es_options *o = fast_opts();
    CHECK_EQ_INT(es_options_set_with_credentials(o, true), ES_OK);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, &cbs, &src), ES_OK);
    es_options_free(o);
    CHECK(src != NULL);
    CHECK(es_source_with_credentials(src));
    CHECK(strncmp(es_source_url(src), h_base, strlen(h_base)) == 0);
    CHECK_EQ_INT(es_source_fd(src), -1);
    es_event ev = {0};
    CHECK_EQ_INT(es_source_next(src, &ev, 0), ES_ERR_WRONG_MODE);

    CHECK(wait_for(&r, &r.closed, 1, 10000));
    CHECK(log_is(&r, 0, "open"));
    CHECK(log_is(&r, 1, "message|message|a|"));
    CHECK(log_is(&r, 2, "message|update|b|7"));
    CHECK(log_is(&r, 3, "message|message|x\\0y|7"));
    CHECK(log_is(&r, 4, "error|0|stream_ended|0"));
    CHECK(log_is(&r, 5, "error|2|http_status|204"));
    CHECK_EQ_INT(r.n, 6);
    CHECK(r.in_cb_state_ok);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    CHECK_EQ_INT(r.frees, 0);
    es_source_free(src);
    CHECK_EQ_INT(r.frees, 1);
    free(url);
    rec_destroy(&r);
}

static void test_origin_is_serialized(void) {
    /* Pull mode: checks message.origin and ownership of a returned event after free. */
    char url[256];
    snprintf(url, sizeof url, "%s/stream?count=1&size=16", h_base);
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, NULL, &src), ES_OK);
    es_event ev = {0}, msg = {0};
    int got = 0;
    for (int i = 0; i < 10 && !got; i++) {
        es_status s = es_source_next(src, &ev, 5000 * h_slow());
        if (s != ES_OK) break;
        if (ev.kind == ES_EVENT_MESSAGE) {
            msg = ev;
            got = 1;
        } else {
            es_event_clear(&ev);
        }
    }
    CHECK(got);
    es_source_free(src); /* the event owns its strings: still readable */
    CHECK(h_str_eq(msg.message.origin, h_base, strlen(h_base)));
    CHECK(msg.message.data.len > 0);
    es_event_clear(&msg);
    CHECK_EQ_INT(msg.kind, ES_EVENT_NONE);
    es_event_clear(&msg);
}

/* Reconnection: Last-Event-ID is sent, the stream's retry: overrides the option, headers,
 * method and body are resent. */
static void test_reconnect_last_event_id_and_retry(void) {
    rec r;
    rec_init(&r);
    es_callbacks cbs = callbacks_for(&r);
    const char *t = h_token();
    char tok[64];
    snprintf(tok, sizeof tok, "%s", t);
    char *url = script_url(tok, "retry: 300\nid: 42\ndata: one\n\n", "data: two\n\n", "");
    es_options *o = base_opts();
    /* A POST source reconnects only when asked to (its body would be sent again). */
    CHECK_EQ_INT(es_options_set_reconnect(o, ES_RECONNECT_ALWAYS), ES_OK);
    es_options_set_retry_ms(o, 20000); /* overridden by retry: 300 */
    es_options_set_header(o, "X-Test", "1");
    es_options_set_header(o, "x-test", "2"); /* replaces */
    es_options_set_method(o, "POST");
    es_options_set_body(o, (const uint8_t *)"hello", 5);
    es_options_set_last_event_id(o, "start");
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, &cbs, &src), ES_OK);
    es_options_free(o);
    CHECK(wait_for(&r, &r.closed, 1, 10000));
    CHECK(log_is(&r, 0, "open"));
    CHECK(log_is(&r, 1, "message|message|one|42"));
    CHECK(log_is(&r, 2, "error|0|stream_ended|0"));
    CHECK(log_is(&r, 3, "open"));
    CHECK(log_is(&r, 4, "message|message|two|42"));
    CHECK(log_is(&r, 5, "error|0|stream_ended|0"));
    CHECK(log_is(&r, 6, "error|2|http_status|204"));
    CHECK(r.t_reopen - r.t_error >= 250); /* retry: 300 was honoured (not 50, not 20000) */
    es_source_free(src);

    char path[128];
    snprintf(path, sizeof path, "/log?t=%s", tok);
    char *log = h_http_get(path);
    CHECK(log != NULL);
    if (log) {
        char *second = strstr(log, "{\"method\"");
        if (second) second = strstr(second + 1, "{\"method\"");
        CHECK(second != NULL);
        CHECK(strstr(log, "\"last-event-id\":\"start\"") != NULL); /* first request */
        CHECK(second && strstr(second, "\"last-event-id\":\"42\"") != NULL);
        CHECK(strstr(log, "\"x-test\":\"2\"") != NULL);
        CHECK(strstr(log, "\"x-test\":\"1\"") == NULL);
        CHECK(strstr(log, "\"method\":\"POST\"") != NULL);
        CHECK(strstr(log, "\"body\":\"hello\"") != NULL);
        CHECK(strstr(log, "\"accept\":\"text/event-stream\"") != NULL);
        if (h_test_failed) fprintf(stderr, "  log: %s\n", log);
        free(log);
    }
    free(url);
    rec_destroy(&r);
}

static void expect_fatal(const char *url, const char *want_line) {
    rec r;
    rec_init(&r);
    es_callbacks cbs = callbacks_for(&r);
    es_source *src = NULL;
    es_options *o = fast_opts();
    CHECK_EQ_INT(es_source_new(url, o, &cbs, &src), ES_OK);
    es_options_free(o);
    CHECK(wait_for(&r, &r.closed, 1, 10000));
    h_sleep_ms(50);
    pthread_mutex_lock(&r.mu);
    int ok = r.n >= 1 && strcmp(r.log[r.n - 1], want_line) == 0;
    if (!ok) fprintf(stderr, "  last event %s, want %s\n", r.n ? r.log[r.n - 1] : "(none)", want_line);
    CHECK(ok);
    CHECK_EQ_INT(r.opens, 0);
    pthread_mutex_unlock(&r.mu);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    es_source_free(src);
    CHECK_EQ_INT(r.frees, 1);
    rec_destroy(&r);
}

static void test_fatal_statuses(void) {
    char url[256];
    snprintf(url, sizeof url, "%s/script?t=%s&s1=500&c1=data%%3A%%20x%%0A%%0A", h_base, h_token());
    expect_fatal(url, "error|2|http_status|500");
    snprintf(url, sizeof url, "%s/script?t=%s&ct1=text/plain&c1=data%%3A%%20x%%0A%%0A", h_base, h_token());
    expect_fatal(url, "error|2|content_type|200");
    snprintf(url, sizeof url, "%s/script?t=%s&s1=204", h_base, h_token());
    expect_fatal(url, "error|2|http_status|204");
    expect_fatal("ftp://127.0.0.1/x", "error|2|unsupported_scheme|0");
}

static void test_close_inside_callback(void) {
    rec r;
    rec_init(&r);
    r.close_on_msg = 3;
    es_callbacks cbs = callbacks_for(&r);
    char url[256];
    snprintf(url, sizeof url, "%s/stream?count=100000&size=64&chunk=event", h_base);
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, &cbs, &src), ES_OK);
    CHECK(wait_for(&r, &r.messages, 3, 10000));
    h_sleep_ms(100);
    CHECK_EQ_INT(r.messages, 3);
    CHECK_EQ_INT(r.errors, 0);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    CHECK_EQ_INT(es_source_close(src), ES_OK); /* twice is fine */
    es_source_free(src);
    CHECK_EQ_INT(r.frees, 1);
    rec_destroy(&r);
}

static void test_free_inside_callback(void) {
    rec r;
    rec_init(&r);
    r.free_on_msg = 3;
    es_callbacks cbs = callbacks_for(&r);
    char url[256];
    snprintf(url, sizeof url, "%s/stream?count=100000&size=64", h_base);
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, &cbs, &src), ES_OK);
    CHECK(wait_for(&r, &r.frees, 1, 10000)); /* on_free runs after the freeing callback */
    h_sleep_ms(100);
    CHECK_EQ_INT(r.messages, 3);
    CHECK_EQ_INT(r.frees, 1);
    rec_destroy(&r);
}

typedef struct closer {
    es_source *src;
    rec *r;
} closer;

static void *close_from_thread(void *arg) {
    closer *c = (closer *)arg;
    wait_for(c->r, &c->r->messages, 200, 10000);
    CHECK_EQ_INT(es_source_close(c->src), ES_OK);
    atomic_store(&c->r->after_close, 1);
    /* After close returns, no callback is running... */
    CHECK_EQ_INT(atomic_load(&c->r->in_cb), 0);
    return NULL;
}

static void test_close_from_another_thread_while_streaming(void) {
    for (int round = 0; round < 5; round++) {
        rec r;
        rec_init(&r);
        es_callbacks cbs = callbacks_for(&r);
        char url[256];
        snprintf(url, sizeof url, "%s/stream?count=1000000&size=128&t=cft%d", h_base, round);
        es_source *src = NULL;
        CHECK_EQ_INT(new_source(url, &cbs, &src), ES_OK);
        closer c = {src, &r};
        pthread_t th;
        pthread_create(&th, NULL, close_from_thread, &c);
        pthread_join(th, NULL);
        int n = r.messages;
        if (n < 200) {
            fprintf(stderr, "  round %d: %d opens, %d messages, %d errors; %s\n", round, r.opens, n, r.errors, url);
            for (int i = 0; i < r.n && i < 12; i++) fprintf(stderr, "    %s\n", r.log[i]);
        }
        h_sleep_ms(50);
        /* ...and none starts afterwards. */
        CHECK_EQ_INT(atomic_load(&r.violations), 0);
        CHECK_EQ_INT(r.messages, n);
        CHECK(n >= 200);
        es_source_free(src);
        CHECK_EQ_INT(r.frees, 1);
        rec_destroy(&r);
    }
}

/* Two sources whose callbacks close each other's source at the same moment, on the runtime's
 * two threads: each es_source_close waits for the other's in-flight callback, which is itself
 * waiting in es_source_close. Must not deadlock. */
typedef struct mutual {
    es_source *_Atomic other;
    atomic_int *arrived;
    atomic_int stage; /* 0 no message yet, 1 closing the other source, 2 came back */
} mutual;

static void mutual_on_message(void *user, es_source *source, const es_message *message) {
    (void)source;
    (void)message;
    mutual *m = (mutual *)user;
    if (atomic_load(&m->stage) != 0) return;
    atomic_store(&m->stage, 1);
    atomic_fetch_add(m->arrived, 1);
    double until = h_now_ms() + 300; /* rendezvous, bounded */
    while (atomic_load(m->arrived) < 2 && h_now_ms() < until) sched_yield();
    es_source *other = atomic_load(&m->other);
    if (other) es_source_close(other);
    atomic_store(&m->stage, 2);
}

static void test_callbacks_closing_each_other(void) {
    for (int round = 0; round < 12; round++) {
        atomic_int arrived = 0;
        mutual m[2];
        es_source *src[2] = {NULL, NULL};
        char url[256];
        snprintf(url, sizeof url, "%s/stream?count=1&hold=1", h_base);
        for (int i = 0; i < 2; i++) {
            atomic_init(&m[i].other, NULL);
            m[i].arrived = &arrived;
            atomic_init(&m[i].stage, 0);
            es_callbacks cbs;
            memset(&cbs, 0, sizeof cbs);
            cbs.user_data = &m[i];
            cbs.on_message = mutual_on_message;
            CHECK_EQ_INT(new_source(url, &cbs, &src[i]), ES_OK);
        }
        atomic_store(&m[0].other, src[1]);
        atomic_store(&m[1].other, src[0]);
        /* Done when each callback came back from closing the other source, or its source was
         * closed before its message came (then it never runs). */
        double until = h_now_ms() + 20000;
        int done = 0;
        while (!done && h_now_ms() < until) {
            done = 1;
            for (int i = 0; i < 2; i++) {
                int st = atomic_load(&m[i].stage);
                if (!(st == 2 || (st == 0 && es_source_ready_state(src[i]) == ES_CLOSED))) done = 0;
            }
            if (!done) h_sleep_ms(5);
        }
        if (!done) fprintf(stderr, "  round %d: stages %d %d\n", round, atomic_load(&m[0].stage), atomic_load(&m[1].stage));
        CHECK(done);
        if (!done) return; /* the runtime threads are stuck: freeing would hang too */
        for (int i = 0; i < 2; i++) es_source_free(src[i]);
    }
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int n_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

/* One create/free cycle; half with callbacks, some closed first, some freed mid-connection or
 * mid-stream. */
static void create_free_cycles(int from, int to, const char *url, es_options *o, es_callbacks *cbs) {
    for (int i = from; i < to; i++) {
        es_source *src = NULL;
        es_status st = es_source_new(url, o, (i % 2) ? cbs : NULL, &src);
        CHECK_EQ_INT(st, ES_OK);
        if (st != ES_OK) break;
        if (i % 10 == 0) h_sleep_ms(1); /* sometimes mid-connection or mid-stream */
        if (i % 3 == 0) CHECK_EQ_INT(es_source_close(src), ES_OK);
        es_source_free(src);
    }
}

/* ES_TEST_CYCLES cycles (default 1,000) after a warm-up of as many, at most 1,000 (the runtime, the HTTP client's
 * pool, allocator arenas); RSS must stay within 16 MiB and descriptors must not grow (a leaked
 * source holds a socket, a task and its buffers). `make soak` runs 100,000 and reads the SOAK line. */
static void test_create_close_cycles(void) {
    const char *s = getenv("ES_TEST_CYCLES");
    int cycles = s ? atoi(s) : 1000;
    int warm = cycles < 1000 ? cycles : 1000;
    rec r;
    rec_init(&r);
    es_callbacks cbs = callbacks_for(&r);
    char url[256];
    snprintf(url, sizeof url, "%s/stream?count=5&size=32&rate=1000", h_base);
    es_options *o = fast_opts();
    create_free_cycles(0, warm, url, o, &cbs);
    h_sleep_ms(300); /* connections of freed sources finish closing */
    long rss0 = rss_kib();
    int fds0 = n_fds();
    double t0 = h_now_ms();
    create_free_cycles(warm, warm + cycles, url, o, &cbs);
    h_sleep_ms(300);
    long rss1 = rss_kib();
    int fds1 = n_fds();
    es_options_free(o);
    CHECK_EQ_INT(r.frees, (warm + cycles) / 2);
    rec_destroy(&r);
    printf("SOAK {\"face\": \"c\", \"transport\": \"%s\", \"cycles\": %d, \"secs\": %.1f, "
           "\"rss_before_kib\": %ld, \"rss_after_kib\": %ld, \"fds_before\": %d, \"fds_after\": %d}\n",
           h_transport(), cycles, (h_now_ms() - t0) / 1000.0, rss0, rss1, fds0, fds1);
    if (!RUNNING_ON_VALGRIND && !SANITIZED) CHECK(rss1 - rss0 < 16 * 1024); /* their own heaps */
    CHECK(fds1 <= fds0);
}

/* Pull mode driven by poll() on es_source_fd. */
static void test_pull_mode_with_poll(void) {
    const char *t = h_token();
    char *url = script_url(t, "data: 1\n\nevent: tick\ndata: 2\n\ndata: 3\n\n", NULL, "&hold1=1");
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, NULL, &src), ES_OK);
    int fd = es_source_fd(src);
    CHECK(fd >= 0);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CONNECTING);
    const char *want[] = {"open", "message|1", "tick|2", "message|3"};
    int got = 0;
    double deadline = h_now_ms() + 10000.0 * h_slow();
    while (got < 4 && h_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, 1000);
        if (pr <= 0) continue;
        es_event ev = {0};
        es_status st;
        while ((st = es_source_next(src, &ev, 0)) == ES_OK) {
            char line[64] = "";
            if (ev.kind == ES_EVENT_OPEN) {
                strcpy(line, "open");
                CHECK_EQ_INT(es_source_ready_state(src), ES_OPEN);
            } else if (ev.kind == ES_EVENT_MESSAGE) {
                cat_str(line, sizeof line, ev.message.type);
                strcat(line, "|");
                cat_str(line, sizeof line, ev.message.data);
            } else {
                snprintf(line, sizeof line, "error|%.*s", (int)ev.error.message.len, ev.error.message.ptr);
            }
            CHECK(got < 4 && strcmp(line, want[got]) == 0);
            if (got < 4 && strcmp(line, want[got]) != 0) fprintf(stderr, "  got %s want %s\n", line, want[got]);
            got++;
            es_event_clear(&ev);
        }
        CHECK_EQ_INT(st, ES_ERR_TIMEOUT);
    }
    CHECK_EQ_INT(got, 4);
    /* Held open and drained: next() times out and the descriptor is not readable. The header
     * allows a rare spurious readiness (the core signals right after it queues, without its
     * lock held, so that signal can land after the consumer already took those events): then
     * next(0) says ES_ERR_TIMEOUT and clears it. */
    struct pollfd p = {fd, POLLIN, 0};
    es_event ev = {0};
    if (poll(&p, 1, 100) != 0) {
        CHECK_EQ_INT(es_source_next(src, &ev, 0), ES_ERR_TIMEOUT);
        CHECK_EQ_INT(poll(&p, 1, 100), 0);
    }
    double t0 = h_now_ms();
    CHECK_EQ_INT(es_source_next(src, &ev, 50), ES_ERR_TIMEOUT);
    CHECK(h_now_ms() - t0 >= 40);
    /* Close: readable, and next() says CLOSED. */
    CHECK_EQ_INT(es_source_close(src), ES_OK);
    CHECK_EQ_INT(poll(&p, 1, 1000), 1);
    CHECK_EQ_INT(es_source_next(src, &ev, -1), ES_ERR_CLOSED);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    es_source_free(src);
    free(url);
}

/* Pull mode until a fatal error: the error event is returned, then ES_ERR_CLOSED. */
static void test_pull_mode_fatal(void) {
    char url[256];
    snprintf(url, sizeof url, "%s/script?t=%s&s1=404", h_base, h_token());
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, NULL, &src), ES_OK);
    es_event ev = {0};
    CHECK_EQ_INT(es_source_next(src, &ev, 10000 * h_slow()), ES_OK);
    CHECK_EQ_INT(ev.kind, ES_EVENT_ERROR);
    CHECK_EQ_INT(ev.ready_state, ES_CLOSED);
    CHECK_EQ_INT(ev.error.kind, ES_ERROR_KIND_HTTP_STATUS);
    CHECK_EQ_INT(ev.error.status, 404);
    es_event_clear(&ev);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    struct pollfd p = {es_source_fd(src), POLLIN, 0};
    CHECK_EQ_INT(poll(&p, 1, 1000), 1);
    CHECK_EQ_INT(es_source_next(src, &ev, 1000), ES_ERR_CLOSED);
    es_source_free(src);
}

/* A pull source whose consumer blocks in es_source_next while another thread closes it. */
static void *close_later(void *arg) {
    h_sleep_ms(100);
    es_source_close((es_source *)arg);
    return NULL;
}

static void test_pull_blocking_next_woken_by_close(void) {
    char url[256];
    snprintf(url, sizeof url, "%s/scenario/silence?ms=5000", h_base);
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, NULL, &src), ES_OK);
    pthread_t th;
    pthread_create(&th, NULL, close_later, src);
    es_event ev = {0};
    es_status st;
    while ((st = es_source_next(src, &ev, -1)) == ES_OK) es_event_clear(&ev);
    CHECK_EQ_INT(st, ES_ERR_CLOSED);
    pthread_join(th, NULL);
    es_source_free(src);
}

/* Threads blocked in es_source_next (no limit and a long limit) on an open, idle pull source
 * while the main thread frees it, with or without es_source_close first. Each call holds the
 * source for its duration: it returns ES_ERR_CLOSED and nothing of the source is read after
 * it is gone. Valgrind is the check (the reads would be inside the library, which ASan does
 * not instrument). */
#define NEXT_WAITERS 4

typedef struct next_waiter {
    es_source *src;
    int timeout_ms;
    atomic_long tid;
    atomic_int entering;
    es_status status;
    es_event_kind kind;
} next_waiter;

static void *wait_in_next(void *arg) {
    next_waiter *w = (next_waiter *)arg;
    es_event ev = {0};
    atomic_store(&w->tid, h_gettid());
    atomic_store(&w->entering, 1);
    w->status = es_source_next(w->src, &ev, w->timeout_ms);
    w->kind = ev.kind;
    es_event_clear(&ev);
    return NULL;
}

/* Parking: SIGUSR1 stops a thread wherever it is (here: waiting inside es_source_next) in a
 * handler that waits on a semaphore, so the thread goes on only when the test says. */
static sem_t park_parked, park_resume;
static struct sigaction park_saved;

static void park_handler(int sig) {
    (void)sig;
    int saved_errno = errno;
    sem_post(&park_parked);
    while (sem_wait(&park_resume) != 0 && errno == EINTR) {
    }
    errno = saved_errno;
}

/* Parks each thread of th[0..n); returns how many reached the handler (bounded wait). */
static int park_threads(const pthread_t *th, int n) {
    sem_init(&park_parked, 0, 0);
    sem_init(&park_resume, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = park_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, &park_saved);
    for (int i = 0; i < n; i++) pthread_kill(th[i], SIGUSR1);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10 * h_slow();
    int parked = 0;
    while (parked < n) {
        if (sem_timedwait(&park_parked, &dl) == 0)
            parked++;
        else if (errno != EINTR)
            break;
    }
    return parked;
}

static void unpark_threads(int n) {
    for (int i = 0; i < n; i++) sem_post(&park_resume);
}

/* After the parked threads are joined (and only if all were parked: a late signal still
 * needs the handler). */
static void park_done(void) {
    sigaction(SIGUSR1, &park_saved, NULL);
    sem_destroy(&park_parked);
    sem_destroy(&park_resume);
}

static void free_while_next_waits(int close_first) {
    const char *t = h_token();
    char *url = script_url(t, "data: x\n\n", NULL, "&hold1=1");
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, NULL, NULL, &src), ES_OK);
    free(url);
    if (!src) return;
    /* Take open and the message: the stream is then open and idle (held by the server). */
    es_event ev = {0};
    int took = 0;
    while (took < 2 && es_source_next(src, &ev, 10000 * h_slow()) == ES_OK) {
        took++;
        es_event_clear(&ev);
    }
    CHECK_EQ_INT(took, 2);
    CHECK_EQ_INT(es_source_ready_state(src), ES_OPEN);

    next_waiter w[NEXT_WAITERS];
    pthread_t th[NEXT_WAITERS];
    for (int i = 0; i < NEXT_WAITERS; i++) {
        w[i].src = src;
        w[i].timeout_ms = (i % 2) ? 600000 : -1;
        atomic_init(&w[i].tid, 0);
        atomic_init(&w[i].entering, 0);
        w[i].status = ES_OK;
        w[i].kind = ES_EVENT_NONE;
        pthread_create(&th[i], NULL, wait_in_next, &w[i]);
    }
    /* The caller must not free while a call on the source is still starting: wait until every
     * waiter has entered es_source_next and sleeps in it. Nothing observable marks "inside";
     * the thread's kernel state plus a pause stands for it (a generous one under valgrind,
     * whose threads also sleep while they wait for its scheduler lock). */
    double until = h_now_ms() + 10000.0 * h_slow();
    for (int i = 0; i < NEXT_WAITERS; i++) {
        while (h_now_ms() < until &&
               !(atomic_load(&w[i].entering) && h_thread_sleeping(atomic_load(&w[i].tid))))
            h_sleep_ms(1);
    }
    h_sleep_ms(30 * h_slow());
    for (int i = 0; i < NEXT_WAITERS; i++) CHECK(atomic_load(&w[i].entering));
    /* Woken by the close, a waiter would usually finish before the free went on to release
     * the memory, and a use after free would go unseen. So each waiter is parked in a signal
     * handler, inside its call, until es_source_free has returned. */
    /* Under ThreadSanitizer nothing is parked: its signal handling cannot reach a thread that
     * blocks in a futex wait, and TSan itself reports a free that is not ordered after the
     * waiters' last accesses to the source. */
    int parked = THREAD_SANITIZED ? 0 : park_threads(th, NEXT_WAITERS);
    if (!THREAD_SANITIZED) CHECK_EQ_INT(parked, NEXT_WAITERS);
    if (close_first) CHECK_EQ_INT(es_source_close(src), ES_OK);
    es_source_free(src);
    if (!THREAD_SANITIZED) unpark_threads(NEXT_WAITERS);
    for (int i = 0; i < NEXT_WAITERS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].status != ES_ERR_CLOSED)
            fprintf(stderr, "  waiter %d (timeout %d): status %s, event kind %d\n", i, w[i].timeout_ms,
                    es_status_str(w[i].status), (int)w[i].kind);
        CHECK_EQ_INT(w[i].status, ES_ERR_CLOSED);
    }
    if (!THREAD_SANITIZED && parked == NEXT_WAITERS) park_done();
}

static void test_pull_free_while_next_waits(void) {
    free_while_next_waits(0);
}

static void test_pull_close_and_free_while_next_waits(void) {
    free_while_next_waits(1);
}

/* Callback mode: threads hammer es_source_ready_state / _url / _with_credentials / _fd while a
 * callback is in flight and another thread is inside es_source_close (which waits for that
 * callback); then the main thread frees the source and the callback is let go. The closing
 * thread's call still holds the source: it returns ES_OK without touching freed memory, and
 * on_free runs exactly once, on the thread that lets go of the last reference: the closing
 * thread, as its call returns (the callback's reference is dropped before that thread can go
 * on). The source's memory outlives the value here (the runtime's handler keeps a weak
 * reference), so valgrind could not see an early drop: which thread ran on_free shows it.
 * The hammering threads stop before the free: a call that starts after es_source_free is the
 * caller's use after free, which no reference count can catch. */
#define HAMMERS 3

typedef struct gated {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_callback, release, frees;
    long free_tid;
} gated;

static void gated_on_message(void *ud, es_source *src, const es_message *m) {
    (void)src;
    (void)m;
    gated *g = (gated *)ud;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10 * h_slow(); /* a failing run must not hang the runtime thread for ever */
    pthread_mutex_lock(&g->mu);
    g->in_callback++;
    pthread_cond_broadcast(&g->cv);
    while (!g->release && pthread_cond_timedwait(&g->cv, &g->mu, &dl) == 0) {
    }
    pthread_mutex_unlock(&g->mu);
}

static void gated_on_free(void *ud) {
    gated *g = (gated *)ud;
    pthread_mutex_lock(&g->mu);
    g->frees++;
    g->free_tid = h_gettid();
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int gated_wait(gated *g, const int *field, int value, int ms) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    long long ns = dl.tv_nsec + (long long)ms * h_slow() * 1000000LL;
    dl.tv_sec += (time_t)(ns / 1000000000LL);
    dl.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&g->mu);
    int rc = 0;
    while (*field < value && rc == 0) rc = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
    int ok = *field >= value;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

typedef struct hammer {
    es_source *src;
    const char *url;
    atomic_int *stop;
    atomic_long calls, bad;
} hammer;

static void *hammer_getters(void *arg) {
    hammer *h = (hammer *)arg;
    while (!atomic_load(h->stop)) {
        es_ready_state st = es_source_ready_state(h->src);
        const char *u = es_source_url(h->src);
        int ok = (st == ES_OPEN || st == ES_CLOSED) && u && strcmp(u, h->url) == 0 &&
                 !es_source_with_credentials(h->src) && es_source_fd(h->src) == -1;
        if (!ok) atomic_fetch_add(&h->bad, 1);
        atomic_fetch_add(&h->calls, 1);
    }
    return NULL;
}

typedef struct in_close {
    es_source *src;
    es_status status;
    long tid;
} in_close;

static void *close_in_thread(void *arg) {
    in_close *c = (in_close *)arg;
    c->tid = h_gettid();
    c->status = es_source_close(c->src);
    return NULL;
}

static void *free_in_thread(void *arg) {
    in_close *c = (in_close *)arg;
    c->tid = h_gettid();
    es_source_free(c->src);
    c->status = ES_OK;
    return NULL;
}

static void test_callback_free_while_calls_in_flight(void) {
    gated g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    es_callbacks cbs;
    memset(&cbs, 0, sizeof cbs);
    cbs.user_data = &g;
    cbs.on_message = gated_on_message;
    cbs.on_free = gated_on_free;
    const char *t = h_token();
    char *url = script_url(t, "data: x\n\n", NULL, "&hold1=1");
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, NULL, &cbs, &src), ES_OK);
    free(url);
    if (!src) return;
    char want_url[256];
    snprintf(want_url, sizeof want_url, "%s", es_source_url(src));
    CHECK(gated_wait(&g, &g.in_callback, 1, 10000));

    atomic_int stop = 0;
    hammer h[HAMMERS];
    pthread_t hth[HAMMERS];
    for (int i = 0; i < HAMMERS; i++) {
        h[i].src = src;
        h[i].url = want_url;
        h[i].stop = &stop;
        atomic_init(&h[i].calls, 0);
        atomic_init(&h[i].bad, 0);
        pthread_create(&hth[i], NULL, hammer_getters, &h[i]);
    }
    for (int i = 0; i < HAMMERS; i++) {
        double until = h_now_ms() + 5000.0 * h_slow();
        while (atomic_load(&h[i].calls) < 100 && h_now_ms() < until) h_sleep_ms(1);
    }
    in_close c = {src, ES_ERR_PANIC, 0};
    pthread_t cth;
    pthread_create(&cth, NULL, close_in_thread, &c);
    /* readyState turns CLOSED first thing inside es_source_close: the closing thread is then
     * inside its call (it waits there for the callback). */
    double until = h_now_ms() + 10000.0 * h_slow();
    while (es_source_ready_state(src) != ES_CLOSED && h_now_ms() < until) h_sleep_ms(1);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    h_sleep_ms(10 * h_slow()); /* hammering on, against the closed source */
    atomic_store(&stop, 1);
    for (int i = 0; i < HAMMERS; i++) {
        pthread_join(hth[i], NULL);
        CHECK(atomic_load(&h[i].calls) >= 100);
        CHECK_EQ_INT(atomic_load(&h[i].bad), 0);
    }

    /* es_source_free waits for the callback too (every close does), so it runs on a thread of
     * its own: both calls are in flight while the callback holds the source. */
    in_close f = {src, ES_ERR_PANIC, 0};
    pthread_t fth;
    pthread_create(&fth, NULL, free_in_thread, &f);
    h_sleep_ms(20 * h_slow());
    pthread_mutex_lock(&g.mu);
    CHECK_EQ_INT(g.frees, 0);
    g.release = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(cth, NULL);
    pthread_join(fth, NULL);
    CHECK_EQ_INT(c.status, ES_OK);
    CHECK(gated_wait(&g, &g.frees, 1, 10000));
    h_sleep_ms(20);
    pthread_mutex_lock(&g.mu);
    CHECK_EQ_INT(g.frees, 1);
    /* The last reference went with one of the two calls in flight, not with the runtime
     * thread's callback. */
    CHECK(g.free_tid == c.tid || g.free_tid == f.tid);
    pthread_mutex_unlock(&g.mu);
    pthread_mutex_destroy(&g.mu);
    pthread_cond_destroy(&g.cv);
}

/* fork() after the library started: in the child, a source made before the fork returns an
 * ES_ERROR_KIND_FORKED error event (readyState CLOSED) and then ES_ERR_CLOSED, and a new source streams (the child's first use
 * builds a runtime of its own). The child reports the number of the first failed check. */
static int fork_child_checks(es_source *before) {
    es_event ev = {0};
    /* Events the parent had already taken into the source's buffer may come first. */
    do {
        es_event_clear(&ev);
        if (es_source_next(before, &ev, 5000) != ES_OK) return 2;
    } while (ev.kind == ES_EVENT_MESSAGE);
    if (ev.kind != ES_EVENT_ERROR || ev.error.kind != ES_ERROR_KIND_FORKED ||
        ev.ready_state != ES_CLOSED)
        return 3;
    es_event_clear(&ev);
    /* Pull mode reports the state of the last event returned: the error's. */
    if (es_source_ready_state(before) != ES_CLOSED) return 1;
    if (es_source_next(before, &ev, 1000) != ES_ERR_CLOSED) return 4;
    es_source_free(before);
    char url[256];
    snprintf(url, sizeof url, "%s/stream?count=1&size=8&hold=1", h_base);
    es_source *fresh = NULL;
    if (es_source_new(url, NULL, NULL, &fresh) != ES_OK) return 5;
    int got_open = 0, got_message = 0;
    for (int i = 0; i < 2; i++) {
        if (es_source_next(fresh, &ev, 10000 * h_slow()) != ES_OK) return 6;
        got_open |= ev.kind == ES_EVENT_OPEN;
        got_message |= ev.kind == ES_EVENT_MESSAGE;
        es_event_clear(&ev);
    }
    es_source_free(fresh);
    return got_open && got_message ? 0 : 7;
}

static char *answer_url(const char *token, int status, const char *ctype, const char *header,
                        const char *body, const char *extra);

static void test_fork_child_gets_a_working_library(void) {
    char url[256];
    snprintf(url, sizeof url, "%s/stream?count=1&size=8&hold=1", h_base);
    es_source *before = NULL;
    CHECK_EQ_INT(es_source_new(url, NULL, NULL, &before), ES_OK);
    if (!before) return;
    es_event ev = {0};
    CHECK_EQ_INT(es_source_next(before, &ev, 10000 * h_slow()), ES_OK);
    CHECK_EQ_INT(ev.kind, ES_EVENT_OPEN);
    es_event_clear(&ev);
    /* A finished response leaves its connection idle in the parent's pool; the child's sources
     * must not be handed it (its I/O belongs to the parent's runtime, whose threads the child
     * does not have). */
    char *finished = answer_url(h_token(), 401, "text/plain", "X-A: b", "denied", "");
    es_source *done = NULL;
    CHECK_EQ_INT(es_source_new(finished, NULL, NULL, &done), ES_OK);
    free(finished);
    if (!done) return;
    CHECK_EQ_INT(es_source_next(done, &ev, 10000 * h_slow()), ES_OK);
    CHECK_EQ_INT(ev.kind, ES_EVENT_ERROR);
    CHECK_EQ_INT(ev.error.status, 401);
    es_event_clear(&ev);
    es_source_free(done);
    h_sleep_ms(100); /* the connection goes back to the pool on the runtime's threads */
    fflush(NULL);
    int result[2];
    CHECK_EQ_INT(pipe(result), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* The child reports its checks and valgrind's error count (invalid reads and the like)
         * through the pipe. Under valgrind it then ends by SIGKILL, skipping the leak check at
         * exit: the parent's runtime, whose threads do not exist here, is unreachable in the
         * child by nature, and no code can free it. */
        int report[2] = {fork_child_checks(before), (int)VALGRIND_COUNT_ERRORS};
        if (write(result[1], report, sizeof report) != (ssize_t)sizeof report) _exit(99);
        if (RUNNING_ON_VALGRIND) kill(getpid(), SIGKILL);
        _exit(report[0]);
    }
    close(result[1]);
    int report[2] = {-1, -1};
    CHECK_EQ_INT(read(result[0], report, sizeof report), (ssize_t)sizeof report);
    close(result[0]);
    CHECK_EQ_INT(report[0], 0); /* the first failed check of the child, 0 if none */
    CHECK_EQ_INT(report[1], 0); /* valgrind errors in the child */
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    if (RUNNING_ON_VALGRIND) {
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    } else {
        CHECK(WIFEXITED(status));
        CHECK_EQ_INT(WEXITSTATUS(status), 0);
    }
    /* The parent's source is untouched. */
    CHECK_EQ_INT(es_source_next(before, &ev, 10000 * h_slow()), ES_OK);
    CHECK_EQ_INT(ev.kind, ES_EVENT_MESSAGE);
    es_event_clear(&ev);
    CHECK_EQ_INT(es_source_ready_state(before), ES_OPEN);
    es_source_free(before);
}

/* Pulls the events of a pull source until it is closed (or 10 s pass), as lines "open",
 * "message|TYPE|DATA|ID" and "error|STATE|KIND|STATUS"; keeps the first `max`, returns how many. */
#define LINE 192
static int pull_all(es_source *src, char lines[][LINE], int max) {
    int n = 0;
    double deadline = h_now_ms() + 10000.0 * h_slow();
    es_event ev = {0};
    while (h_now_ms() < deadline) {
        es_status st = es_source_next(src, &ev, 200);
        if (st == ES_ERR_TIMEOUT) continue;
        if (st != ES_OK) break;
        char line[LINE] = "";
        if (ev.kind == ES_EVENT_OPEN) {
            strcpy(line, "open");
        } else if (ev.kind == ES_EVENT_MESSAGE) {
            strcpy(line, "message|");
            cat_str(line, sizeof line, ev.message.type);
            strcat(line, "|");
            cat_str(line, sizeof line, ev.message.data);
            strcat(line, "|");
            cat_str(line, sizeof line, ev.message.last_event_id);
        } else {
            snprintf(line, sizeof line, "error|%u|%s|%u", (unsigned)ev.error.ready_state,
                     es_error_kind_str(ev.error.kind), (unsigned)ev.error.status);
        }
        if (n < max) snprintf(lines[n], LINE, "%s", line);
        n++;
        es_event_clear(&ev);
    }
    return n;
}

static void check_lines(char lines[][LINE], int n, const char *const *want, int n_want) {
    CHECK_EQ_INT(n, n_want);
    for (int i = 0; i < n && i < n_want; i++) {
        if (strcmp(lines[i], want[i]) != 0) {
            fprintf(stderr, "  event %d: %s, want %s\n", i, lines[i], want[i]);
            h_test_failed = 1;
        }
    }
}

/* How many times `needle` occurs in `hay`. */
static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* Every setter of the transport, TLS, reconnection, User-Agent and error-body options: NULL
 * options, NULL and invalid arguments, and values that es_source_new accepts or refuses. */
static void test_new_option_setters_validate(void) {
    CHECK_EQ_INT(es_options_set_transport(NULL, "lean"), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_http2_prior_knowledge(NULL, true), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_client_cert(NULL, "c.pem", NULL), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_reconnect(NULL, ES_RECONNECT_NEVER), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_max_reconnects(NULL, 3), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_retry_initial(NULL, false), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_user_agent(NULL, "ua"), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_max_error_body(NULL, 10), ES_ERR_INVALID_ARGUMENT);
    CHECK(strstr(es_last_error_message(), "opts is NULL") != NULL);

    es_source *src = (es_source *)0x1; /* must stay untouched on failure */
    es_options *o = es_options_new();
    /* transport */
    CHECK_EQ_INT(es_options_set_transport(o, NULL), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_transport(o, "fast"), ES_ERR_INVALID_OPTION);
    CHECK(strstr(es_last_error_message(), "\"fast\"") != NULL);
    CHECK(strstr(es_last_error_message(), "lean") != NULL);
    CHECK_EQ_INT(es_options_set_transport(o, "le\xff"), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(es_options_set_transport(o, "LEAN"), ES_OK);
    /* h2c needs the default transport */
    CHECK_EQ_INT(es_options_set_http2_prior_knowledge(o, true), ES_OK);
    CHECK_EQ_INT(es_source_new(h_base, o, NULL, &src), ES_ERR_INVALID_OPTION);
    CHECK(strstr(es_last_error_message(), "http2_prior_knowledge") != NULL);
    CHECK(src == (es_source *)0x1);
    CHECK_EQ_INT(es_options_set_transport(o, "default"), ES_OK);
    CHECK_EQ_INT(es_options_set_http2_prior_knowledge(o, false), ES_OK);
    /* client certificate */
    CHECK_EQ_INT(es_options_set_client_cert(o, NULL, "key.pem"), ES_ERR_INVALID_ARGUMENT);
    CHECK(strstr(es_last_error_message(), "key_path") != NULL);
    CHECK_EQ_INT(es_options_set_client_cert(o, "c\xff.pem", NULL), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(es_options_set_client_cert(o, "c.pem", "k\xff.pem"), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(es_options_set_client_cert(o, "/nonexistent/es-client.pem", NULL), ES_OK);
    CHECK_EQ_INT(es_source_new(h_base, o, NULL, &src), ES_ERR_INVALID_OPTION);
    CHECK(strstr(es_last_error_message(), "/nonexistent/es-client.pem") != NULL);
    CHECK(src == (es_source *)0x1);
    CHECK_EQ_INT(es_options_set_client_cert(o, NULL, NULL), ES_OK); /* cleared */
    /* reconnect: only the three values */
    CHECK_EQ_INT(es_options_set_reconnect(o, 3), ES_ERR_INVALID_OPTION);
    CHECK(strstr(es_last_error_message(), "ES_RECONNECT_NEVER") != NULL);
    CHECK_EQ_INT(es_options_set_reconnect(o, 0xFFFFFFFFu), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(ES_RECONNECT_DEFAULT, 0);
    CHECK_EQ_INT(ES_RECONNECT_ALWAYS, 1);
    CHECK_EQ_INT(ES_RECONNECT_NEVER, 2);
    CHECK_EQ_INT(es_options_set_reconnect(o, ES_RECONNECT_ALWAYS), ES_OK);
    CHECK_EQ_INT(es_options_set_reconnect(o, ES_RECONNECT_DEFAULT), ES_OK);
    CHECK_EQ_INT(es_options_set_reconnect(o, ES_RECONNECT_NEVER), ES_OK);
    /* max_reconnects: negative = no limit, up to UINT32_MAX */
    CHECK_EQ_INT(es_options_set_max_reconnects(o, 4294967296LL), ES_ERR_INVALID_OPTION);
    CHECK(strstr(es_last_error_message(), "4294967295") != NULL);
    CHECK_EQ_INT(es_options_set_max_reconnects(o, INT64_MAX), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(es_options_set_max_reconnects(o, 4294967295LL), ES_OK);
    CHECK_EQ_INT(es_options_set_max_reconnects(o, -1), ES_OK);
    CHECK_EQ_INT(es_options_set_max_reconnects(o, 0), ES_OK);
    CHECK_EQ_INT(es_options_set_max_reconnects(o, 3), ES_OK);
    /* the rest */
    CHECK_EQ_INT(es_options_set_retry_initial(o, false), ES_OK);
    CHECK_EQ_INT(es_options_set_user_agent(o, "ua\xff"), ES_ERR_INVALID_OPTION);
    CHECK_EQ_INT(es_options_set_user_agent(o, NULL), ES_OK);
    CHECK_EQ_INT(es_options_set_user_agent(o, "es-c-test/1.0"), ES_OK);
    CHECK_EQ_INT(es_options_set_max_error_body(o, 0), ES_OK);
    CHECK_EQ_INT(es_options_set_max_error_body(o, SIZE_MAX), ES_OK);
    CHECK_EQ_INT(es_options_set_max_error_body(o, 1024), ES_OK);
    /* ES_TEST_TRANSPORT reaches the tests' options: h2c is refused by the lean transport only. */
    es_options *b = base_opts();
    CHECK_EQ_INT(es_options_set_http2_prior_knowledge(b, true), ES_OK);
    es_source *h2 = NULL;
    es_status want_h2 = strcmp(h_transport(), "lean") == 0 ? ES_ERR_INVALID_OPTION : ES_OK;
    CHECK_EQ_INT(es_source_new(h_base, b, NULL, &h2), want_h2);
    es_source_free(h2);
    es_options_free(b);
    /* All of them set: a source is made. */
    char url[256];
    snprintf(url, sizeof url, "%s/stream?count=1", h_base);
    src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_source_free(src);
    es_options_free(o);
}

/* The same stream over each transport, named explicitly (whatever ES_TEST_TRANSPORT says), and
 * the HTTP version the server saw. */
static void stream_over(const char *transport, bool h2c, const char *want_version) {
    char tok[64];
    snprintf(tok, sizeof tok, "%s", h_token());
    char *url = script_url(tok, "id: 1\ndata: a\n\nevent: e\ndata: b\n\n", NULL, "");
    es_options *o = fast_opts();
    CHECK_EQ_INT(es_options_set_transport(o, transport), ES_OK);
    CHECK_EQ_INT(es_options_set_http2_prior_knowledge(o, h2c), ES_OK);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_options_free(o);
    char lines[8][LINE];
    int n = src ? pull_all(src, lines, 8) : 0;
    es_source_free(src);
    const char *want[] = {"open", "message|message|a|1", "message|e|b|1", "error|0|stream_ended|0",
                          "error|2|http_status|204"};
    check_lines(lines, n, want, 5);
    char path[128], version[64];
    snprintf(path, sizeof path, "/log?t=%s", tok);
    snprintf(version, sizeof version, "\"version\":\"%s\"", want_version);
    char *log = h_http_get(path);
    CHECK(log != NULL);
    if (log) {
        CHECK_EQ_INT(count_of(log, "{\"method\""), 2);
        CHECK_EQ_INT(count_of(log, version), 2);
        if (h_test_failed) fprintf(stderr, "  %s, h2c %d: log %s\n", transport, (int)h2c, log);
        free(log);
    }
    free(url);
}

static void test_streams_over_each_transport(void) {
    stream_over("default", false, "HTTP/1.1");
    stream_over("lean", false, "HTTP/1.1");
    stream_over("default", true, "HTTP/2.0"); /* h2c with prior knowledge */
}

/* max_event_size = SIZE_MAX means no practical limit: a line cut across two writes arrives
 * whole. (A limit near SIZE_MAX once overflowed the parser's carry bound: the first half of
 * the cut line was dropped and its tail, "id: forged", parsed as a field of its own.) */
static void test_huge_max_event_size_keeps_split_lines(void) {
    char *url = script_url(h_token(), "data: xid: forged\n\nid: 1\ndata: y\n\n", NULL, "&split1=8");
    es_options *o = fast_opts();
    CHECK_EQ_INT(es_options_set_max_event_size(o, SIZE_MAX), ES_OK);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_options_free(o);
    char lines[8][LINE];
    int n = src ? pull_all(src, lines, 8) : 0;
    es_source_free(src);
    const char *want[] = {"open", "message|message|xid: forged|", "message|message|y|1",
                          "error|0|stream_ended|0", "error|2|http_status|204"};
    check_lines(lines, n, want, 5);
    free(url);
}

/* ---------------------------------------------------------------------------------------- */
/* Responses: header fields and error bodies; logging; the reconnection policy; User-Agent.  */

#define OPENAI_401 "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\"}}"

/* A /script URL answering connection 1 with `status`, a Content-Type, one extra header
 * ("Name: value") and `body`. */
static char *answer_url(const char *token, int status, const char *ctype, const char *header,
                        const char *body, const char *extra) {
    char *ct = h_pct(ctype), *hd = h_pct(header), *b = h_pct(body);
    size_t n = strlen(h_base) + strlen(ct) + strlen(hd) + strlen(b) + strlen(extra) + 128;
    char *u = (char *)malloc(n);
    snprintf(u, n, "%s/script?t=%s&s1=%d&ct1=%s&hdr1=%s&c1=%s%s", h_base, token, status, ct, hd, b, extra);
    free(ct);
    free(hd);
    free(b);
    return u;
}

/* What a callback read through the accessors while it ran. */
typedef struct seen_rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int opens, closed;
    unsigned status;
    es_status hdr_st, body_st, missing_st;
    char hdr[64], ctype[64], body[256];
    size_t hdr_len, body_len;
    const char *lookup; /* header read in on_open / on_error */
} seen_rec;

static void seen_read(seen_rec *s, es_source *src) {
    s->hdr_st = es_source_response_header(src, s->lookup, s->hdr, sizeof s->hdr, &s->hdr_len);
    size_t n = 0;
    es_source_response_header(src, "Content-Type", s->ctype, sizeof s->ctype, &n);
    s->body_st = es_source_error_body(src, s->body, sizeof s->body, &s->body_len);
    s->missing_st = es_source_response_header(src, "x-not-sent", NULL, 0, NULL);
}

static void seen_on_open(void *ud, es_source *src) {
    seen_rec *s = (seen_rec *)ud;
    pthread_mutex_lock(&s->mu);
    s->opens++;
    seen_read(s, src);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void seen_on_error(void *ud, es_source *src, const es_error *e) {
    seen_rec *s = (seen_rec *)ud;
    pthread_mutex_lock(&s->mu);
    if (e->ready_state == ES_CLOSED) {
        s->status = e->status;
        seen_read(s, src);
        s->closed = 1;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static int seen_wait(seen_rec *s, const int *field, int ms) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    long long ns = dl.tv_nsec + (long long)ms * h_slow() * 1000000LL;
    dl.tv_sec += (time_t)(ns / 1000000000LL);
    dl.tv_nsec = (long)(ns % 1000000000LL);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (*field == 0 && rc == 0) rc = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    int ok = *field != 0;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static es_callbacks seen_callbacks(seen_rec *s, const char *lookup) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->lookup = lookup;
    es_callbacks cbs;
    memset(&cbs, 0, sizeof cbs);
    cbs.user_data = s;
    cbs.on_open = seen_on_open;
    cbs.on_error = seen_on_error;
    return cbs;
}

static void seen_destroy(seen_rec *s) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* An OpenAI-style JSON 401: inside on_error the status, the x-request-id header and the JSON
 * body are there; afterwards from this thread too, with the copy convention checked. */
static void test_error_401_json_body_and_headers(void) {
    seen_rec s;
    es_callbacks cbs = seen_callbacks(&s, "X-Request-Id");
    /* The answer comes after a second, so that "nothing yet" below is checked before it. */
    char *url = answer_url(h_token(), 401, "application/json", "x-request-id: req_123", OPENAI_401,
                           "&delay1=1000");
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, &cbs, &src), ES_OK);
    CHECK_EQ_INT(es_source_error_body(src, NULL, 0, NULL), ES_ERR_NOT_FOUND); /* nothing yet */
    CHECK(seen_wait(&s, &s.closed, 10000));
    pthread_mutex_lock(&s.mu);
    CHECK_EQ_INT(s.status, 401);
    CHECK_EQ_INT(s.hdr_st, ES_OK);
    CHECK(strcmp(s.hdr, "req_123") == 0);
    CHECK_EQ_INT(s.hdr_len, 7);
    CHECK(strcmp(s.ctype, "application/json") == 0);
    CHECK_EQ_INT(s.body_st, ES_OK);
    CHECK_EQ_INT(s.body_len, strlen(OPENAI_401));
    CHECK(strcmp(s.body, OPENAI_401) == 0);
    CHECK_EQ_INT(s.missing_st, ES_ERR_NOT_FOUND);
    CHECK_EQ_INT(s.opens, 0);
    pthread_mutex_unlock(&s.mu);

    /* From another thread, after the fact; snprintf-style copies. */
    char small[4] = "zzz";
    size_t n = 99;
    CHECK_EQ_INT(es_source_response_header(src, "x-request-id", small, sizeof small, &n), ES_OK);
    CHECK_EQ_INT(n, 7);
    CHECK(strcmp(small, "req") == 0); /* truncated, NUL-terminated */
    n = 99;
    CHECK_EQ_INT(es_source_response_header(src, "x-request-id", NULL, 0, &n), ES_OK);
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_INT(es_source_response_header(src, "x-request-id", NULL, 5, &n), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_source_response_header(src, NULL, small, sizeof small, &n), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_source_response_header(NULL, "a", small, sizeof small, &n), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_source_response_header(src, "x-\xff", small, sizeof small, &n), ES_ERR_INVALID_ARGUMENT);
    n = 99;
    CHECK_EQ_INT(es_source_response_header(src, "retry-after", small, sizeof small, &n), ES_ERR_NOT_FOUND);
    CHECK_EQ_INT(n, 99); /* untouched */
    CHECK(strstr(es_last_error_message(), "retry-after") != NULL);
    CHECK(strcmp(es_status_str(ES_ERR_NOT_FOUND), "ES_ERR_NOT_FOUND") == 0);
    char body[256];
    CHECK_EQ_INT(es_source_error_body(src, body, sizeof body, &n), ES_OK);
    CHECK_EQ_INT(n, strlen(OPENAI_401));
    CHECK(strcmp(body, OPENAI_401) == 0);
    CHECK_EQ_INT(es_source_error_body(src, body, 2, &n), ES_OK);
    CHECK(strcmp(body, "{") == 0);
    CHECK_EQ_INT(es_source_error_body(src, NULL, 1, &n), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_source_error_body(NULL, body, sizeof body, &n), ES_ERR_INVALID_ARGUMENT);

    /* Enumeration: lowercase names in order, NOT_FOUND past the end. */
    int found = 0;
    size_t i = 0;
    char name[64], value[64];
    size_t nl = 0, vl = 0;
    for (; es_source_response_header_at(src, i, name, sizeof name, &nl, value, sizeof value, &vl) == ES_OK; i++) {
        CHECK_EQ_INT(nl, strlen(name));
        for (size_t k = 0; k < nl; k++) CHECK(!(name[k] >= 'A' && name[k] <= 'Z'));
        if (strcmp(name, "x-request-id") == 0 && strcmp(value, "req_123") == 0) found++;
    }
    CHECK_EQ_INT(found, 1);
    CHECK(i >= 2); /* content-type too */
    nl = 99;
    CHECK_EQ_INT(es_source_response_header_at(src, i, name, sizeof name, &nl, NULL, 0, NULL), ES_ERR_NOT_FOUND);
    CHECK_EQ_INT(nl, 99);
    CHECK_EQ_INT(es_source_response_header_at(src, 0, NULL, 0, &nl, NULL, 0, &vl), ES_OK); /* lengths only */
    CHECK(nl > 0 && vl > 0);
    CHECK_EQ_INT(es_source_response_header_at(src, 0, NULL, 3, NULL, NULL, 0, NULL), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_source_response_header_at(NULL, 0, NULL, 0, NULL, NULL, 0, NULL), ES_ERR_INVALID_ARGUMENT);
    es_source_free(src);
    free(url);
    seen_destroy(&s);
}

/* max_error_body caps the kept body. */
static void test_error_body_is_capped(void) {
    seen_rec s;
    es_callbacks cbs = seen_callbacks(&s, "x-request-id");
    char *url = answer_url(h_token(), 401, "application/json", "x-request-id: req_9", OPENAI_401, "");
    es_options *o = base_opts();
    CHECK_EQ_INT(es_options_set_max_error_body(o, 10), ES_OK);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, &cbs, &src), ES_OK);
    es_options_free(o);
    CHECK(seen_wait(&s, &s.closed, 10000));
    pthread_mutex_lock(&s.mu);
    CHECK_EQ_INT(s.body_st, ES_OK);
    CHECK_EQ_INT(s.body_len, 10);
    CHECK(strncmp(s.body, OPENAI_401, 10) == 0 && s.body[10] == 0);
    CHECK(strcmp(s.hdr, "req_9") == 0);
    pthread_mutex_unlock(&s.mu);
    es_source_free(src);
    free(url);
    seen_destroy(&s);
}

/* Pull mode, a 429 with Retry-After: nothing is readable before es_source_next returns the error;
 * then its headers and body are. */
static void test_pull_429_retry_after(void) {
    char *url = answer_url(h_token(), 429, "application/json", "Retry-After: 7", "{}", "");
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, NULL, &src), ES_OK);
    char v[16];
    size_t n = 0;
    CHECK_EQ_INT(es_source_response_header(src, "retry-after", v, sizeof v, &n), ES_ERR_NOT_FOUND);
    es_event ev = {0};
    CHECK_EQ_INT(es_source_next(src, &ev, 10000 * h_slow()), ES_OK);
    CHECK_EQ_INT(ev.kind, ES_EVENT_ERROR);
    CHECK_EQ_INT(ev.error.status, 429);
    CHECK_EQ_INT(ev.ready_state, ES_CLOSED);
    es_event_clear(&ev);
    CHECK_EQ_INT(es_source_response_header(src, "Retry-After", v, sizeof v, &n), ES_OK);
    CHECK(strcmp(v, "7") == 0);
    CHECK_EQ_INT(n, 1);
    char body[16];
    CHECK_EQ_INT(es_source_error_body(src, body, sizeof body, &n), ES_OK);
    CHECK(strcmp(body, "{}") == 0);
    CHECK_EQ_INT(n, 2);
    es_source_free(src);
    free(url);
}

/* The headers of the response that opened the connection are readable inside on_open (callback
 * mode) and once the open event is returned (pull mode); there is no error body. */
static void test_headers_readable_on_open(void) {
    seen_rec s;
    es_callbacks cbs = seen_callbacks(&s, "X-Custom");
    char *url = answer_url(h_token(), 200, "text/event-stream", "x-custom: abc", "data: x\n\n", "&hold1=1");
    es_source *src = NULL;
    CHECK_EQ_INT(new_source(url, &cbs, &src), ES_OK);
    CHECK(seen_wait(&s, &s.opens, 10000));
    pthread_mutex_lock(&s.mu);
    CHECK_EQ_INT(s.hdr_st, ES_OK);
    CHECK(strcmp(s.hdr, "abc") == 0);
    CHECK(strcmp(s.ctype, "text/event-stream") == 0);
    CHECK_EQ_INT(s.body_st, ES_ERR_NOT_FOUND);
    pthread_mutex_unlock(&s.mu);
    es_source_free(src);
    free(url);
    seen_destroy(&s);

    url = answer_url(h_token(), 200, "text/event-stream; charset=utf-8", "x-custom: pull", "data: x\n\n", "&hold1=1");
    CHECK_EQ_INT(new_source(url, NULL, &src), ES_OK);
    es_event ev = {0};
    CHECK_EQ_INT(es_source_next(src, &ev, 10000 * h_slow()), ES_OK);
    CHECK_EQ_INT(ev.kind, ES_EVENT_OPEN);
    es_event_clear(&ev);
    char v[64];
    size_t n = 0;
    CHECK_EQ_INT(es_source_response_header(src, "x-custom", v, sizeof v, &n), ES_OK);
    CHECK(strcmp(v, "pull") == 0);
    CHECK_EQ_INT(es_source_response_header(src, "content-type", v, sizeof v, &n), ES_OK);
    CHECK(strcmp(v, "text/event-stream; charset=utf-8") == 0);
    CHECK_EQ_INT(es_source_error_body(src, v, sizeof v, &n), ES_ERR_NOT_FOUND);
    es_source_free(src);
    free(url);
}

/* ---- the log callback ---- */
#define LOGMAX 64
typedef struct log_rec {
    pthread_mutex_t mu;
    const char *needle; /* only records whose message contains it */
    int n;
    int level[LOGMAX];
    char msg[LOGMAX][256];
    int bad_target;
    int calls_after_off; /* set once logging is meant to be off */
    int off;
    es_status nested; /* es_set_log_callback from inside the callback */
} log_rec;

static log_rec g_log;

static void log_cb(void *ud, es_log_level level, es_str target, es_str message) {
    log_rec *l = (log_rec *)ud;
    char m[256];
    snprintf(m, sizeof m, "%.*s", (int)message.len, message.ptr);
    pthread_mutex_lock(&l->mu);
    if (l->off) l->calls_after_off++;
    if (strstr(m, l->needle) && l->n < LOGMAX) {
        if (!h_str_eq(target, "eventsource_native", 18)) l->bad_target++;
        l->level[l->n] = (int)level;
        snprintf(l->msg[l->n], sizeof l->msg[0], "%s", m);
        l->n++;
    }
    pthread_mutex_unlock(&l->mu);
    if (l->nested == ES_ERR_PANIC) l->nested = es_set_log_callback(NULL, NULL, ES_LOG_OFF);
}

/* The index of the first record at `level` whose message contains `part`, from `from` on; -1. */
static int log_find(log_rec *l, int level, const char *part, int from) {
    pthread_mutex_lock(&l->mu);
    int at = -1;
    for (int i = from; i < l->n && at < 0; i++)
        if (l->level[i] == level && strstr(l->msg[i], part)) at = i;
    pthread_mutex_unlock(&l->mu);
    return at;
}

static void log_dump(log_rec *l) {
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n; i++) fprintf(stderr, "  log %d: %s\n", l->level[i], l->msg[i]);
    pthread_mutex_unlock(&l->mu);
}

static void test_log_callback(void) {
    log_rec *l = &g_log;
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    char tok[64];
    snprintf(tok, sizeof tok, "%s", h_token());
    l->needle = tok;
    l->nested = ES_OK;
    CHECK_EQ_INT(es_set_log_callback(log_cb, l, 6), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_set_log_callback(log_cb, l, ES_LOG_DEBUG), ES_OK);
    /* Connection 1 opens and ends (reconnecting), connection 2 is a 500 (failed). */
    char *url = script_url(tok, "data: a\n\n", NULL, "&s2=500&c2=x");
    es_options *o = fast_opts();
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    char lines[8][LINE];
    int n = src ? pull_all(src, lines, 8) : 0;
    const char *want[] = {"open", "message|message|a|", "error|0|stream_ended|0", "error|2|http_status|500"};
    check_lines(lines, n, want, 4);
    es_source_free(src); /* logs "closed" on this thread */
    int c1 = log_find(l, ES_LOG_DEBUG, "connecting", 0);
    int op = log_find(l, ES_LOG_INFO, ": open", 0);
    int re = log_find(l, ES_LOG_WARN, "reconnecting in", 0);
    int c2 = log_find(l, ES_LOG_DEBUG, "connecting", c1 + 1);
    int fa = log_find(l, ES_LOG_ERROR, "failed: the server answered HTTP 500", 0);
    int cl = log_find(l, ES_LOG_DEBUG, "closed", 0);
    CHECK(c1 >= 0 && op > c1 && re > op && c2 > re && fa > c2 && cl > fa);
    CHECK(log_find(l, ES_LOG_WARN, "the server ended the stream", 0) == re);
    CHECK_EQ_INT(l->bad_target, 0);
    if (h_test_failed) log_dump(l);

    /* max_level WARN: only WARN and ERROR records. */
    pthread_mutex_lock(&l->mu);
    l->n = 0;
    pthread_mutex_unlock(&l->mu);
    CHECK_EQ_INT(es_set_log_callback(log_cb, l, ES_LOG_WARN), ES_OK);
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK); /* same token: 204 on connection 3 */
    n = src ? pull_all(src, lines, 8) : 0;
    es_source_free(src);
    pthread_mutex_lock(&l->mu);
    int only_warn = l->n >= 1;
    for (int i = 0; i < l->n; i++) only_warn &= l->level[i] <= ES_LOG_WARN;
    pthread_mutex_unlock(&l->mu);
    CHECK(only_warn);
    CHECK(log_find(l, ES_LOG_ERROR, "204", 0) >= 0);

    /* Calling es_set_log_callback from inside the callback is refused, not a deadlock. */
    l->nested = ES_ERR_PANIC; /* "not tried yet" */
    CHECK_EQ_INT(es_set_log_callback(log_cb, l, ES_LOG_DEBUG), ES_OK);
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    pull_all(src, lines, 8);
    es_source_free(src);
    CHECK_EQ_INT(l->nested, ES_ERR_WRONG_MODE);

    /* NULL turns logging off: the callback is not called any more. */
    CHECK_EQ_INT(es_set_log_callback(NULL, NULL, ES_LOG_TRACE), ES_OK);
    pthread_mutex_lock(&l->mu);
    l->off = 1;
    pthread_mutex_unlock(&l->mu);
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    pull_all(src, lines, 8);
    es_source_free(src);
    CHECK_EQ_INT(l->calls_after_off, 0);
    es_options_free(o);
    free(url);
    pthread_mutex_destroy(&l->mu);
}

/* An LLM-style completion: POST with headers and a JSON body; tokens, [DONE], then the stream
 * ends and the source closes instead of sending the request again. */
static void test_llm_post_is_sent_once(void) {
    char tok[64], url[256];
    snprintf(tok, sizeof tok, "%s", h_token());
    snprintf(url, sizeof url, "%s/llm?t=%s&tokens=3", h_base, tok);
    es_options *o = base_opts();
    es_options_set_retry_ms(o, 10);
    CHECK_EQ_INT(es_options_set_method(o, "POST"), ES_OK);
    CHECK_EQ_INT(es_options_set_header(o, "Authorization", "Bearer sk-test"), ES_OK);
    CHECK_EQ_INT(es_options_set_header(o, "Content-Type", "application/json"), ES_OK);
    const char *body = "{\"model\":\"m\",\"stream\":true}";
    CHECK_EQ_INT(es_options_set_body(o, (const uint8_t *)body, strlen(body)), ES_OK);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_options_free(o);
    char text[64] = "";
    int done = 0, closed = 0, messages = 0;
    es_event ev = {0};
    while (src && es_source_next(src, &ev, 10000 * h_slow()) == ES_OK) {
        if (ev.kind == ES_EVENT_MESSAGE) {
            messages++;
            if (h_str_eq(ev.message.data, "[DONE]", 6)) done = 1;
            const char *c = strstr(ev.message.data.ptr, "\"content\":\"");
            if (c && (size_t)(c - ev.message.data.ptr) < ev.message.data.len) {
                c += 11;
                size_t k = strlen(text);
                while (*c != '"' && k + 1 < sizeof text) text[k++] = *c++;
                text[k] = 0;
            }
        } else if (ev.kind == ES_EVENT_ERROR) {
            CHECK_EQ_INT(ev.error.ready_state, ES_CLOSED);
            CHECK_EQ_INT(ev.error.kind, ES_ERROR_KIND_STREAM_ENDED);
            char m[256];
            snprintf(m, sizeof m, "%.*s", (int)ev.error.message.len, ev.error.message.ptr);
            CHECK(strstr(m, "not sent again") != NULL);
            closed = 1;
        }
        es_event_clear(&ev);
    }
    CHECK_EQ_INT(messages, 4);
    CHECK(done);
    CHECK(closed);
    CHECK(strcmp(text, "tok1 tok2 tok3 ") == 0);
    CHECK_EQ_INT(es_source_ready_state(src), ES_CLOSED);
    es_source_free(src);
    h_sleep_ms(100); /* a second request would come after retry (10 ms) */
    char path[128];
    snprintf(path, sizeof path, "/log?t=%s", tok);
    char *log = h_http_get(path);
    CHECK(log != NULL);
    if (log) {
        CHECK_EQ_INT(count_of(log, "{\"method\""), 1);
        CHECK(strstr(log, "\"method\":\"POST\"") != NULL);
        CHECK(strstr(log, "\"authorization\":\"Bearer sk-test\"") != NULL);
        CHECK(strstr(log, "\"content-type\":\"application/json\"") != NULL);
        CHECK(strstr(log, "\\\"stream\\\":true") != NULL);
        if (h_test_failed) fprintf(stderr, "  log: %s\n", log);
        free(log);
    }
}

/* max_reconnects: a server that ends every stream at once is given up on after that many
 * reconnections in a row (CLOSED, message naming the option); the log shows each request. */
static void test_max_reconnects_gives_up(void) {
    char tok[64], url[256];
    snprintf(tok, sizeof tok, "%s", h_token());
    snprintf(url, sizeof url, "%s/scenario/instant-close?t=%s&retry=0", h_base, tok);
    es_options *o = base_opts();
    CHECK_EQ_INT(es_options_set_max_reconnects(o, 2), ES_OK);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_options_free(o);
    char lines[12][LINE];
    int n = src ? pull_all(src, lines, 12) : 0;
    const char *want[] = {"open", "error|0|stream_ended|0", "open", "error|0|stream_ended|0", "open",
                          "error|2|stream_ended|0"};
    check_lines(lines, n, want, 6);
    es_source_free(src);
    char path[128];
    snprintf(path, sizeof path, "/log?t=%s", tok);
    char *log = h_http_get(path);
    CHECK(log && count_of(log, "{\"method\"") == 3);
    free(log);

    /* The message of the final error says why. */
    snprintf(url, sizeof url, "%s/scenario/instant-close?t=%s_b&retry=0", h_base, tok);
    o = base_opts();
    es_options_set_max_reconnects(o, 0);
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_options_free(o);
    es_event ev = {0};
    char m[512] = "";
    while (src && es_source_next(src, &ev, 10000 * h_slow()) == ES_OK) {
        if (ev.kind == ES_EVENT_ERROR) {
            CHECK_EQ_INT(ev.ready_state, ES_CLOSED);
            snprintf(m, sizeof m, "%.*s", (int)ev.error.message.len, ev.error.message.ptr);
        }
        es_event_clear(&ev);
    }
    CHECK(strstr(m, "max_reconnects") != NULL);
    if (h_test_failed) fprintf(stderr, "  message: %s\n", m);
    es_source_free(src);
}

/* response_timeout: a server that accepts and never answers fails each attempt with a timeout
 * (the source keeps CONNECTING and retries); the message names the option. */
static void test_response_timeout(void) {
    CHECK_EQ_INT(es_options_set_response_timeout_ms(NULL, 5), ES_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(es_options_set_allow_https_downgrade(NULL, true), ES_ERR_INVALID_ARGUMENT);
    char url[256];
    snprintf(url, sizeof url, "%s/scenario/no-answer?t=%s", h_base, h_token());
    es_options *o = base_opts();
    CHECK_EQ_INT(es_options_set_response_timeout_ms(o, 200), ES_OK);
    CHECK_EQ_INT(es_options_set_allow_https_downgrade(o, false), ES_OK);
    es_options_set_retry_ms(o, 20);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_options_free(o);
    es_event ev = {0};
    int timeouts = 0;
    char m[512] = "";
    while (src && timeouts < 2 && es_source_next(src, &ev, 10000 * h_slow()) == ES_OK) {
        CHECK_EQ_INT(ev.kind, ES_EVENT_ERROR);
        if (ev.kind == ES_EVENT_ERROR) {
            CHECK_EQ_INT(ev.ready_state, ES_CONNECTING);
            CHECK_EQ_INT(ev.error.kind, ES_ERROR_KIND_TIMEOUT);
            snprintf(m, sizeof m, "%.*s", (int)ev.error.message.len, ev.error.message.ptr);
            CHECK(strstr(m, "response_timeout") != NULL);
            timeouts++;
        }
        es_event_clear(&ev);
    }
    CHECK_EQ_INT(timeouts, 2);
    if (h_test_failed) fprintf(stderr, "  message: %s\n", m);
    es_source_free(src);
}

/* retry_initial off: an unreachable host fails the source at once (one error, CLOSED, naming the
 * option); on (the default) with max_reconnects 1 it is retried once first. */
static void test_retry_initial(void) {
    es_options *o = base_opts();
    CHECK_EQ_INT(es_options_set_retry_initial(o, false), ES_OK);
    es_options_set_retry_ms(o, 10);
    es_source *src = NULL;
    double t0 = h_now_ms();
    CHECK_EQ_INT(es_source_new("http://127.0.0.1:1/", o, NULL, &src), ES_OK);
    es_options_free(o);
    es_event ev = {0};
    CHECK_EQ_INT(es_source_next(src, &ev, 10000 * h_slow()), ES_OK);
    CHECK_EQ_INT(ev.kind, ES_EVENT_ERROR);
    CHECK_EQ_INT(ev.ready_state, ES_CLOSED);
    CHECK_EQ_INT(ev.error.kind, ES_ERROR_KIND_CONNECT);
    char m[512];
    snprintf(m, sizeof m, "%.*s", (int)ev.error.message.len, ev.error.message.ptr);
    CHECK(strstr(m, "retry_initial") != NULL);
    es_event_clear(&ev);
    CHECK(h_now_ms() - t0 < 5000.0 * h_slow());
    CHECK_EQ_INT(es_source_next(src, &ev, 1000), ES_ERR_CLOSED);
    CHECK_EQ_INT(es_source_error_body(src, NULL, 0, NULL), ES_ERR_NOT_FOUND); /* no response */
    es_source_free(src);

    o = base_opts();
    es_options_set_retry_ms(o, 10);
    es_options_set_max_reconnects(o, 1);
    CHECK_EQ_INT(es_source_new("http://127.0.0.1:1/", o, NULL, &src), ES_OK);
    es_options_free(o);
    char lines[8][LINE];
    int n = src ? pull_all(src, lines, 8) : 0;
    const char *want[] = {"error|0|connect|0", "error|2|connect|0"};
    check_lines(lines, n, want, 2);
    es_source_free(src);
}

/* User-Agent: eventsource-native/VERSION by default, none after es_options_set_user_agent(NULL),
 * and the given one otherwise. */
static void user_agent_sent(const char *ua, int set, const char *want_in_log, int want_present) {
    char tok[64];
    snprintf(tok, sizeof tok, "%s", h_token());
    char *url = script_url(tok, "data: x\n\n", NULL, "");
    es_options *o = base_opts();
    es_options_set_reconnect(o, ES_RECONNECT_NEVER);
    if (set) CHECK_EQ_INT(es_options_set_user_agent(o, ua), ES_OK);
    es_source *src = NULL;
    CHECK_EQ_INT(es_source_new(url, o, NULL, &src), ES_OK);
    es_options_free(o);
    char lines[8][LINE];
    if (src) pull_all(src, lines, 8);
    es_source_free(src);
    char path[128];
    snprintf(path, sizeof path, "/log?t=%s", tok);
    char *log = h_http_get(path);
    CHECK(log != NULL);
    if (log) {
        CHECK_EQ_INT(count_of(log, "{\"method\""), 1);
        CHECK_EQ_INT(strstr(log, "\"user-agent\"") != NULL, want_present);
        if (want_in_log) CHECK(strstr(log, want_in_log) != NULL);
        if (h_test_failed) fprintf(stderr, "  log: %s\n", log);
        free(log);
    }
    free(url);
}

static void test_user_agent(void) {
    char want[64];
    snprintf(want, sizeof want, "\"user-agent\":\"eventsource-native/%s\"", es_version());
    user_agent_sent(NULL, 0, want, 1);
    user_agent_sent(NULL, 1, NULL, 0);
    user_agent_sent("my-agent/2.0", 1, "\"user-agent\":\"my-agent/2.0\"", 1);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "# transport: %s (ES_TEST_TRANSPORT)\n", h_transport());
    h_start_server();
    RUN(test_version_and_names);
    RUN(test_null_and_invalid_arguments);
    RUN(test_new_option_setters_validate);
    RUN(test_streams_over_each_transport);
    RUN(test_huge_max_event_size_keeps_split_lines);
    RUN(test_callbacks_open_message_error);
    RUN(test_origin_is_serialized);
    RUN(test_reconnect_last_event_id_and_retry);
    RUN(test_fatal_statuses);
    RUN(test_close_inside_callback);
    RUN(test_free_inside_callback);
    RUN(test_close_from_another_thread_while_streaming);
    RUN(test_pull_mode_with_poll);
    RUN(test_pull_mode_fatal);
    RUN(test_pull_blocking_next_woken_by_close);
    RUN(test_pull_free_while_next_waits);
    RUN(test_pull_close_and_free_while_next_waits);
    RUN(test_callback_free_while_calls_in_flight);
    RUN(test_callbacks_closing_each_other);
    RUN(test_create_close_cycles);
    RUN(test_fork_child_gets_a_working_library);
    RUN(test_error_401_json_body_and_headers);
    RUN(test_error_body_is_capped);
    RUN(test_pull_429_retry_after);
    RUN(test_headers_readable_on_open);
    RUN(test_log_callback);
    RUN(test_llm_post_is_sent_once);
    RUN(test_max_reconnects_gives_up);
    RUN(test_retry_initial);
    RUN(test_response_timeout);
    RUN(test_user_agent);
    h_stop_server();
    return h_summary();
}
