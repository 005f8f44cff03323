#ifndef PB_BINCONV_WALK_H
#define PB_BINCONV_WALK_H

#include "pb_kernels.h"
#include "pb_popcount.h"

/* The 3x3 binary conv's walk over the packed window, shared by the popbin and requant kernels.
 * `branch` turns one output's popcount(a XOR w) into what is added to the residual. Both the
 * walk and the branch are forced inline, so each kernel compiles to one flat loop with no call. */
typedef int32_t (*pb_branch_fn)(const pb_binconv_params_t *p, int out_channel, uint32_t count);

static inline __attribute__((always_inline)) void pb_binconv_walk(const pb_binconv_params_t *p,
                                                                  const uint32_t *bits, pb_residual_t *x_hwc,
                                                                  pb_branch_fn branch) {
    const uint32_t window = p->window_words, row = p->padded_row_words;
    const uint32_t *out_row = bits; /* top-left word of the window of output (0, 0) */
    for (int oy = 0; oy < p->out_height; oy++) {
        const uint32_t *win = out_row;
        for (int ox = 0; ox < p->out_width; ox++) {
            const uint32_t *wt = p->weights;
            for (int o = 0; o < p->out_channels; o++) {
                uint32_t count = 0;
                const uint32_t *a = win;
                for (int ky = 0; ky < 3; ky++) {
                    for (uint32_t k = 0; k < window; k++) count += pb_popcount32(a[k] ^ *wt++);
                    a += row;
                }
                *x_hwc = (pb_residual_t)(*x_hwc + branch(p, o, count));
                x_hwc++;
            }
            win += p->step_words;
        }
        out_row += p->row_step_words;
    }
}

#endif
