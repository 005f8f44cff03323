/*
 * pb_layer_timer.h - times the layers of one model run: a pb_model_layer_hook_t that
 * stores a counter reading (pb_counter_read: SysTick under QEMU, DWT on hardware) as
 * each layer finishes. The caller owns the storage; nothing here is global.
 *
 * marks[0] is the start (pb_layer_timer_start), marks[1 + i] the end of layer i, so
 * layer i took marks[1 + i] - marks[i], plus what the timer itself costs: measure that
 * by starting and hooking with nothing in between (see pb_protocol.c).
 */
#ifndef PB_LAYER_TIMER_H
#define PB_LAYER_TIMER_H

#include <stdint.h>

typedef struct {
    uint64_t *marks;  /* caller-owned: the start, then one reading per layer */
    uint16_t cap;     /* entries in marks: at most cap - 1 layers */
    uint16_t count;   /* marks written so far */
    uint8_t overflow; /* a layer arrived past cap or out of order: the marks are incomplete */
} pb_layer_timer_t;

void pb_layer_timer_init(pb_layer_timer_t *timer, uint64_t *marks, uint16_t cap);

/* Records the start (marks[0]); call it right before the run. */
void pb_layer_timer_start(pb_layer_timer_t *timer);

/* The hook: pass it to pb_model_run_hooked with the timer as context. */
void pb_layer_timer_hook(void *context, uint16_t layer);

#endif /* PB_LAYER_TIMER_H */
