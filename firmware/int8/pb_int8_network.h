/*
 * pb_int8_network.h - the op table a generated int8 (TFLite) model fills in, and that
 * pb_int8_run.c walks with CMSIS-NN. pbkit's int8 yardstick generates the table
 * (codegen/int8, template int8_model_data.c.j2); CMSIS-NN is compiled from its own tree.
 *
 * Activations live in one arena at offsets the generator planned; every op reads and writes
 * arena + offset. Shifts and multipliers are TFLite's (shift > 0: left).
 */
#ifndef PB_INT8_NETWORK_H
#define PB_INT8_NETWORK_H

#include <stdint.h>

#include "arm_nn_types.h"

/* Status codes of pb_model_run for an int8 model (PB_OK = 0). */
#define PB_I8_ERR_SCRATCH (-2) /* CMSIS-NN asks for more scratch than the generator reserved */
#define PB_I8_ERR_KIND    (-3) /* an op kind this runtime does not know */
#define PB_I8_ERR_CMSIS   (-4) /* a CMSIS-NN function returned an error */

typedef enum {
    PB_I8_CONV = 1,
    PB_I8_ADD = 2,
    PB_I8_AVGPOOL = 3,
    PB_I8_FC = 4,
    PB_I8_SOFTMAX = 5,
} pb_i8_kind_t;

typedef struct {
    uint32_t input, output;
    cmsis_nn_dims input_dims, filter_dims, output_dims;
    cmsis_nn_conv_params params;
    const int8_t *weight;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} pb_i8_conv_t;

typedef struct {
    uint32_t input1, input2, output;
    int32_t input1_offset, input1_mult, input1_shift;
    int32_t input2_offset, input2_mult, input2_shift;
    int32_t left_shift;
    int32_t output_offset, output_mult, output_shift;
    int32_t act_min, act_max;
    int32_t size;
} pb_i8_add_t;

typedef struct {
    uint32_t input, output;
    cmsis_nn_dims input_dims, filter_dims, output_dims;
    cmsis_nn_pool_params params;
} pb_i8_avgpool_t;

typedef struct {
    uint32_t input, output;
    cmsis_nn_dims input_dims, filter_dims, output_dims;
    cmsis_nn_fc_params params;
    cmsis_nn_per_tensor_quant_params quant;
    const int8_t *weight;
    const int32_t *bias;
} pb_i8_fc_t;

typedef struct {
    uint32_t input, output;
    int32_t rows, row_size;
    int32_t multiplier, shift, diff_min;
} pb_i8_softmax_t;

typedef struct {
    uint8_t kind;   /* pb_i8_kind_t */
    const void *op; /* the pb_i8_*_t of that kind */
} pb_i8_op_t;

typedef struct {
    const pb_i8_op_t *ops;
    uint16_t num_ops;
    int8_t *arena;
    uint32_t arena_bytes;
    int8_t *scratch;
    uint32_t scratch_bytes;
    uint32_t input;           /* arena offset of the int8 NHWC input */
    int32_t input_zero_point; /* int8 = uint8 pixel + zero point (input scale 1) */
    uint32_t output;          /* arena offset of the int8 output (num_classes values): the class is its argmax */
    uint32_t logits;          /* arena offset of the int8 logits the board reports: the softmax's input */
} pb_i8_network_t;

extern const pb_i8_network_t pb_i8_network;

#endif /* PB_INT8_NETWORK_H */
