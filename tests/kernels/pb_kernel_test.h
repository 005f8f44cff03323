/* Kernel-level tests: one case per entry of tests/kernels/plan.json, generated into pb_kernel_cases.c
 * by tests/kernel_vectors.py; pb_kernel_test.c runs them (on the host: pb_kernel_test_host.c; on a
 * board: pb_kernel_test_model.c, through the firmware's INFER). */
#ifndef PB_KERNEL_TEST_H
#define PB_KERNEL_TEST_H

#include <stdint.h>

#include "pb_kernels.h"

/* Case kinds, in the order of tests/kernel_vectors.py KINDS. */
enum {
    PB_CASE_STEM, PB_CASE_RSIGN, PB_CASE_SUMPOOL, PB_CASE_POPBIN, PB_CASE_REQUANT, PB_CASE_HEAD, PB_CASE_TERNARY,
    PB_CASE_BITSTEM, PB_CASE_HEAD_SHIFT
};

typedef struct {
    uint8_t kind;                /* PB_CASE_* */
    int8_t status;               /* what the kernel must return */
    const void *params;          /* the kernel's parameter struct */
    const pb_residual_t *input;  /* the residual the kernel reads (or updates, copied first); NULL for the stem */
    uint32_t input_count;
    const void *aux;             /* the stem's image (uint8), a conv's bit buffer (uint32); NULL otherwise */
    const void *expected;        /* residual, bit words (RSign), or class then logits (head, int32) */
    uint32_t expected_count;
} pb_kernel_case_t;

extern const pb_kernel_case_t pb_kernel_cases[];
extern const uint32_t pb_kernel_case_count;
extern uint32_t pb_kernel_work[];
extern const uint32_t pb_kernel_work_words;

#define PB_KERNEL_RESULT_WORDS 4
/* Runs case `index`: result = {status, mismatched outputs, path (PB_PATH_*), first mismatch or -1}.
 * Returns PB_OK, or -1 for an index past the cases. */
int pb_kernel_case_run(uint32_t index, int32_t result[PB_KERNEL_RESULT_WORDS]);

#endif
