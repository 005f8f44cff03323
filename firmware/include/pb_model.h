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
    uint8_t sha256[32];               /* hash of the integer model; the host checks it */
    uint16_t channels, height, width; /* input image, uint8, CHW order */
    uint16_t num_classes;
} pb_model_info_t;

extern const pb_model_info_t pb_model_info;

/* Runs one image (channels*height*width bytes, CHW). Writes num_classes int32 logits and the argmax. Returns PB_OK or a
 * negative status. */
int pb_model_run(const uint8_t *image_chw, int32_t *logits, uint32_t *class_index);

/* Called as each layer of a run finishes, with layer = 0, 1, 2, ... in order (for a generated
 * model: the stem, each binary block, the head), so the caller can time layers. */
typedef void (*pb_model_layer_hook_t)(void *context, uint16_t layer);

/* pb_model_run that calls hook(context, layer) after every layer; hook may be NULL. The hook
 * only observes: logits and status are those of pb_model_run. */
int pb_model_run_hooked(const uint8_t *image_chw, int32_t *logits, uint32_t *class_index, pb_model_layer_hook_t hook,
                        void *context);

#endif /* PB_MODEL_H */
