/* pb_protocol.c - decodes requests, runs them and builds replies (docs/protocol.md). */
#include "pb_protocol.h"

#include "pb_board.h"
#include "pb_cobs.h"
#include "pb_crc32.h"
#include "pb_layer_timer.h"
#include "pb_model.h"

/* Little-endian field access: the frame bytes have no alignment guarantee. */
static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, (uint16_t)v);
    put_u16(p + 2, (uint16_t)(v >> 16));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)get_u16(p) | ((uint32_t)get_u16(p + 2) << 16);
}

static size_t str_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0') {
        n++;
    }
    return n;
}

/* Fills header and CRC around a payload already written at reply + PB_HEADER_LEN. */
static size_t finish_reply(const pb_protocol_ctx_t *ctx, uint8_t type, uint16_t seq, size_t payload_len)
{
    uint8_t *r = ctx->reply;
    size_t n = PB_HEADER_LEN + payload_len;
    r[0] = type;
    r[1] = 0u;
    put_u16(r + 2, seq);
    put_u32(r + n, pb_crc32(r, n));
    return n + PB_CRC_LEN;
}

size_t pb_protocol_error(const pb_protocol_ctx_t *ctx, uint16_t seq, uint8_t code, int32_t detail, const char *text)
{
    uint8_t *p = ctx->reply + PB_HEADER_LEN;
    size_t room = ctx->reply_cap - PB_HEADER_LEN - PB_ERROR_FIXED_LEN - PB_CRC_LEN;
    size_t text_len = str_len(text, room < 255u ? room : 255u);
    p[0] = code;
    p[1] = (uint8_t)text_len;
    put_u16(p + 2, 0u);
    put_u32(p + 4, (uint32_t)detail);
    for (size_t i = 0; i < text_len; i++) {
        p[PB_ERROR_FIXED_LEN + i] = (uint8_t)text[i];
    }
    return finish_reply(ctx, PB_MSG_ERROR, seq, PB_ERROR_FIXED_LEN + text_len);
}

static size_t handle_hello(const pb_protocol_ctx_t *ctx, uint16_t seq, size_t payload_len)
{
    static const char board_name[] = PB_BOARD_NAME;
    uint8_t *p = ctx->reply + PB_HEADER_LEN;
    size_t name_len = str_len(board_name, PB_MAX_BOARD_NAME);

    if (payload_len != 0u) {
        return pb_protocol_error(ctx, seq, PB_ERR_BAD_LENGTH, 0, "HELLO takes no payload");
    }
    p[0] = (uint8_t)PB_PROTOCOL_VERSION;
    p[1] = (uint8_t)PB_COUNTER_KIND;
    p[2] = (uint8_t)PB_ICOUNT_SHIFT;
    p[3] = (uint8_t)name_len;
    put_u32(p + 4, (uint32_t)PB_CLOCK_HZ);
    put_u32(p + 8, (uint32_t)PB_MAX_PAYLOAD);
    for (size_t i = 0; i < 32u; i++) {
        p[12 + i] = pb_model_info.sha256[i];
    }
    put_u16(p + 44, pb_model_info.channels);
    put_u16(p + 46, pb_model_info.height);
    put_u16(p + 48, pb_model_info.width);
    put_u16(p + 50, pb_model_info.num_classes);
    for (size_t i = 0; i < name_len; i++) {
        p[PB_HELLO_FIXED_LEN + i] = (uint8_t)board_name[i];
    }
    return finish_reply(ctx, PB_MSG_HELLO | PB_MSG_REPLY, seq, PB_HELLO_FIXED_LEN + name_len);
}

/* Checks a request that runs the model (INFER, PROFILE): the image length, and room for a
 * reply of payload_len bytes. Returns 0 when it may run, else the length of the ERROR reply
 * already written. */
