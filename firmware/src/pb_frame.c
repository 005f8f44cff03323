/* pb_frame.c - frame delimiting on the UART byte stream (see pb_frame.h). */
#include "pb_frame.h"

#include "pb_board.h"
#include "pb_cobs.h"

void pb_frame_rx_init(pb_frame_rx_t *rx, uint8_t *buf, size_t cap)
{
    rx->buf = buf;
    rx->cap = cap;
    pb_frame_rx_reset(rx);
}

void pb_frame_rx_reset(pb_frame_rx_t *rx)
{
    rx->len = 0;
    rx->overflow = 0;
}

pb_frame_event_t pb_frame_rx_push(pb_frame_rx_t *rx, uint8_t byte)
{
    if (byte == 0u) {
        if (rx->overflow) {
            pb_frame_rx_reset(rx);
            return PB_FRAME_TOO_LONG;
        }
        /* Back-to-back delimiters are an empty frame: hosts send a lone 0x00 to flush
         * a half-received frame, so it is ignored rather than answered. */
        return rx->len == 0u ? PB_FRAME_NONE : PB_FRAME_READY;
    }
    if (rx->len < rx->cap) {
        rx->buf[rx->len++] = byte;
    } else {
        rx->overflow = 1u;
    }
    return PB_FRAME_NONE;
}

int pb_frame_send(const uint8_t *body, size_t len, uint8_t *scratch, size_t scratch_cap)
{
    static const uint8_t delimiter = 0u;
    size_t enc_len = 0;
    int st = pb_cobs_encode(body, len, scratch, scratch_cap, &enc_len);
    if (st != PB_COBS_OK) {
        return st;
    }
    pb_uart_write(scratch, (uint32_t)enc_len);
    pb_uart_write(&delimiter, 1u);
    return PB_COBS_OK;
}
