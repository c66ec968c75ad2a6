/* tail.c: print the events of a server-sent-events stream, one line each: the C face of the
 * `tail` example (same arguments and output as examples/src/bin/tail.rs).
 *
 *   cc -std=c11 -O2 tail.c -o tail $(pkg-config --cflags --libs eventsource)    # or CMake
 *   ./tail URL [--json] [--header 'Name: value']... [--last-event-id ID] [--retry MS]
 *          [--with-credentials] [--method M] [--body TEXT] [--max-events N] [--events T,T...]
 *
 * It uses the pull API the way an event loop would: poll() on es_source_fd() and a self-pipe
 * for SIGINT, then es_source_next(..., 0) until the queue is drained.
 * Exit status: 0 after --max-events messages, 2 when the source fails for good, 130 on Ctrl-C,
 * 64 for bad arguments or an invalid URL. */
#define _POSIX_C_SOURCE 200809L
#include <eventsource.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: tail URL [--json] [--header 'Name: value']... [--last-event-id ID] [--retry MS] "
    "[--with-credentials] [--method M] [--body TEXT] [--max-events N] [--events TYPE,TYPE...]\n";

/* ---- a growable output line ---- */
typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap) b->cap = b->cap ? b->cap * 2 : 256;
        b->p = (char *)realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* JSON string literal: UTF-8 kept as is, controls escaped (as the Rust tail does). */
static void put_json(buf *b, es_str s) {
    put(b, "\"", 1);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        char esc[8];
        switch (c) {
        case '"': puts_(b, "\\\""); break;
        case '\\': puts_(b, "\\\\"); break;
        case '\n': puts_(b, "\\n"); break;
        case '\r': puts_(b, "\\r"); break;
        case '\t': puts_(b, "\\t"); break;
        case 0x08: puts_(b, "\\b"); break;
        case 0x0c: puts_(b, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                puts_(b, esc);
            } else {
                put(b, (const char *)&c, 1);
            }
        }
    }
    put(b, "\"", 1);
}

/* Text for a terminal, as the Rust tail's escape(): a backslash, LF, CR and tab as \\ \n \r \t,
 * and every other control character (C0, DEL, and C1 = U+0080..U+009F, in UTF-8 C2 80..C2 9F)
 * as \u{HEX}, so a stream cannot drive the terminal. The input is UTF-8 (the library's). */
static void put_escaped(buf *b, es_str s) {
    char esc[16];
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        unsigned cp = 0x100; /* not a control character */
        if (c == '\\') puts_(b, "\\\\");
        else if (c == '\n') puts_(b, "\\n");
        else if (c == '\r') puts_(b, "\\r");
        else if (c == '\t') puts_(b, "\\t");
        else if (c < 0x20 || c == 0x7f) cp = c;
        else if (c == 0xc2 && i + 1 < s.len && (unsigned char)s.ptr[i + 1] >= 0x80 &&
                 (unsigned char)s.ptr[i + 1] <= 0x9f)
            cp = (unsigned char)s.ptr[++i];
        else put(b, (const char *)&c, 1);
        if (cp != 0x100) {
            snprintf(esc, sizeof esc, "\\u{%x}", cp);
            puts_(b, esc);
        }
    }
}

