#include "pb_kernels.h"

int pb_rsign_pack(const pb_rsign_params_t *p, const pb_residual_t *x_hwc, uint32_t *bits) {
    if (!p || !x_hwc || !bits) return PB_ERR_NULL;
    const uint32_t words = p->words, row = p->padded_row_words;
    /* Border = -1 padding = bit 0: top row, then each row's two edge pixels, then bottom row. */
    for (uint32_t i = 0; i < row; i++) bits[i] = 0;
    uint32_t *line = bits + row;
    for (int y = 0; y < p->height; y++) {
        for (uint32_t i = 0; i < words; i++) line[i] = 0;
        uint32_t *dst = line + words;
        for (int x = 0; x < p->width; x++) {
            int c = 0;
            for (uint32_t wd = 0; wd < words; wd++) {
                uint32_t word = 0, bit = 1;
                for (int b = 0; b < 32 && c < p->channels; b++, c++, bit <<= 1) {
                    if (x_hwc[c] >= p->threshold[c]) word |= bit;
                }
                *dst++ = word;
            }
            x_hwc += p->channels;
        }
        for (uint32_t i = 0; i < words; i++) dst[i] = 0;
        line += row;
    }
    for (uint32_t i = 0; i < row; i++) line[i] = 0;
    return PB_OK;
}
