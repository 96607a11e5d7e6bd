/* stop.c — stop strings over streamed text.
 *
 * Generated text arrives in pieces (one detokenized token at a time) and a stop string may
 * span several of them. The matcher keeps a pending tail: the longest suffix of the text seen
 * so far that is a proper prefix of some stop string. Everything before that tail can never
 * become part of a stop string and is emitted at once; the tail is emitted later if the text
 * goes another way, or dropped with the stop string when one completes. Nothing at or after
 * the first complete stop string is ever emitted.
 *
 * Cost: each push scans pending+text against each stop string, O(len × n_stops × max_stop).
 * Owner: one thread at a time (a scheduler slot). Empty stop strings are ignored (they would
 * match before anything is generated).
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

struct eng_stop {
    char **stops;
    size_t *lens;
    size_t n_stops;
    core_buf pending; /* held-back text, then the text of the current push */
    bool stopped;
};

int eng_stop_new(eng_stop **out, const char *const *stops, size_t n_stops, core_err *err)
{
    eng_stop *s = calloc(1, sizeof *s);
    if (!s) return core_err_set(err, CORE_NOMEM, "stop strings: out of memory");
    core_buf_init(&s->pending);
    if (n_stops) {
        s->stops = calloc(n_stops, sizeof *s->stops);
        s->lens = calloc(n_stops, sizeof *s->lens);
        if (!s->stops || !s->lens) goto nomem;
    }
    for (size_t i = 0; i < n_stops; i++) {
        if (!stops[i] || !stops[i][0]) continue;
        size_t len = strlen(stops[i]);
        char *c = malloc(len + 1);
        if (!c) goto nomem;
        memcpy(c, stops[i], len + 1);
        s->stops[s->n_stops] = c;
        s->lens[s->n_stops] = len;
        s->n_stops++;
    }
    *out = s;
    return CORE_OK;
nomem:
    eng_stop_free(s);
    return core_err_set(err, CORE_NOMEM, "stop strings: out of memory");
}

void eng_stop_free(eng_stop *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_stops; i++)
        free(s->stops[i]);
    free(s->stops);
    free(s->lens);
    core_buf_deinit(&s->pending);
    free(s);
}

/* Position of the earliest complete stop string in buf, or len if none. */
static size_t find_first_stop(const eng_stop *s, const char *buf, size_t len)
{
    size_t best = len;
    for (size_t i = 0; i < s->n_stops; i++) {
        size_t sl = s->lens[i];
        if (sl > len) continue;
        for (size_t pos = 0; pos + sl <= len && pos < best; pos++) {
            if (memcmp(buf + pos, s->stops[i], sl) == 0) {
                best = pos;
                break;
            }
        }
    }
    return best;
}

/* Length of the longest suffix of buf that is a proper prefix of some stop string. */
static size_t held_tail(const eng_stop *s, const char *buf, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < s->n_stops; i++) {
        size_t max = s->lens[i] - 1;
        if (max > len) max = len;
        for (size_t t = max; t > best; t--) {
            if (memcmp(buf + len - t, s->stops[i], t) == 0) {
                best = t;
                break;
            }
        }
    }
    return best;
}

bool eng_stop_push(eng_stop *s, const char *text, size_t len, core_buf *out)
{
    if (s->stopped) return true;
    if (s->n_stops == 0) {
        core_buf_append(out, text, len);
        return false;
    }
    if (core_buf_append(&s->pending, text, len) != CORE_OK) {
        /* Out of memory: emit what we hold rather than lose text. */
        core_buf_append(out, s->pending.data, s->pending.len);
        core_buf_append(out, text, len);
        core_buf_reset(&s->pending);
        return false;
    }
    const char *buf = s->pending.data;
    size_t n = s->pending.len;
    size_t stop_at = find_first_stop(s, buf, n);
    if (stop_at < n) {
        core_buf_append(out, buf, stop_at);
        core_buf_reset(&s->pending);
        s->stopped = true;
        return true;
    }
    size_t keep = held_tail(s, buf, n);
    core_buf_append(out, buf, n - keep);
    memmove(s->pending.data, buf + (n - keep), keep);
    s->pending.len = keep;
    s->pending.data[keep] = '\0';
    return false;
}

void eng_stop_flush(eng_stop *s, core_buf *out)
{
    if (!s->stopped && s->pending.len) core_buf_append(out, s->pending.data, s->pending.len);
    core_buf_reset(&s->pending);
}