static void format_event(buf *b, const es_event *ev, int json) {
    char num[64];
    if (ev->kind == ES_EVENT_OPEN) {
        puts_(b, json ? "{\"kind\":\"open\",\"readyState\":1}" : "open");
    } else if (ev->kind == ES_EVENT_MESSAGE) {
        const es_message *m = &ev->message;
        if (json) {
            puts_(b, "{\"kind\":\"message\",\"type\":");
            put_json(b, m->type);
            puts_(b, ",\"data\":");
            put_json(b, m->data);
            puts_(b, ",\"lastEventId\":");
            put_json(b, m->last_event_id);
            puts_(b, ",\"origin\":");
            put_json(b, m->origin);
            puts_(b, ",\"readyState\":1}");
        } else {
            put_escaped(b, m->type);
            if (m->last_event_id.len) {
                puts_(b, " #");
                put_escaped(b, m->last_event_id);
            }
            puts_(b, ": ");
            put_escaped(b, m->data);
        }
    } else if (ev->kind == ES_EVENT_ERROR) {
        const es_error *e = &ev->error;
        if (json) {
            snprintf(num, sizeof num, "{\"kind\":\"error\",\"readyState\":%u,\"message\":", (unsigned)e->ready_state);
            puts_(b, num);
            put_json(b, e->message);
            if (e->status) snprintf(num, sizeof num, ",\"status\":%u}", (unsigned)e->status);
            else snprintf(num, sizeof num, ",\"status\":null}");
            puts_(b, num);
        } else {
            puts_(b, "error: ");
            put_escaped(b, e->message);
            if (e->status) {
                snprintf(num, sizeof num, " (HTTP %u)", (unsigned)e->status);
                puts_(b, num);
            }
            puts_(b, e->ready_state == ES_CLOSED ? ", closed" : ", reconnecting");
        }
    }
    put(b, "\n", 1);
}

/* ---- arguments ---- */
typedef struct args {
    const char *url;
    int json;
    long long max_events; /* -1: none */
    char **events;        /* "message" plus --events */
    size_t n_events;
} args;

static int usage_error(const char *fmt, const char *arg) {
    if (fmt) {
        fputs("tail: ", stderr);
        fprintf(stderr, fmt, arg);
        fputc('\n', stderr);
    }
    fputs(USAGE, stderr);
    return 64;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
    return s;
}

static int parse_u64(const char *s, unsigned long long *out) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    errno = 0;
    *out = strtoull(s, NULL, 10);
    return errno == 0;
}

static void add_event_type(args *a, const char *t, size_t n) {
    a->events = (char **)realloc(a->events, (a->n_events + 1) * sizeof *a->events);
    a->events[a->n_events] = strndup(t, n);
    a->n_events++;
}

/* Returns 0 on success, else the exit code (64). */
static int parse_args(int argc, char **argv, args *a, es_options *o) {
    a->url = NULL;
    a->json = 0;
    a->max_events = -1;
    add_event_type(a, "message", 7);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        int needs = !strcmp(arg, "--header") || !strcmp(arg, "--last-event-id") || !strcmp(arg, "--retry") ||
                    !strcmp(arg, "--method") || !strcmp(arg, "--body") || !strcmp(arg, "--max-events") ||
                    !strcmp(arg, "--events");
        if (needs) {
            if (i + 1 >= argc) return usage_error("%s needs a value", arg);
            val = argv[++i];
        }
        unsigned long long n;
        if (!strcmp(arg, "--json")) {
            a->json = 1;
        } else if (!strcmp(arg, "--with-credentials")) {
            es_options_set_with_credentials(o, true);
        } else if (!strcmp(arg, "--header")) {
            char *copy = strdup(val), *colon = strchr(copy, ':');
            if (!colon) {
                free(copy);
                return usage_error("--header \"%s\": expected 'Name: value'", val);
            }
            *colon = 0;
            es_status st = es_options_set_header(o, trim(copy), trim(colon + 1));
            free(copy);
            if (st != ES_OK) return usage_error("%s", es_last_error_message());
        } else if (!strcmp(arg, "--last-event-id")) {
            es_options_set_last_event_id(o, val);
        } else if (!strcmp(arg, "--retry")) {
            if (!parse_u64(val, &n)) return usage_error("--retry \"%s\": expected milliseconds", val);
            es_options_set_retry_ms(o, n);
        } else if (!strcmp(arg, "--method")) {
            es_options_set_method(o, val);
        } else if (!strcmp(arg, "--body")) {
            es_options_set_body(o, (const uint8_t *)val, strlen(val));
        } else if (!strcmp(arg, "--max-events")) {
            if (!parse_u64(val, &n)) return usage_error("--max-events \"%s\": expected a count", val);
            a->max_events = (long long)n;
        } else if (!strcmp(arg, "--events")) {
            for (const char *p = val; *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                if (len) add_event_type(a, p, len);
                p += len + (comma ? 1 : 0);
            }
        } else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            return usage_error(NULL, NULL);
        } else if (arg[0] == '-') {
            return usage_error("unknown option %s", arg);
        } else if (!a->url) {
            a->url = arg;
        } else {
            return usage_error("unexpected argument \"%s\"", arg);
        }
    }
    if (!a->url) return usage_error("missing URL%s", "");
    return 0;
}

