/*
 * pb_fuzz.c - fuzz driver for the firmware's link code, built for the host with AddressSanitizer and
 * UndefinedBehaviorSanitizer (firmware/host/fuzz.mk; `make fuzz`, and tests/test_fuzz.py in `make test`).
 *
 * It runs the firmware's own receive path, byte by byte as the UART delivers them: pb_frame_rx_push,
 * then pb_protocol_answer (COBS decode in place, CRC, dispatch to HELLO / INFER / PROFILE, ERROR
 * replies), then pb_frame_send into a capture of the UART. The inputs come from a seeded generator
 * (splitmix64): valid requests, then mutated ones (flipped bits, bytes inserted, deleted, duplicated,
 * zeros inserted, truncation, garbage, frames longer than the buffer), against receive buffers of
 * the firmware's size and of small random sizes. Every buffer is heap-allocated at its exact size,
 * so one byte written past it is an ASan error.
 *
 * Besides the sanitizers, each reply is checked by code of its own (not the firmware's): one COBS
 * frame and one 0x00, a CRC-32 that matches, a reply type or ERROR, a length within PB_MAX_REPLY;
 * a valid request gets exactly the reply the protocol defines (HELLO fields, the model's logits).
 * COBS encode and decode are also run alone, against a reference, with output buffers too small.
 *
 *   pb_fuzz [--seed N] [--iterations N] [--seconds S]
 *
 * Exit status 0 when every input passed; 1 with the failing input and the seed that reproduces it;
 * a sanitizer report aborts the run (-fno-sanitize-recover).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pb_board.h"
#include "pb_cobs.h"
#include "pb_frame.h"
#include "pb_model.h"
#include "pb_protocol.h"

/* ---- the board, as the link code sees it ------------------------------------------------------ */

static uint8_t *uart; /* what pb_uart_write wrote for the current reply */
static size_t uart_len;
static size_t uart_cap;

void pb_uart_write(const uint8_t *data, uint32_t len)
{
    if (uart_len + len > uart_cap) {
        fprintf(stderr, "pb_fuzz: a reply longer than PB_TX_CAP + 1 bytes\n");
        abort();
    }
    memcpy(uart + uart_len, data, len);
    uart_len += len;
}

uint64_t pb_counter_read(void)
{
    static uint64_t now;
    return now += 3u;
}

/* ---- a seeded generator ----------------------------------------------------------------------- */

static uint64_t rng;
static unsigned long long seed_given;
static unsigned long iteration;

static uint64_t next_u64(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(size_t n)
{
    return n ? (size_t)(next_u64() % n) : 0u;
}

static int chance(unsigned percent)
{
    return below(100u) < percent;
}

/* ---- reference framing: written apart from the firmware's, to check it -------------------------- */

static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

/* COBS-encodes in[0..n) into out (room for n + n/254 + 1); returns the length. */
static size_t ref_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t code_at = 0, o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
            continue;
        }
        out[o++] = in[i];
        if (++code == 0xFF && i + 1 < n) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        }
    }
    out[code_at] = code;
    return o;
}

/* Decodes in[0..n) into out (room for n); returns the length, or -1 for invalid COBS. */
static long ref_cobs_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0, i = 0;
    while (i < n) {
        size_t code = in[i++];
        if (code == 0 || i + code - 1 > n) {
            return -1;
        }
        for (size_t k = 1; k < code; k++, i++) {
            if (in[i] == 0) {
                return -1;
            }
            out[o++] = in[i];
        }
        if (code != 0xFF && i < n) {
            out[o++] = 0;
        }
    }
    return (long)o;
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

/* ---- failures ----------------------------------------------------------------------------------- */

static const uint8_t *input_bytes;
static size_t input_len;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pb_fuzz: FAIL at input %lu: ", iteration);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\npb_fuzz: input (%zu bytes):", input_len);
    for (size_t i = 0; i < input_len && i < 256; i++) {
        fprintf(stderr, " %02x", input_bytes[i]);
    }
    fprintf(stderr, "%s\npb_fuzz: reproduce with: pb_fuzz --seed %llu --iterations %lu\n",
            input_len > 256 ? " ..." : "", seed_given, iteration + 1);
    exit(1);
}

/* ---- building requests -------------------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} bytes_t;

static void put(bytes_t *b, const uint8_t *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        if (!b->data) {
            abort();
        }
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* A request as the protocol expects it (what a valid one should be answered with is kept apart). */
typedef struct {
    uint8_t type;
    uint16_t seq;
    size_t payload_len;
    uint8_t payload[PB_MAX_PAYLOAD + 16];
} request_t;

