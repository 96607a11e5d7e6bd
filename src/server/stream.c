/* stream.c — streaming responses (NDJSON and SSE) fed by a producer.
 *
 * MHD (thread per connection) calls our reader whenever it can send more; the reader blocks
 * on the producer in short waits (100 ms) so that between waits it can notice a client that
 * hung up (poll for POLLRDHUP on the connection's socket) and a forced shutdown. Either one
 * cancels the producer, which cancels the generation within one token.
 *
 * Ownership: a srv_stream is held by the srv_req (released when MHD reports the request
 * done) and by the MHD response (released by its free callback); the producer is freed
 * with the last reference. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "server/internal.h"

struct srv_stream {
    atomic_int refs;
    atomic_bool cancel_done;   /* the producer's cancel was called */
    srv_producer p;
    srv_server *srv;
    core_buf buf;              /* bytes produced, not yet handed to MHD; owned by the reader */
    size_t off;
    bool ended;
    int fd;                    /* the connection's socket, -1 if unknown */
};

static void stream_cancel(srv_stream *s)
{
    bool expected = false;
    if (atomic_compare_exchange_strong(&s->cancel_done, &expected, true) && s->p.cancel)
        s->p.cancel(s->p.ctx);
}

static void stream_release(srv_stream *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    if (s->p.free) s->p.free(s->p.ctx);
    core_buf_deinit(&s->buf);
    free(s);
}

static bool client_gone(int fd)
{
    if (fd < 0) return false;
    struct pollfd pfd = {.fd = fd, .events = POLLRDHUP};
    if (poll(&pfd, 1, 0) <= 0) return false;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    srv_stream *s = cls;
    for (;;) {
        if (s->off < s->buf.len) {
            size_t n = s->buf.len - s->off;
            if (n > max) n = max;
            memcpy(out, s->buf.data + s->off, n);
            s->off += n;
            return (ssize_t)n;
        }
        if (s->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(&s->cancel_done)) return MHD_CONTENT_READER_END_WITH_ERROR;
        core_buf_reset(&s->buf);
        s->off = 0;
        if (atomic_load(&s->srv->force_stop) || client_gone(s->fd)) {
            stream_cancel(s);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (s->p.next(s->p.ctx, &s->buf, 100) == SRV_NEXT_END) s->ended = true;
    }
}

static void response_free(void *cls)
{
    stream_release(cls);
}

enum MHD_Result srv_reply_stream(srv_req *r, unsigned status, const char *ctype,
                                 const srv_producer *p)
{
    srv_stream *s = calloc(1, sizeof *s);
    if (!s) {
        if (p->free) p->free(p->ctx);
        return srv_reply_error(r, 500, "out of memory");
    }
    atomic_init(&s->refs, 2);
    atomic_init(&s->cancel_done, false);
    s->p = *p;
    s->srv = r->srv;
    s->fd = -1;
    core_buf_init(&s->buf);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) s->fd = ci->connect_fd;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, s, response_free);
    if (!resp) {
        stream_release(s);
        stream_release(s);
        return srv_reply_error(r, 500, "out of memory");
    }
    r->stream = s;
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (r->origin[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
    enum MHD_Result res = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    r->replied = true;
    return res;
}

void srv_stream_request_done(srv_stream *s, bool completed_ok)
{
    if (!completed_ok) stream_cancel(s);
    stream_release(s);
}
