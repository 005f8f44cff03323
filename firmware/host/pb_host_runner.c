/*
 * Host build of an exported model: reads raw images (C*H*W bytes each) from stdin and writes,
 * per image, the class index (uint32) and the logits (int32 x classes), little-endian, to
 * stdout. pbkit compiles this with gcc to check the generated C against PyTorch bit for bit.
 */
#include <stdio.h>
#include <stdlib.h>

#include "pb_model.h"

int main(void)
{
    const size_t image_bytes = (size_t)pb_model_info.channels * pb_model_info.height * pb_model_info.width;
    uint8_t *image = malloc(image_bytes);
    int32_t *logits = malloc(sizeof(int32_t) * pb_model_info.num_classes);
    if (!image || !logits)
        return 2;
    for (;;) {
        const size_t got = fread(image, 1, image_bytes, stdin);
        if (got == 0)
            break;
        if (got != image_bytes) {
            fprintf(stderr, "pb_host_runner: truncated image (%zu of %zu bytes)\n", got, image_bytes);
            return 3;
        }
        uint32_t class_index = 0;
        const int status = pb_model_run(image, logits, &class_index);
        if (status != PB_OK) {
            fprintf(stderr, "pb_host_runner: pb_model_run returned %d\n", status);
            return 4;
        }
        fwrite(&class_index, sizeof class_index, 1, stdout);
        fwrite(logits, sizeof(int32_t), pb_model_info.num_classes, stdout);
    }
    free(image);
    free(logits);
    return 0;
}
