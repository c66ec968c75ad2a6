/* bench_c URL COUNT: receives COUNT message events through the C callback API and prints
 * `events=N bytes=B seconds=S events_per_s=R` (same format as es-bench-rust). */
#define _POSIX_C_SOURCE 200809L
#include <eventsource.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct st {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long long count, seen, bytes;
    int done;
} st;

static void on_message(void *ud, es_source *src, const es_message *m) {
    st *s = (st *)ud;
    (void)src;
    s->seen++;
    s->bytes += m->data.len;
    if (s->seen == s->count) {
        pthread_mutex_lock(&s->mu);
        s->done = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

static void on_error(void *ud, es_source *src, const es_error *e) {
    (void)ud;
    (void)src;
    fprintf(stderr, "error: %.*s\n", (int)e->message.len, e->message.ptr);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_c URL COUNT\n");
        return 64;
    }
    st s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, strtoull(argv[2], NULL, 10), 0, 0, 0};
    es_callbacks cbs = {0};
    cbs.user_data = &s;
    cbs.on_message = on_message;
    cbs.on_error = on_error;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    es_source *src = NULL;
    if (es_source_new(argv[1], NULL, &cbs, &src) != ES_OK) {
        fprintf(stderr, "%s\n", es_last_error_message());
        return 64;
    }
    pthread_mutex_lock(&s.mu);
    while (!s.done) pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    es_source_free(src);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("events=%llu bytes=%llu seconds=%.4f events_per_s=%.0f\n", s.seen, s.bytes, secs, (double)s.seen / secs);
    return 0;
}