static size_t image_len(void)
{
    return (size_t)pb_model_info.channels * pb_model_info.height * pb_model_info.width;
}

static void random_request(request_t *r)
{
    static const uint8_t types[] = {PB_MSG_HELLO, PB_MSG_INFER, PB_MSG_PROFILE, PB_MSG_INFER, PB_MSG_HELLO};
    r->type = chance(8) ? (uint8_t)below(256) : types[below(sizeof types)];
    r->seq = (uint16_t)below(0xFFFF); /* the host never uses 0xFFFF */
    size_t n = image_len();
    if (r->type == PB_MSG_HELLO) {
        r->payload_len = chance(90) ? 0u : 1u + below(8);
    } else {
        size_t choices[] = {n, n, n, n - 1u, n + 1u, below(64), below(n + 16)};
        r->payload_len = choices[below(sizeof choices / sizeof choices[0])];
    }
    if (r->payload_len > sizeof r->payload) {
        r->payload_len = sizeof r->payload;
    }
    unsigned style = (unsigned)below(4); /* random bytes, zeros, all 0xFF (the stub's MODEL error), all 0xFE */
    for (size_t i = 0; i < r->payload_len; i++) {
        r->payload[i] = style == 0 ? (uint8_t)next_u64() : style == 1 ? 0u : style == 2 ? 0xFFu : 0xFEu;
    }
}

static void encode_request(bytes_t *out, const request_t *r)
{
    static uint8_t body[PB_MAX_REQUEST + 32];
    static uint8_t wire[PB_COBS_MAX_ENCODED(PB_MAX_REQUEST + 32)];
    size_t n = PB_HEADER_LEN + r->payload_len;
    body[0] = r->type;
    body[1] = 0;
    body[2] = (uint8_t)r->seq;
    body[3] = (uint8_t)(r->seq >> 8);
    memcpy(body + PB_HEADER_LEN, r->payload, r->payload_len);
    uint32_t crc = ref_crc32(body, n);
    for (int k = 0; k < 4; k++) {
        body[n + (size_t)k] = (uint8_t)(crc >> (8 * k));
    }
    size_t w = ref_cobs_encode(body, n + PB_CRC_LEN, wire);
    put(out, wire, w);
    put(out, (const uint8_t[]){0}, 1);
}

static void mutate(bytes_t *b)
{
    size_t rounds = 1u + below(4);
    for (size_t m = 0; m < rounds; m++) {
        size_t at = below(b->len + 1u);
        switch (below(10)) {
        case 0: /* flip a bit */
            if (b->len)
                b->data[below(b->len)] ^= (uint8_t)(1u << below(8));
            break;
        case 1: /* a random byte */
            if (b->len)
                b->data[below(b->len)] = (uint8_t)next_u64();
            break;
        case 2: /* insert a byte, a zero half the time */
        case 3: {
            uint8_t x = chance(50) ? 0u : (uint8_t)next_u64();
            put(b, &x, 1);
            memmove(b->data + at + 1, b->data + at, b->len - 1 - at);
            b->data[at] = x;
            break;
        }
        case 4: /* delete a range */
            if (at < b->len) {
                size_t n = 1u + below(b->len - at < 16 ? b->len - at : 16);
                memmove(b->data + at, b->data + at + n, b->len - at - n);
                b->len -= n;
            }
            break;
        case 5: /* truncate */
            b->len = at;
            break;
        case 6: /* duplicate a range */
            if (at < b->len) {
                size_t n = 1u + below(b->len - at < 64 ? b->len - at : 64);
                uint8_t tmp[64];
                memcpy(tmp, b->data + at, n);
                put(b, tmp, n);
                memmove(b->data + at + n, b->data + at, b->len - n - at);
                memcpy(b->data + at, tmp, n);
            }
            break;
        case 7: { /* garbage at the end */
            size_t n = 1u + below(300);
            for (size_t i = 0; i < n; i++) {
                uint8_t x = (uint8_t)next_u64();
                put(b, &x, 1);
            }
            break;
        }
        case 8: { /* a run of non-zero bytes, now and then longer than the receive buffer */
            size_t n = chance(10) ? PB_RX_CAP + below(600) : below(2000);
            uint8_t x = (uint8_t)(1u + below(255));
            for (size_t i = 0; i < n; i++) {
                put(b, &x, 1);
            }
            break;
        }
        default: /* a header byte changed (type, reserved, seq) */
            if (b->len > 4)
                b->data[1u + below(4)] ^= (uint8_t)(1u + below(255));
            break;
        }
    }
}

