#include "pb_network.h"

/* Only a model with ternary blocks links the ternary conv (its config says so): other firmware stays
 * without its code, and would answer a ternary block with PB_ERR_KIND. */
#ifndef PB_MODEL_TERNARY
#define PB_MODEL_TERNARY 0
#endif

#define PB_CHECK(call)              \
    do {                            \
        const int status_ = (call); \
        if (status_ != PB_OK) return status_; \
    } while (0)

int pb_network_run(const pb_network_t *net, const pb_workspace_t *ws, const uint8_t *image_chw,
                   int32_t *logits, uint32_t *class_index) {
    if (!net || !ws || !image_chw || !logits || !class_index) return PB_ERR_NULL;
#if PB_MODEL_STEM_BITPLANES /* the bit buffer holds the planes until the first RSign overwrites them */
    PB_CHECK(pb_stem_bitplanes(&net->bitstem, image_chw, ws->bits, ws->residual));
#else
    PB_CHECK(pb_stem_conv_thermometer(&net->stem, image_chw, ws->residual));
#endif
    if (ws->hook) ws->hook(ws->hook_context, 0);
    for (uint16_t i = 0; i < net->num_blocks; i++) {
        const pb_block_t *blk = &net->blocks[i];
        /* Bits first: the stride-2 shortcut then pools the residual in place under them. */
        PB_CHECK(pb_rsign_pack(&blk->rsign, ws->residual, ws->bits));
        if (blk->pool) PB_CHECK(pb_sumpool2x2_dup(blk->pool, ws->residual));
        switch (blk->kind) {
        case PB_BLOCK_POPBIN: PB_CHECK(pb_binconv3x3_popbin(&blk->conv, ws->bits, ws->residual)); break;
#if PB_MODEL_TERNARY
        case PB_BLOCK_TERNARY: PB_CHECK(pb_binconv3x3_ternary(&blk->conv, ws->bits, ws->residual)); break;
#endif
        case PB_BLOCK_REQUANT: PB_CHECK(pb_binconv3x3_requant(&blk->conv, ws->bits, ws->residual)); break;
        default: return PB_ERR_KIND;
        }
        if (ws->hook) ws->hook(ws->hook_context, (uint16_t)(i + 1));
    }
#if PB_MODEL_HEAD_SHIFT
    PB_CHECK(pb_head_sumpool_shift(&net->head, ws->residual, ws->pooled, logits, class_index));
#else
    PB_CHECK(pb_head_sumpool_fc(&net->head, ws->residual, ws->pooled, logits, class_index));
#endif
    if (ws->hook) ws->hook(ws->hook_context, (uint16_t)(net->num_blocks + 1));
    return PB_OK;
}
