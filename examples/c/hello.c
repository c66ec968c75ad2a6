/* hello.c: print the first three messages of a stream with the callback API, then stop.
 *
 *   cc -std=c11 hello.c -o hello $(pkg-config --cflags --libs eventsource)    # or CMake
 *   ./hello http://127.0.0.1:PORT/stream?count=5
 *
 * Callbacks run on the library's runtime thread; main waits on a condition variable. */
#include <eventsource.h>

#include <pthread.h>
#include <stdio.h>

typedef struct state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int messages;
    int done;
} state;

static void on_message(void *ud, es_source *src, const es_message *m) {
    state *s = (state *)ud;
    printf("%.*s: %.*s\n", (int)m->type.len, m->type.ptr, (int)m->data.len, m->data.ptr);
    fflush(stdout);
    pthread_mutex_lock(&s->mu);
    if (++s->messages == 3) {
        es_source_close(src); /* allowed inside a callback: no further callback follows */
        s->done = 1;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_error(void *ud, es_source *src, const es_error *e) {
    state *s = (state *)ud;
    (void)src;
    fprintf(stderr, "error: %.*s\n", (int)e->message.len, e->message.ptr);
    if (e->ready_state == ES_CLOSED) {
        pthread_mutex_lock(&s->mu);
        s->done = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: hello URL\n");
        return 64;
    }
    state s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    es_callbacks cbs = {0};
    cbs.user_data = &s;
    cbs.on_message = on_message;
    cbs.on_error = on_error;
    es_source *src = NULL;
    if (es_source_new(argv[1], NULL, &cbs, &src) != ES_OK) {
        fprintf(stderr, "hello: %s\n", es_last_error_message());
        return 64;
    }
    pthread_mutex_lock(&s.mu);
    while (!s.done) pthread_cond_wait(&s.cv, &s.mu);
    pthread_mutex_unlock(&s.mu);
    es_source_free(src);
    return s.messages == 3 ? 0 : 2;
}