/* ---- checking replies --------------------------------------------------------------------------- */

typedef struct {
    uint8_t type;
    uint16_t seq;
    const uint8_t *payload;
    size_t payload_len;
} reply_t;

/* Every reply: one COBS frame and its 0x00, a valid CRC-32, a type a board may send, a sound layout. */
static reply_t check_reply_frame(void)
{
    static uint8_t body[PB_TX_CAP];
    if (uart_len < 2 || uart[uart_len - 1] != 0 || memchr(uart, 0, uart_len - 1) != NULL) {
        fail("a reply of %zu bytes is not one COBS frame ended by one 0x00", uart_len);
    }
    long n = ref_cobs_decode(uart, uart_len - 1, body);
    if (n < 0) {
        fail("a reply is not valid COBS");
    }
    if (n < (long)(PB_HEADER_LEN + PB_CRC_LEN) || n > (long)PB_MAX_REPLY) {
        fail("a reply body of %ld bytes (header + CRC is 8, PB_MAX_REPLY %u)", n, (unsigned)PB_MAX_REPLY);
    }
    size_t len = (size_t)n - PB_CRC_LEN;
    if (ref_crc32(body, len) != rd32(body + len)) {
        fail("a reply with a wrong CRC-32");
    }
    reply_t r = {body[0], rd16(body + 2), body + PB_HEADER_LEN, len - PB_HEADER_LEN};
    if (r.type == PB_MSG_ERROR) {
        if (r.payload_len < PB_ERROR_FIXED_LEN || r.payload_len != PB_ERROR_FIXED_LEN + r.payload[1]) {
            fail("an ERROR reply whose text length does not add up");
        }
        if (r.payload[0] < PB_ERR_BAD_CRC || r.payload[0] > PB_ERR_INTERNAL) {
            fail("an ERROR reply with code %u", r.payload[0]);
        }
    } else if (r.type != (PB_MSG_HELLO | PB_MSG_REPLY) && r.type != (PB_MSG_INFER | PB_MSG_REPLY) &&
               r.type != (PB_MSG_PROFILE | PB_MSG_REPLY)) {
        fail("a reply of type 0x%02x", r.type);
    }
    return r;
}

static void expect_error(const reply_t *r, uint16_t seq, uint8_t code)
{
    if (r->type != PB_MSG_ERROR || r->payload[0] != code || r->seq != seq) {
        fail("expected ERROR %u for seq %u, got type 0x%02x seq %u code %u", code, seq, r->type, r->seq,
             r->type == PB_MSG_ERROR ? r->payload[0] : 0u);
    }
}

/* A valid request gets exactly the reply the protocol defines. */
static void check_answer(const request_t *q, const reply_t *r)
{
    const size_t n = image_len();
    const uint16_t k = pb_model_info.num_classes;
    if (q->type == PB_MSG_HELLO) {
        if (q->payload_len != 0) {
            expect_error(r, q->seq, PB_ERR_BAD_LENGTH);
            return;
        }
        if (r->type != (PB_MSG_HELLO | PB_MSG_REPLY) || r->seq != q->seq ||
            r->payload_len != PB_HELLO_FIXED_LEN + r->payload[3] || r->payload[0] != PB_PROTOCOL_VERSION ||
            memcmp(r->payload + 12, pb_model_info.sha256, 32) != 0 || rd16(r->payload + 44) != pb_model_info.channels ||
            rd16(r->payload + 46) != pb_model_info.height || rd16(r->payload + 48) != pb_model_info.width ||
            rd16(r->payload + 50) != k || rd32(r->payload + 8) != PB_MAX_PAYLOAD) {
            fail("a wrong answer to HELLO seq %u", q->seq);
        }
        return;
    }
    if (q->type != PB_MSG_INFER && q->type != PB_MSG_PROFILE) {
        expect_error(r, q->seq, PB_ERR_UNKNOWN_TYPE);
        return;
    }
    if (q->payload_len != n) {
        expect_error(r, q->seq, PB_ERR_BAD_LENGTH);
        return;
    }
    static int32_t logits[PB_MAX_CLASSES];
    uint32_t class_index = 0;
    int st = pb_model_run(q->payload, logits, &class_index);
    if (st != PB_OK) {
        expect_error(r, q->seq, PB_ERR_MODEL);
        return;
    }
    const size_t fixed = q->type == PB_MSG_INFER ? PB_INFER_FIXED_LEN : PB_PROFILE_FIXED_LEN;
    const uint16_t classes = rd16(r->payload + (q->type == PB_MSG_INFER ? 12 : 8));
    if (r->type != (q->type | PB_MSG_REPLY) || r->seq != q->seq || r->payload_len < fixed + 4u * k ||
        rd32(r->payload) != class_index || classes != k) {
        fail("a wrong answer to %s seq %u", q->type == PB_MSG_INFER ? "INFER" : "PROFILE", q->seq);
    }
    for (uint16_t c = 0; c < k; c++) {
        if ((int32_t)rd32(r->payload + fixed + 4u * c) != logits[c]) {
            fail("logit %u of seq %u differs from pb_model_run's", c, q->seq);
        }
    }
    const size_t layers = q->type == PB_MSG_PROFILE ? rd16(r->payload + 10) : 0u;
    if (r->payload_len != fixed + 4u * k + 8u * layers) {
        fail("a reply of %zu payload bytes for %u logits and %zu layers", r->payload_len, k, layers);
    }
}

