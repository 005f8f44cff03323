/*
 * pb_model.h - the fixed interface between the firmware and a generated model.
 *
 * pbkit's code generator writes one or more .c files that implement exactly this API;
 * the firmware (main.c, pb_protocol.c) only ever talks to the model through it, so a
 * model can be swapped without touching the firmware, and a stub model can stand in
 * for tests (tests/fixtures/stub_model).
 */
#ifndef PB_MODEL_H
#define PB_MODEL_H

#include <stdint.h>

#define PB_OK 0

typedef struct {
    uint8_t sha256[32];      /* hash of the integer model; the host checks it */
    uint16_t channels, height, width;  /* input image, uint8, CHW order */
    uint16_t num_classes;
} pb_model_info_t;

extern const pb_model_info_t pb_model_info;

/* Runs one image (channels*height*width bytes, CHW). Writes num_classes int32 logits and the argmax. Returns PB_OK or a negative status. */
int pb_model_run(const uint8_t *image_chw, int32_t *logits, uint32_t *class_index);

#endif /* PB_MODEL_H */
