#include "pb_network.h"

/* Only a model with ternary blocks links the ternary conv (its config says so): other firmware stays
 * without its code, and would answer a ternary block with PB_ERR_KIND. */
#ifndef PB_MODEL_TERNARY
#define PB_MODEL_TERNARY 0
#endif

/* Every model links the requant conv unless its config says it has no requant block; a multiply-free model's
 * does (pb_model_config.h), so that its firmware holds no multiply on the image path at all. */
#ifndef PB_MODEL_REQUANT
#define PB_MODEL_REQUANT 1
#endif

#define PB_CHECK(call)                                                                                                 \
    do {                                                                                                               \
        const int status_ = (call);                                                                                    \
        if (status_ != PB_OK)                                                                                          \
            return status_;                                                                                            \
    } while (0)

int pb_network_run(const pb_network_t *net, const pb_workspace_t *ws, const uint8_t *image_chw, int32_t *logits,
                   uint32_t *class_index)
{
    if (!net || !ws || !image_chw || !logits || !class_index)
        return PB_ERR_NULL;
#if PB_MODEL_STEM_BITPLANES /* the bit buffer holds the planes until the first RSign overwrites them */
    PB_CHECK(pb_stem_bitplanes(&net->bitstem, image_chw, ws->bits, ws->residual));
#else
    PB_CHECK(pb_stem_conv_thermometer(&net->stem, image_chw, ws->residual));
#endif
    if (ws->hook)
        ws->hook(ws->hook_context, 0);
    /* A pointer walk, not &blocks[i]: a table entry is not a power of two in size, and the index would cost a
     * multiply. */
    const pb_block_t *blk = net->blocks;
    for (uint16_t i = 0; i < net->num_blocks; i++, blk++) {
        /* Bits first: the stride-2 shortcut then pools the residual in place under them. */
        PB_CHECK(pb_rsign_pack(&blk->rsign, ws->residual, ws->bits));
        if (blk->pool)
            PB_CHECK(pb_sumpool2x2_dup(blk->pool, ws->residual));
        switch (blk->kind) {
        case PB_BLOCK_POPBIN:
            PB_CHECK(pb_binconv3x3_popbin(&blk->conv, ws->bits, ws->residual));
            break;
#if PB_MODEL_TERNARY
        case PB_BLOCK_TERNARY:
            PB_CHECK(pb_binconv3x3_ternary(&blk->conv, ws->bits, ws->residual));
            break;
#endif
#if PB_MODEL_REQUANT
        case PB_BLOCK_REQUANT:
            PB_CHECK(pb_binconv3x3_requant(&blk->conv, ws->bits, ws->residual));
            break;
#endif
        default:
            return PB_ERR_KIND;
        }
        if (ws->hook)
            ws->hook(ws->hook_context, (uint16_t)(i + 1));
    }
#if PB_MODEL_HEAD_SHIFT
    PB_CHECK(pb_head_sumpool_shift(&net->head, ws->residual, ws->pooled, logits, class_index));
#else
    PB_CHECK(pb_head_sumpool_fc(&net->head, ws->residual, ws->pooled, logits, class_index));
#endif
    if (ws->hook)
        ws->hook(ws->hook_context, (uint16_t)(net->num_blocks + 1));
    return PB_OK;
}
