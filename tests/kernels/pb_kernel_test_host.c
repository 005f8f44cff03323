/* Host runner of the kernel tests: one line per case, "index status mismatches path first". */
#include <stdio.h>

#include "pb_kernel_test.h"

static const char *const path_names[] = {
#define PB_PATH_NAME(id, name) name,
    PB_KERNEL_PATHS(PB_PATH_NAME)
#undef PB_PATH_NAME
};

int main(void) {
    for (uint32_t i = 0; i < pb_kernel_case_count; i++) {
        int32_t r[PB_KERNEL_RESULT_WORDS];
        if (pb_kernel_case_run(i, r) != PB_OK) return 2;
        const int known = r[2] >= 0 && (uint32_t)r[2] < sizeof path_names / sizeof path_names[0];
        printf("%u %d %d %s %d\n", (unsigned)i, (int)r[0], (int)r[1], known ? path_names[r[2]] : "?", (int)r[3]);
    }
    return 0;
}