static int listened(const args *a, es_str type) {
    for (size_t i = 0; i < a->n_events; i++)
        if (strlen(a->events[i]) == type.len && memcmp(a->events[i], type.ptr, type.len) == 0) return 1;
    return 0;
}

/* ---- SIGINT through a self-pipe, so poll() wakes up ---- */
static int sig_pipe[2] = {-1, -1};
static void on_sigint(int sig) {
    (void)sig;
    int saved = errno;
    if (write(sig_pipe[1], "x", 1) < 0) { /* nothing to do */ }
    errno = saved;
}

static int write_all(const char *p, size_t n) {
    return fwrite(p, 1, n, stdout) == n;
}

static int run(es_source *src, const args *a) {
    struct pollfd fds[2] = {{es_source_fd(src), POLLIN, 0}, {sig_pipe[0], POLLIN, 0}};
    buf line = {0};
    long long messages = 0;
    int code = -1;
    while (code < 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            code = 2;
            break;
        }
        if (fds[1].revents) {
            es_source_close(src);
            code = 130;
            break;
        }
        es_event ev = {0};
        es_status st;
        while (code < 0 && (st = es_source_next(src, &ev, 0)) == ES_OK) {
            /* A message named `error` reaches the error listener, as in a browser: it is printed,
             * and counted only when its type is listened to as well. */
            int counted = ev.kind == ES_EVENT_MESSAGE && listened(a, ev.message.type);
            int named_error = ev.kind == ES_EVENT_MESSAGE && ev.message.type.len == 5 &&
                              memcmp(ev.message.type.ptr, "error", 5) == 0;
            int skip = ev.kind == ES_EVENT_MESSAGE && !counted && !named_error;
            if (!skip) {
                if (counted) messages++;
                line.n = 0;
                format_event(&line, &ev, a->json);
                if (!write_all(line.p, line.n)) code = 0; /* stdout closed (| head) */
                else if (ev.kind == ES_EVENT_ERROR && ev.ready_state == ES_CLOSED) code = 2;
                else if (a->max_events >= 0 && messages >= a->max_events) code = 0;
            }
            es_event_clear(&ev);
        }
        if (code < 0 && st == ES_ERR_CLOSED) code = 2;
        if (fflush(stdout) != 0 && code < 0) code = 0; /* one flush per batch: whole lines */
    }
    fflush(stdout);
    free(line.p);
    return code;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    static char out_buf[1 << 16];
    setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
    es_options *o = es_options_new();
    args a = {0};
    int code = parse_args(argc, argv, &a, o);
    es_source *src = NULL;
    if (code == 0 && es_source_new(a.url, o, NULL, &src) != ES_OK) {
        fprintf(stderr, "tail: %s\n", es_last_error_message());
        code = 64;
    }
    es_options_free(o);
    if (code == 0) {
        if (pipe(sig_pipe) != 0) return 1;
        fcntl(sig_pipe[0], F_SETFD, FD_CLOEXEC);
        fcntl(sig_pipe[1], F_SETFD, FD_CLOEXEC);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        code = run(src, &a);
        es_source_free(src);
    }
    for (size_t i = 0; i < a.n_events; i++) free(a.events[i]);
    free(a.events);
    return code;
}