/* ---- the receive path, as main.c runs it ---------------------------------------------------------- */

typedef struct {
    pb_protocol_ctx_t ctx;
    pb_frame_rx_t rx;
    uint8_t *tx;
    size_t tx_cap;
} board_t;

static void *exact(size_t n)
{
    void *p = malloc(n ? n : 1u);
    if (!p) {
        abort();
    }
    return p;
}

static board_t board_new(size_t rx_cap)
{
    board_t b;
    b.ctx = (pb_protocol_ctx_t){
        .reply = exact(PB_MAX_REPLY),
        .reply_cap = PB_MAX_REPLY,
        .logits = exact(sizeof(int32_t) * PB_MAX_CLASSES),
        .logits_cap = PB_MAX_CLASSES,
        .layer_marks = exact(sizeof(uint64_t) * (PB_MAX_LAYERS + 1u)),
        .layer_marks_cap = PB_MAX_LAYERS + 1u,
    };
    pb_frame_rx_init(&b.rx, exact(rx_cap), rx_cap);
    b.tx_cap = PB_TX_CAP;
    b.tx = exact(b.tx_cap);
    return b;
}

static void board_free(board_t *b)
{
    free(b->ctx.reply);
    free(b->ctx.logits);
    free(b->ctx.layer_marks);
    free(b->rx.buf);
    free(b->tx);
}

/* Feeds the bytes; returns how many replies came, checking each; `check(index, reply)` may check more. */
static size_t feed(board_t *b, const bytes_t *in, const request_t *requests, size_t n_requests)
{
    size_t replies = 0;
    input_bytes = in->data;
    input_len = in->len;
    for (size_t i = 0; i < in->len; i++) {
        pb_frame_event_t ev = pb_frame_rx_push(&b->rx, in->data[i]);
        size_t reply_len = pb_protocol_answer(&b->ctx, &b->rx, ev);
        if (ev == PB_FRAME_NONE) {
            if (reply_len != 0) {
                fail("a reply to no frame");
            }
            continue;
        }
        if (reply_len == 0 || reply_len > PB_MAX_REPLY) {
            fail("a frame answered with a reply of %zu bytes", reply_len);
        }
        uart_len = 0;
        if (pb_frame_send(b->ctx.reply, reply_len, b->tx, b->tx_cap) != PB_COBS_OK) {
            fail("pb_frame_send could not encode a reply of %zu bytes", reply_len);
        }
        reply_t r = check_reply_frame();
        if (ev == PB_FRAME_TOO_LONG) {
            expect_error(&r, PB_SEQ_UNKNOWN, PB_ERR_FRAME_TOO_LONG);
        }
        if (requests != NULL) {
            if (replies >= n_requests) {
                fail("more replies than requests");
            }
            check_answer(&requests[replies], &r);
        }
        replies++;
    }
    return replies;
}

/* ---- COBS alone, against the reference ------------------------------------------------------------ */

