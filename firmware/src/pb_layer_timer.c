/* pb_layer_timer.c - per-layer counter marks for PROFILE (see pb_layer_timer.h). */
#include "pb_layer_timer.h"

#include "pb_board.h"

void pb_layer_timer_init(pb_layer_timer_t *timer, uint64_t *marks, uint16_t cap)
{
    timer->marks = marks;
    timer->cap = cap;
    timer->count = 0u;
    timer->overflow = 0u;
}

/* Both entry points read the counter first: what the bookkeeping after the read costs
 * lands in the next interval, where the caller's calibration takes it off again. */
static void record(pb_layer_timer_t *timer, uint64_t now, uint32_t index)
{
    if (index != timer->count || index >= timer->cap) {
        timer->overflow = 1u;
        return;
    }
    timer->marks[index] = now;
    timer->count++;
}

void pb_layer_timer_start(pb_layer_timer_t *timer)
{
    const uint64_t now = pb_counter_read();
    timer->count = 0u;
    record(timer, now, 0u);
}

void pb_layer_timer_hook(void *context, uint16_t layer)
{
    const uint64_t now = pb_counter_read();
    record((pb_layer_timer_t *)context, now, (uint32_t)layer + 1u);
}
