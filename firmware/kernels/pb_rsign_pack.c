#include "pb_kernels.h"

/* Loops run on end pointers so that the compiler has no trip count to multiply out. */
int pb_rsign_pack(const pb_rsign_params_t *p, const pb_residual_t *x_hwc, uint32_t *bits) {
    if (!p || !x_hwc || !bits) return PB_ERR_NULL;
    const uint32_t words = p->words, row = p->padded_row_words;
    const int channels = p->channels;
    /* Border = -1 padding = bit 0: top row, then each row's two edge pixels, then bottom row. */
    uint32_t *dst = bits;
    for (uint32_t *end = dst + row; dst != end; dst++) *dst = 0;
    for (int y = 0; y < p->height; y++) {
        for (uint32_t *end = dst + words; dst != end; dst++) *dst = 0;
        for (const pb_residual_t *row_end = x_hwc + p->row_elements; x_hwc != row_end; x_hwc += channels) {
            int c = 0;
            for (uint32_t *end = dst + words; dst != end; dst++) {
                uint32_t word = 0, bit = 1;
                for (int b = 0; b < 32 && c < channels; b++, c++, bit <<= 1) {
                    if (x_hwc[c] >= p->threshold[c]) word |= bit;
                }
                *dst = word;
            }
        }
        for (uint32_t *end = dst + words; dst != end; dst++) *dst = 0;
    }
    for (uint32_t *end = dst + row; dst != end; dst++) *dst = 0;
    return PB_OK;
}
