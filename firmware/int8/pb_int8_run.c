/*
 * pb_int8_run.c - pb_model.h for a generated int8 (TFLite) model: converts the host's uint8 CHW
 * image to the model's int8 NHWC input, then runs the op table of pb_int8_network.h with
 * CMSIS-NN, one library call per op. The logits reported are the int8 input of the final softmax
 * (widened to int32); the class is the argmax of the model's output, the softmax.
 */
#include "pb_int8_network.h"

#include "arm_nnfunctions.h"
#include "pb_model.h"

static int status_of(arm_cmsis_nn_status st)
{
    return st == ARM_CMSIS_NN_SUCCESS ? PB_OK : PB_I8_ERR_CMSIS;
}

static int run_conv(const pb_i8_network_t *net, const pb_i8_conv_t *c)
{
    const cmsis_nn_context ctx = {net->scratch, (int32_t)net->scratch_bytes};
    /* CMSIS-NN's parameter struct is not const-qualified; it only reads the arrays. */
    const cmsis_nn_per_channel_quant_params quant = {(int32_t *)c->multiplier, (int32_t *)c->shift};
    const cmsis_nn_dims bias_dims = {1, 1, 1, c->output_dims.c};

    if (arm_convolve_wrapper_s8_get_buffer_size(&c->params, &c->input_dims, &c->filter_dims, &c->output_dims) >
        (int32_t)net->scratch_bytes) {
        return PB_I8_ERR_SCRATCH;
    }
    return status_of(arm_convolve_wrapper_s8(&ctx, &c->params, &quant, &c->input_dims, net->arena + c->input,
                                             &c->filter_dims, c->weight, &bias_dims, c->bias, &c->output_dims,
                                             net->arena + c->output));
}

static int run_add(const pb_i8_network_t *net, const pb_i8_add_t *a)
{
    return status_of(arm_elementwise_add_s8(net->arena + a->input1, net->arena + a->input2, a->input1_offset,
                                            a->input1_mult, a->input1_shift, a->input2_offset, a->input2_mult,
                                            a->input2_shift, a->left_shift, net->arena + a->output, a->output_offset,
                                            a->output_mult, a->output_shift, a->act_min, a->act_max, a->size));
}

static int run_avgpool(const pb_i8_network_t *net, const pb_i8_avgpool_t *p)
{
    const cmsis_nn_context ctx = {net->scratch, (int32_t)net->scratch_bytes};

    if (arm_avgpool_s8_get_buffer_size(p->output_dims.w, p->input_dims.c) > (int32_t)net->scratch_bytes) {
        return PB_I8_ERR_SCRATCH;
    }
    return status_of(arm_avgpool_s8(&ctx, &p->params, &p->input_dims, net->arena + p->input, &p->filter_dims,
                                    &p->output_dims, net->arena + p->output));
}

static int run_fc(const pb_i8_network_t *net, const pb_i8_fc_t *f)
{
    const cmsis_nn_context ctx = {net->scratch, (int32_t)net->scratch_bytes};
    const cmsis_nn_dims bias_dims = {1, 1, 1, f->output_dims.c};

    if (arm_fully_connected_s8_get_buffer_size(&f->filter_dims) > (int32_t)net->scratch_bytes) {
        return PB_I8_ERR_SCRATCH;
    }
    return status_of(arm_fully_connected_s8(&ctx, &f->params, &f->quant, &f->input_dims, net->arena + f->input,
                                            &f->filter_dims, f->weight, &bias_dims, f->bias, &f->output_dims,
                                            net->arena + f->output));
}

static int run_softmax(const pb_i8_network_t *net, const pb_i8_softmax_t *s)
{
    arm_softmax_s8(net->arena + s->input, s->rows, s->row_size, s->multiplier, s->shift, s->diff_min,
                   net->arena + s->output);
    return PB_OK;
}

static int run_op(const pb_i8_network_t *net, const pb_i8_op_t *op)
{
    switch (op->kind) {
    case PB_I8_CONV:
        return run_conv(net, (const pb_i8_conv_t *)op->op);
    case PB_I8_ADD:
        return run_add(net, (const pb_i8_add_t *)op->op);
    case PB_I8_AVGPOOL:
        return run_avgpool(net, (const pb_i8_avgpool_t *)op->op);
    case PB_I8_FC:
        return run_fc(net, (const pb_i8_fc_t *)op->op);
    case PB_I8_SOFTMAX:
        return run_softmax(net, (const pb_i8_softmax_t *)op->op);
    default:
        return PB_I8_ERR_KIND;
    }
}

/* uint8 CHW (what the host sends) -> int8 NHWC (what the model reads): pixel + zero point. */
static void load_input(const pb_i8_network_t *net, const uint8_t *image_chw)
{
    const uint32_t c_n = pb_model_info.channels, h_n = pb_model_info.height, w_n = pb_model_info.width;
    int8_t *dst = net->arena + net->input;

    for (uint32_t y = 0; y < h_n; y++) {
        for (uint32_t x = 0; x < w_n; x++) {
            for (uint32_t c = 0; c < c_n; c++) {
                *dst++ = (int8_t)((int32_t)image_chw[(c * h_n + y) * w_n + x] + net->input_zero_point);
            }
        }
    }
}

int pb_model_run_hooked(const uint8_t *image_chw, int32_t *logits, uint32_t *class_index, pb_model_layer_hook_t hook,
                        void *context)
{
    const pb_i8_network_t *net = &pb_i8_network;

    load_input(net, image_chw);
    for (uint16_t i = 0; i < net->num_ops; i++) {
        const int st = run_op(net, &net->ops[i]);
        if (st != PB_OK) {
            return st;
        }
        if (hook != 0) {
            hook(context, i);
        }
    }
    const int8_t *out = net->arena + net->output;
    const int8_t *raw = net->arena + net->logits;
    uint32_t best = 0;
    for (uint32_t k = 0; k < pb_model_info.num_classes; k++) {
        logits[k] = raw[k];
        if (out[k] > out[best]) {
            best = k; /* the first of equal maxima, as numpy's argmax */
        }
    }
    *class_index = best;
    return PB_OK;
}

int pb_model_run(const uint8_t *image_chw, int32_t *logits, uint32_t *class_index)
{
    return pb_model_run_hooked(image_chw, logits, class_index, 0, 0);
}
