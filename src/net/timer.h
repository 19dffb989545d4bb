/* Connection timeouts that are cheap to move. A connection's deadline
 * changes several times per request (header timeout, send watchdog,
 * keep-alive idle; on the upstream side exchange and pool idle), and each
 * uv_timer_start/stop is a removal and an insertion in libuv's timer heap.
 * An mg_timer keeps its deadline in a field instead: moving it later or
 * stopping it touches no heap, and the libuv timer underneath stays armed
 * for the earliest deadline it was given; when it fires early it re-arms
 * for what is left (nginx's lazy timer updates do the same). Only a
 * deadline earlier than the armed one re-arms at once. The cost is at most
 * one spurious wake-up per timeout period of a connection. */
#ifndef MG_NET_TIMER_H
#define MG_NET_TIMER_H

#include <stdint.h>
#include <uv.h>

struct mg_timer {
    uv_timer_t h; /* h.data is the owner's; callbacks get &h as libuv's do */
    uv_timer_cb cb;
    uint64_t due;    /* loop time (ms) the callback is due at; 0: stopped */
    uint64_t repeat; /* ms, 0 = once */
    uint64_t armed;  /* the loop time h fires at; 0: h not armed */
};

void mg_timer_init(uv_loop_t *loop, struct mg_timer *t, void *data);
/* Runs cb once ms from now (loop time), then every repeat ms if repeat is
 * not 0; replaces whatever was set before. */
void mg_timer_start(struct mg_timer *t, uv_timer_cb cb, uint64_t ms, uint64_t repeat);
/* The callback will not run (until started again). */
void mg_timer_stop(struct mg_timer *t);
/* Closes the handle (libuv's uv_close on t->h): close_cb runs later. */
void mg_timer_close(struct mg_timer *t, uv_close_cb close_cb);

#endif
