/* Lazily moved connection timeouts; see timer.h. */
#include "net/timer.h"

static void on_fire(uv_timer_t *h);

static void arm_at(struct mg_timer *t, uint64_t now, uint64_t at)
{
    t->armed = at;
    uv_timer_start(&t->h, on_fire, at > now ? at - now : 0, 0);
}

static void on_fire(uv_timer_t *h)
{
    struct mg_timer *t = (struct mg_timer *)h;
    t->armed = 0;
    if (t->due == 0)
        return; /* stopped since it was armed */
    uint64_t now = uv_now(h->loop);
    if (now < t->due) {
        arm_at(t, now, t->due); /* moved later since it was armed */
        return;
    }
    if (t->repeat) {
        t->due = now + t->repeat;
        arm_at(t, now, t->due);
    } else {
        t->due = 0;
    }
    t->cb(h);
}

void mg_timer_init(uv_loop_t *loop, struct mg_timer *t, void *data)
{
    uv_timer_init(loop, &t->h);
    t->h.data = data;
    t->cb = NULL;
    t->due = t->repeat = t->armed = 0;
}

void mg_timer_start(struct mg_timer *t, uv_timer_cb cb, uint64_t ms, uint64_t repeat)
{
    uint64_t now = uv_now(t->h.loop);
    t->cb = cb;
    t->repeat = repeat;
    /* Loop time starts well above 0 in practice, but 0 means "stopped". */
    t->due = now + ms ? now + ms : 1;
    if (t->armed == 0 || t->armed > t->due)
        arm_at(t, now, t->due);
}

void mg_timer_stop(struct mg_timer *t)
{
    t->due = 0;
}

void mg_timer_close(struct mg_timer *t, uv_close_cb close_cb)
{
    t->due = 0;
    uv_close((uv_handle_t *)&t->h, close_cb);
}