static void fuzz_cobs(void)
{
    static uint8_t data[1200], ref[1300];
    size_t n = below(sizeof data);
    unsigned zeros = (unsigned)below(4); /* none, few, many, all */
    for (size_t i = 0; i < n; i++) {
        data[i] = zeros == 3 || (zeros && chance(zeros * 15u)) ? 0u : (uint8_t)(1u + below(255));
    }
    input_bytes = data;
    input_len = n;

    /* Encode into the worst case, then into less room than it needs. */
    size_t cap = PB_COBS_MAX_ENCODED(n), got = 0;
    uint8_t *out = exact(cap);
    if (pb_cobs_encode(data, n, out, cap, &got) != PB_COBS_OK || got > cap || memchr(out, 0, got)) {
        fail("pb_cobs_encode of %zu bytes into %zu", n, cap);
    }
    long back = ref_cobs_decode(out, got, ref);
    if (back != (long)n || memcmp(ref, data, n) != 0) {
        fail("pb_cobs_encode output does not decode back (%ld of %zu bytes)", back, n);
    }
    free(out);
    size_t small = below(got + 1u);
    out = exact(small);
    int st = pb_cobs_encode(data, n, out, small, &got);
    if (st == PB_COBS_OK && got > small) {
        fail("pb_cobs_encode wrote %zu bytes into %zu", got, small);
    }
    free(out);

    /* Decode arbitrary bytes (or a valid encoding, mutated) into a random amount of room. */
    bytes_t enc = {0};
    if (chance(50)) {
        put(&enc, data, n);
    } else {
        uint8_t *tmp = exact(PB_COBS_MAX_ENCODED(n));
        put(&enc, tmp, ref_cobs_encode(data, n, tmp));
        free(tmp);
        if (chance(50)) {
            mutate(&enc);
        }
    }
    input_bytes = enc.data;
    input_len = enc.len;
    uint8_t *expected = exact(enc.len); /* decoding never grows */
    long expect = ref_cobs_decode(enc.data, enc.len, expected);
    size_t room = chance(50) ? enc.len : below(enc.len + 1u);
    out = exact(room);
    st = pb_cobs_decode(enc.data, enc.len, out, room, &got);
    if (expect < 0 && st == PB_COBS_OK) {
        fail("pb_cobs_decode accepted invalid COBS");
    }
    if (expect >= 0 && (size_t)expect <= room &&
        (st != PB_COBS_OK || got != (size_t)expect || memcmp(out, expected, got) != 0)) {
        fail("pb_cobs_decode differs from the reference (status %d, %zu bytes, expected %ld)", st, got, expect);
    }
    if (expect >= 0 && (size_t)expect > room && st != PB_COBS_ERR_OVERFLOW) {
        fail("pb_cobs_decode of %ld bytes into %zu did not report overflow (status %d)", expect, room, st);
    }
    free(out);
    free(expected);
    free(enc.data);
}

/* ---- the run --------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    unsigned long iterations = 20000;
    double seconds = 0.0;
    seed_given = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seed") == 0) {
            seed_given = strtoull(argv[i + 1], NULL, 0);
        } else if (strcmp(argv[i], "--iterations") == 0) {
            iterations = strtoul(argv[i + 1], NULL, 0);
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = strtod(argv[i + 1], NULL);
        } else {
            fprintf(stderr, "usage: pb_fuzz [--seed N] [--iterations N] [--seconds S]\n");
            return 2;
        }
    }
    rng = seed_given;
    uart_cap = PB_TX_CAP + 1u;
    uart = exact(uart_cap);
    const clock_t start = clock();
    board_t board = board_new(PB_RX_CAP); /* the firmware's own receive buffer; it lives across inputs */
    static request_t requests[4];
    size_t frames = 0, valid = 0, small_buffers = 0;

    for (iteration = 0; iteration < iterations; iteration++) {
        if (seconds > 0 && (double)(clock() - start) / CLOCKS_PER_SEC > seconds) {
            break;
        }
        fuzz_cobs();
        size_t n_requests = 1u + below(4);
        bytes_t in = {0};
        for (size_t k = 0; k < n_requests; k++) {
            random_request(&requests[k]);
            encode_request(&in, &requests[k]);
        }
        if (chance(25)) {
            /* Valid requests after a flush: each must get exactly its answer. */
            pb_frame_rx_reset(&board.rx);
            if (feed(&board, &in, requests, n_requests) != n_requests) {
                fail("%zu valid requests did not get %zu replies", n_requests, n_requests);
            }
            valid += n_requests;
        } else if (chance(15)) {
            /* A receive buffer of a few bytes: most frames are too long for it. */
            board_t tiny = board_new(1u + below(64));
            mutate(&in);
            frames += feed(&tiny, &in, NULL, 0);
            board_free(&tiny);
            small_buffers++;
        } else {
            mutate(&in);
            frames += feed(&board, &in, NULL, 0);
        }
        free(in.data);
    }
    board_free(&board);
    free(uart);
    printf("pb_fuzz: seed %llu: %lu inputs (%zu valid requests answered exactly, %zu mutated frames answered, "
           "%zu runs with a small receive buffer), no failure\n",
           seed_given, iteration, valid, frames, small_buffers);
    return 0;
}
