/* Unit tests for the lazily moved timers (src/net/timer): on a real libuv
 * loop, a timer fires once at its latest deadline however often it was
 * moved later, at once-earlier deadlines, never after a stop, repeats, and
 * a stopped timer that is still armed underneath fires nothing. */
#include "net/timer.h"
#include "tap.h"

#include <stdbool.h>

struct probe {
    uv_loop_t *loop;
    struct mg_timer t;
    int fired;
    uint64_t at[8]; /* loop time of each firing */
    int stop_after; /* stop the timer on this firing (repeating tests) */
};

static void on_probe(uv_timer_t *h)
{
    struct probe *p = h->data;
    if (p->fired < 8)
        p->at[p->fired] = uv_now(p->loop);
    p->fired++;
    if (p->stop_after && p->fired == p->stop_after)
        mg_timer_stop(&p->t);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void probe_init(struct probe *p, uv_loop_t *loop)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    mg_timer_init(loop, &p->t, p);
}

/* Runs the loop until nothing is armed (every test's timers end stopped or
 * fired), bounded by a guard timer. */
static void on_guard(uv_timer_t *h)
{
    uv_stop(h->loop);
}

static void run(uv_loop_t *loop)
{
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, 3000, 0);
    uv_unref((uv_handle_t *)&guard);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* A callback that moves the timer later a few times from inside the loop
 * (as a connection does per request), and once earlier. */
struct mover {
    struct probe *p;
    uv_timer_t h;
    int step;
    uint64_t want; /* loop time the probe must fire at (not before) */
};

static void on_move(uv_timer_t *h)
{
    struct mover *m = h->data;
    uint64_t now = uv_now(h->loop);
    if (m->step < 4) {
        mg_timer_start(&m->p->t, on_probe, 60, 0); /* later each time */
        m->want = now + 60;
        m->step++;
        uv_timer_start(h, on_move, 20, 0);
        return;
    }
    uv_close((uv_handle_t *)h, on_closed);
}

int main(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct probe p;

    /* Fires once, not before its time. */
    probe_init(&p, &loop);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    mg_timer_start(&p.t, on_probe, 30, 0);
    run(&loop);
    TAP_IS_INT(p.fired, 1, "a timer fires once");
    TAP_OK(p.at[0] >= t0 + 30, "not before its deadline (%llu ms)",
           (unsigned long long)(p.at[0] - t0));
    mg_timer_close(&p.t, on_closed);
    run(&loop);

    /* Stopped before its time: nothing, though libuv's timer stays armed. */
    probe_init(&p, &loop);
    mg_timer_start(&p.t, on_probe, 20, 0);
    mg_timer_stop(&p.t);
    TAP_OK(uv_is_active((uv_handle_t *)&p.t.h), "a stopped timer stays armed underneath");
    run(&loop);
    TAP_IS_INT(p.fired, 0, "a stopped timer does not fire");
    TAP_OK(!uv_is_active((uv_handle_t *)&p.t.h), "and is disarmed after its spurious wake-up");
    mg_timer_close(&p.t, on_closed);
    run(&loop);

    /* Moved later several times while armed: fires once, at the last
     * deadline, not at any earlier one. */
    probe_init(&p, &loop);
    struct mover m = {.p = &p};
    uv_timer_init(&loop, &m.h);
    m.h.data = &m;
    mg_timer_start(&p.t, on_probe, 30, 0);
    uv_timer_start(&m.h, on_move, 10, 0);
    run(&loop);
    TAP_IS_INT(p.fired, 1, "moved later four times: fires once");
    TAP_OK(p.at[0] >= m.want, "at the last deadline (%lld ms from it)",
           (long long)(p.at[0] - m.want));
    mg_timer_close(&p.t, on_closed);
    run(&loop);

    /* Moved earlier: re-armed at once, fires at the earlier deadline. */
    probe_init(&p, &loop);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    mg_timer_start(&p.t, on_probe, 2000, 0);
    mg_timer_start(&p.t, on_probe, 20, 0);
    run(&loop);
    TAP_IS_INT(p.fired, 1, "moved earlier: fires once");
    TAP_OK(p.at[0] >= t0 + 20 && p.at[0] < t0 + 1000, "at the earlier deadline (%llu ms)",
           (unsigned long long)(p.at[0] - t0));
    mg_timer_close(&p.t, on_closed);
    run(&loop);

    /* Stopped, then started again later than the armed time. */
    probe_init(&p, &loop);
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    mg_timer_start(&p.t, on_probe, 10, 0);
    mg_timer_stop(&p.t);
    mg_timer_start(&p.t, on_probe, 50, 0);
    run(&loop);
    TAP_IS_INT(p.fired, 1, "stopped and restarted: fires once");
    TAP_OK(p.at[0] >= t0 + 50, "at the new deadline (%llu ms)", (unsigned long long)(p.at[0] - t0));
    mg_timer_close(&p.t, on_closed);
    run(&loop);

    /* Repeating, stopped from its own callback on the third firing. */
    probe_init(&p, &loop);
    p.stop_after = 3;
    uv_update_time(&loop);
    t0 = uv_now(&loop);
    mg_timer_start(&p.t, on_probe, 10, 10);
    run(&loop);
    TAP_IS_INT(p.fired, 3, "a repeating timer fires until stopped");
    TAP_OK(p.at[1] >= p.at[0] + 10 && p.at[2] >= p.at[1] + 10, "a period apart");
    mg_timer_close(&p.t, on_closed);
    run(&loop);

    /* Zero: the next loop iteration. */
    probe_init(&p, &loop);
    mg_timer_start(&p.t, on_probe, 0, 0);
    TAP_IS_INT(p.fired, 0, "zero ms: not from inside start");
    uv_run(&loop, UV_RUN_NOWAIT);
    TAP_IS_INT(p.fired, 1, "zero ms: on the next iteration");
    mg_timer_close(&p.t, on_closed);
    run(&loop);

    TAP_IS_INT(uv_loop_close(&loop), 0, "every handle closed");
    return tap_done();
}