static size_t check_run_request(const pb_protocol_ctx_t *ctx, uint16_t seq, size_t len, size_t payload_len,
                                const char *bad_length_text)
{
    const size_t expected = (size_t)pb_model_info.channels * pb_model_info.height * pb_model_info.width;
    const uint16_t classes = pb_model_info.num_classes;

    if (len != expected) {
        return pb_protocol_error(ctx, seq, PB_ERR_BAD_LENGTH, (int32_t)expected, bad_length_text);
    }
    if (classes > ctx->logits_cap || PB_HEADER_LEN + payload_len + PB_CRC_LEN > ctx->reply_cap) {
        return pb_protocol_error(ctx, seq, PB_ERR_INTERNAL, (int32_t)classes, "num_classes exceeds PB_MAX_CLASSES");
    }
    return 0u;
}

static size_t handle_infer(const pb_protocol_ctx_t *ctx, uint16_t seq, const uint8_t *image, size_t len)
{
    const uint16_t classes = pb_model_info.num_classes;
    const size_t payload_len = PB_INFER_FIXED_LEN + 4u * (size_t)classes;
    uint8_t *p = ctx->reply + PB_HEADER_LEN;
    uint32_t class_index = 0;
    size_t refused = check_run_request(ctx, seq, len, payload_len, "INFER payload must be C*H*W bytes");

    if (refused != 0u) {
        return refused;
    }

    /* Two back-to-back reads measure the cost of reading the counter itself, which is
     * then taken off so the reply reports pb_model_run alone. */
    uint64_t t0 = pb_counter_read();
    uint64_t t1 = pb_counter_read();
    uint64_t start = pb_counter_read();
    int st = pb_model_run(image, ctx->logits, &class_index);
    uint64_t end = pb_counter_read();
    uint64_t overhead = t1 - t0;
    uint64_t ticks = end - start;
    ticks = ticks > overhead ? ticks - overhead : 0u;

    if (st != PB_OK) {
        return pb_protocol_error(ctx, seq, PB_ERR_MODEL, st, "pb_model_run failed");
    }
    put_u32(p, class_index);
    put_u64(p + 4, ticks);
    put_u16(p + 12, classes);
    put_u16(p + 14, 0u);
    for (size_t k = 0; k < classes; k++) {
        put_u32(p + PB_INFER_FIXED_LEN + 4u * k, (uint32_t)ctx->logits[k]);
    }
    return finish_reply(ctx, PB_MSG_INFER | PB_MSG_REPLY, seq, payload_len);
}

/* What the timer adds to the layers it times, measured by timing nothing: start then hook
 * (the first layer's interval), and hook then hook (every later layer's). */
typedef struct {
    uint64_t first;
    uint64_t next;
} timer_cost_t;

static timer_cost_t timer_cost(uint64_t *marks)
{
    pb_layer_timer_t probe;
    pb_layer_timer_init(&probe, marks, 3u);
    pb_layer_timer_start(&probe);
    pb_layer_timer_hook(&probe, 0u);
    pb_layer_timer_hook(&probe, 1u);
    return (timer_cost_t){marks[1] - marks[0], marks[2] - marks[1]};
}

