/*
 * main.c - the firmware's whole life: bring the board up, then answer frames from the
 * host forever (host-driven: the board never speaks first).
 */
#include <stddef.h>
#include <stdint.h>

#include "pb_board.h"
#include "pb_frame.h"
#include "pb_protocol.h"

/* Word alignment of rx_buf puts the decoded image on a 4-byte boundary (the header is
 * 4 bytes), so a model may read it with word loads. */
static uint8_t rx_buf[PB_RX_CAP] __attribute__((aligned(4)));
static uint8_t reply_buf[PB_MAX_REPLY] __attribute__((aligned(4)));
static uint8_t tx_buf[PB_TX_CAP];
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
        size_t reply_len = pb_protocol_answer(&ctx, &rx, ev);

        if (reply_len != 0u) {
            (void)pb_frame_send(reply_buf, reply_len, tx_buf, sizeof tx_buf);
        }
    }
}
