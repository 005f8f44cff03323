#include "pb_kernel_test.h"

/* Whatever a kernel leaves unwritten shows up against this. */
#define PB_KERNEL_FILL 0xA5A5A5A5u

static void fill_work(void) {
    for (uint32_t i = 0; i < pb_kernel_work_words; i++) pb_kernel_work[i] = PB_KERNEL_FILL;
}

/* The case's input residual, into the work buffer (the convs and the pooling update it in place). */
static pb_residual_t *load_input(const pb_kernel_case_t *c) {
    pb_residual_t *x = (pb_residual_t *)(void *)pb_kernel_work;
    for (uint32_t i = 0; i < c->input_count; i++) x[i] = c->input[i];
    return x;
}

/* Mismatches of n outputs of `size` bytes; *first = index of the first, or -1. */
static int32_t compare(const void *got, const void *want, uint32_t n, uint32_t size, int32_t *first) {
    const uint8_t *g = got, *w = want;
    int32_t bad = 0;
    *first = -1;
    for (uint32_t i = 0; i < n; i++) {
        int same = 1;
        for (uint32_t b = 0; b < size; b++) same &= g[i * size + b] == w[i * size + b];
        if (!same && bad++ == 0) *first = (int32_t)i;
    }
    return bad;
}

int pb_kernel_case_run(uint32_t index, int32_t result[PB_KERNEL_RESULT_WORDS]) {
    if (index >= pb_kernel_case_count) return -1;
    const pb_kernel_case_t *c = &pb_kernel_cases[index];
    fill_work();
    int status, path;
    uint32_t size = sizeof(pb_residual_t);
    const void *got = pb_kernel_work;
    switch (c->kind) {
    case PB_CASE_STEM:
        status = pb_stem_conv_thermometer(c->params, c->aux, (pb_residual_t *)(void *)pb_kernel_work);
        path = pb_stem_conv_thermometer_path(c->params);
        break;
    case PB_CASE_RSIGN:
        status = pb_rsign_pack(c->params, c->input, pb_kernel_work);
        path = pb_rsign_pack_path(c->params);
        size = sizeof(uint32_t);
        break;
    case PB_CASE_SUMPOOL:
        status = pb_sumpool2x2_dup(c->params, load_input(c));
        path = pb_sumpool2x2_dup_path(c->params);
        break;
    case PB_CASE_POPBIN:
        status = pb_binconv3x3_popbin(c->params, c->aux, load_input(c));
        path = pb_binconv3x3_popbin_path(c->params);
        break;
    case PB_CASE_TERNARY:
        status = pb_binconv3x3_ternary(c->params, c->aux, load_input(c));
        path = pb_binconv3x3_ternary_path(c->params);
        break;
    case PB_CASE_REQUANT:
        status = pb_binconv3x3_requant(c->params, c->aux, load_input(c));
        path = pb_binconv3x3_requant_path(c->params);
        break;
    case PB_CASE_BITSTEM: {
        /* the output first, then the planes the stem encodes (its scratch) */
        const uint32_t out_words = (c->expected_count * (uint32_t)sizeof(pb_residual_t) + 3u) / 4u;
        status = pb_stem_bitplanes(c->params, c->aux, pb_kernel_work + out_words,
                                   (pb_residual_t *)(void *)pb_kernel_work);
        path = pb_stem_bitplanes_path(c->params);
        break;
    }
    case PB_CASE_HEAD:
    case PB_CASE_HEAD_SHIFT: {
        /* pooled scratch first, then the class and the logits where the expected output has them */
        const pb_head_params_t *p = c->params;
        int32_t *out = (int32_t *)(void *)pb_kernel_work + p->channels;
        uint32_t class_index = 0;
        if (c->kind == PB_CASE_HEAD) {
            status = pb_head_sumpool_fc(p, c->input, (int32_t *)(void *)pb_kernel_work, out + 1, &class_index);
            path = pb_head_sumpool_fc_path(p);
        } else {
            status = pb_head_sumpool_shift(p, c->input, (int32_t *)(void *)pb_kernel_work, out + 1, &class_index);
            path = pb_head_sumpool_shift_path(p);
        }
        out[0] = (int32_t)class_index;
        size = sizeof(int32_t);
        got = out;
        break;
    }
    default:
        return -1;
    }
    int32_t first;
    result[0] = status;
    result[1] = compare(got, c->expected, c->expected_count, size, &first);
    result[2] = path;
    result[3] = first;
    return PB_OK;
}