static size_t handle_profile(const pb_protocol_ctx_t *ctx, uint16_t seq, const uint8_t *image, size_t len)
{
    const uint16_t classes = pb_model_info.num_classes;
    const size_t logits_end = PB_PROFILE_FIXED_LEN + 4u * (size_t)classes;
    /* Layers that fit the reply (8 bytes each) and the marks (one more: the start). */
    size_t max_layers = ctx->reply_cap > PB_HEADER_LEN + logits_end + PB_CRC_LEN
                            ? (ctx->reply_cap - PB_HEADER_LEN - logits_end - PB_CRC_LEN) / 8u
                            : 0u;
    uint8_t *p = ctx->reply + PB_HEADER_LEN;
    uint32_t class_index = 0;
    pb_layer_timer_t timer;
    size_t refused = check_run_request(ctx, seq, len, logits_end, "PROFILE payload must be C*H*W bytes");

    if (refused != 0u) {
        return refused;
    }
    if (ctx->layer_marks_cap < 3u) {
        return pb_protocol_error(ctx, seq, PB_ERR_INTERNAL, 0, "no room for layer marks");
    }
    if (max_layers > ctx->layer_marks_cap - 1u) {
        max_layers = ctx->layer_marks_cap - 1u;
    }
    if (max_layers > 0xFFFEu) {
        max_layers = 0xFFFEu;
    }

    const timer_cost_t cost = timer_cost(ctx->layer_marks);
    pb_layer_timer_init(&timer, ctx->layer_marks, (uint16_t)(max_layers + 1u));
    pb_layer_timer_start(&timer);
    int st = pb_model_run_hooked(image, ctx->logits, &class_index, pb_layer_timer_hook, &timer);

    if (st != PB_OK) {
        return pb_protocol_error(ctx, seq, PB_ERR_MODEL, st, "pb_model_run_hooked failed");
    }
    if (timer.overflow) {
        return pb_protocol_error(ctx, seq, PB_ERR_INTERNAL, (int32_t)max_layers,
                                 "more layers than PB_MAX_LAYERS, or out of order");
    }
    const uint16_t layers = (uint16_t)(timer.count - 1u);
    put_u32(p, class_index);
    put_u32(p + 4, (uint32_t)cost.next);
    put_u16(p + 8, classes);
    put_u16(p + 10, layers);
    put_u32(p + 12, 0u);
    for (size_t k = 0; k < classes; k++) {
        put_u32(p + PB_PROFILE_FIXED_LEN + 4u * k, (uint32_t)ctx->logits[k]);
    }
    for (size_t i = 0; i < layers; i++) {
        /* The timer's own share of each interval is the profiler's, not the layer's. */
        const uint64_t overhead = i == 0u ? cost.first : cost.next;
        const uint64_t ticks = timer.marks[i + 1u] - timer.marks[i];
        put_u64(p + logits_end + 8u * i, ticks > overhead ? ticks - overhead : 0u);
    }
    return finish_reply(ctx, PB_MSG_PROFILE | PB_MSG_REPLY, seq, logits_end + 8u * (size_t)layers);
}

size_t pb_protocol_handle(const pb_protocol_ctx_t *ctx, const uint8_t *body, size_t len)
{
    if (len < PB_HEADER_LEN + PB_CRC_LEN) {
        return pb_protocol_error(ctx, PB_SEQ_UNKNOWN, PB_ERR_FRAME_TOO_SHORT, (int32_t)len,
                                 "frame shorter than header + CRC");
    }
    size_t n = len - PB_CRC_LEN;
    if (pb_crc32(body, n) != get_u32(body + n)) {
        /* The header is as suspect as the rest, so its seq is not echoed. */
        return pb_protocol_error(ctx, PB_SEQ_UNKNOWN, PB_ERR_BAD_CRC, 0, "CRC mismatch");
    }
    uint8_t type = body[0];
    uint16_t seq = get_u16(body + 2);
    const uint8_t *payload = body + PB_HEADER_LEN;
    size_t payload_len = n - PB_HEADER_LEN;

    switch (type) {
    case PB_MSG_HELLO:
        return handle_hello(ctx, seq, payload_len);
    case PB_MSG_INFER:
        return handle_infer(ctx, seq, payload, payload_len);
    case PB_MSG_PROFILE:
        return handle_profile(ctx, seq, payload, payload_len);
    default:
        return pb_protocol_error(ctx, seq, PB_ERR_UNKNOWN_TYPE, type, "unknown message type");
    }
}

size_t pb_protocol_answer(const pb_protocol_ctx_t *ctx, pb_frame_rx_t *rx, pb_frame_event_t event)
{
    size_t reply_len;
    size_t body_len = 0;

    if (event == PB_FRAME_NONE) {
        return 0u;
    }
    if (event == PB_FRAME_TOO_LONG) {
        reply_len =
            pb_protocol_error(ctx, PB_SEQ_UNKNOWN, PB_ERR_FRAME_TOO_LONG, (int32_t)rx->cap, "frame too long, dropped");
    } else if (pb_cobs_decode(rx->buf, rx->len, rx->buf, rx->cap, &body_len) != PB_COBS_OK) {
        /* Decoding in place is safe: COBS output never outruns its input. */
        reply_len = pb_protocol_error(ctx, PB_SEQ_UNKNOWN, PB_ERR_BAD_COBS, 0, "bad COBS encoding");
    } else {
        reply_len = pb_protocol_handle(ctx, rx->buf, body_len);
    }
    pb_frame_rx_reset(rx);
    return reply_len;
}
