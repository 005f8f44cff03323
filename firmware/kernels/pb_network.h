/* A binary network as data: the stem, a table of binary blocks, the head; run by one loop. */
#ifndef PB_NETWORK_H
#define PB_NETWORK_H

#include "pb_kernels.h"

/* Which conv a block runs: its branch is +-delta (PopBin), +-delta or 0 (ternary PopBin) or a requantized p
 * (the baseline).
 * PB_BLOCK_POPBIN is 0, so the popbin tables the exporter writes need not name it. */
#define PB_BLOCK_POPBIN  0u
#define PB_BLOCK_REQUANT 1u
#define PB_BLOCK_TERNARY 2u

typedef struct {
    uint8_t kind; /* PB_BLOCK_* */
    pb_rsign_params_t rsign;
    const pb_sumpool_params_t *pool; /* stride-2 blocks only, else NULL */
    pb_binconv_params_t conv;
} pb_block_t;

/* The multiply-free options (pb_model_config.h says which a model takes): the bit-plane stem instead of the
 * int8 one (the table fills `bitstem`, `stem` stays empty), and the shift head (`head.weight` holds its codes). */
#ifndef PB_MODEL_STEM_BITPLANES
#define PB_MODEL_STEM_BITPLANES 0
#endif
#ifndef PB_MODEL_HEAD_SHIFT
#define PB_MODEL_HEAD_SHIFT 0
#endif

typedef struct {
    pb_stem_params_t stem;
#if PB_MODEL_STEM_BITPLANES
    pb_bitstem_params_t bitstem;
#endif
    const pb_block_t *blocks;
    uint16_t num_blocks;
    pb_head_params_t head;
} pb_network_t;

/* Called after the stem (layer 0), after each block (1..num_blocks) and after the head; lets
 * firmware time layers without the kernels knowing about timers. Same type as pb_model.h's
 * pb_model_layer_hook_t, so a model passes its caller's hook straight through. */
typedef void (*pb_layer_hook_t)(void *context, uint16_t layer);

typedef struct {
    pb_residual_t *residual; /* largest H*W*C of any stage */
    uint32_t *bits;          /* largest (H+2)*(W+2)*words of any binary conv input */
    int32_t *pooled;         /* head channels */
    pb_layer_hook_t hook;    /* may be NULL */
    void *hook_context;
} pb_workspace_t;

int pb_network_run(const pb_network_t *net, const pb_workspace_t *ws, const uint8_t *image_chw, int32_t *logits,
                   uint32_t *class_index);

#endif
