/*
 * pb_frame.h - the byte-level side of the link: collects COBS-encoded bytes up to the
 * 0x00 delimiter, and sends a frame body COBS-encoded with its delimiter.
 *
 * The receiver never blocks on a bad frame: whatever arrives, the next 0x00 ends the
 * frame, so one corrupt frame can never swallow the following good one.
 */
#ifndef PB_FRAME_H
#define PB_FRAME_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PB_FRAME_NONE = 0,     /* no complete frame yet */
    PB_FRAME_READY = 1,    /* rx->buf[0..rx->len) holds one encoded frame (no delimiter) */
    PB_FRAME_TOO_LONG = 2, /* a frame longer than the buffer was dropped up to its 0x00 */
} pb_frame_event_t;

typedef struct {
    uint8_t *buf; /* caller-owned storage for one encoded frame */
    size_t cap;
    size_t len;
    uint8_t overflow; /* set once the current frame outgrew buf: discard until 0x00 */
} pb_frame_rx_t;

void pb_frame_rx_init(pb_frame_rx_t *rx, uint8_t *buf, size_t cap);
/* Feeds one received byte; on READY the caller consumes buf/len and calls reset. */
pb_frame_event_t pb_frame_rx_push(pb_frame_rx_t *rx, uint8_t byte);
void pb_frame_rx_reset(pb_frame_rx_t *rx);

/* COBS-encodes body into scratch and writes it plus the 0x00 delimiter to the UART. */
int pb_frame_send(const uint8_t *body, size_t len, uint8_t *scratch, size_t scratch_cap);

#endif /* PB_FRAME_H */
