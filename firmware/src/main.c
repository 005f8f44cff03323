/*
 * main.c - the firmware's whole life: bring the board up, then answer frames from the
 * host forever (host-driven: the board never speaks first).
 */
#include <stddef.h>
#include <stdint.h>

#include "pb_board.h"
#include "pb_cobs.h"
#include "pb_frame.h"
#include "pb_protocol.h"

/* Encoded request frames are at most one COBS overhead byte per 254 longer. */
#define RX_CAP PB_COBS_MAX_ENCODED(PB_MAX_REQUEST)
#define TX_CAP PB_COBS_MAX_ENCODED(PB_MAX_REPLY)

/* Word alignment of rx_buf puts the decoded image on a 4-byte boundary (the header is
 * 4 bytes), so a model may read it with word loads. */
static uint8_t rx_buf[RX_CAP] __attribute__((aligned(4)));
static uint8_t reply_buf[PB_MAX_REPLY] __attribute__((aligned(4)));
static uint8_t tx_buf[TX_CAP];
static int32_t logits_buf[PB_MAX_CLASSES];
static uint64_t layer_marks_buf[PB_MAX_LAYERS + 1u]; /* the start, then one per layer */

int main(void)
{
    const pb_protocol_ctx_t ctx = {
        .reply = reply_buf,
        .reply_cap = sizeof reply_buf,
        .logits = logits_buf,
        .logits_cap = PB_MAX_CLASSES,
        .layer_marks = layer_marks_buf,
        .layer_marks_cap = PB_MAX_LAYERS + 1u,
    };
    pb_frame_rx_t rx;

    pb_board_init();
    pb_frame_rx_init(&rx, rx_buf, sizeof rx_buf);

    for (;;) {
        pb_frame_event_t ev = pb_frame_rx_push(&rx, pb_uart_read_byte());
        size_t reply_len;

        if (ev == PB_FRAME_NONE) {
            continue;
        }
        if (ev == PB_FRAME_TOO_LONG) {
            reply_len = pb_protocol_error(&ctx, PB_SEQ_UNKNOWN, PB_ERR_FRAME_TOO_LONG, (int32_t)RX_CAP,
                                          "frame too long, dropped");
        } else {
            size_t body_len = 0;
            /* Decoding in place is safe: COBS output never outruns its input. */
            if (pb_cobs_decode(rx.buf, rx.len, rx.buf, rx.cap, &body_len) != PB_COBS_OK) {
                reply_len = pb_protocol_error(&ctx, PB_SEQ_UNKNOWN, PB_ERR_BAD_COBS, 0, "bad COBS encoding");
            } else {
                reply_len = pb_protocol_handle(&ctx, rx.buf, body_len);
            }
        }
        pb_frame_rx_reset(&rx);
        (void)pb_frame_send(reply_buf, reply_len, tx_buf, sizeof tx_buf);
    }
}
