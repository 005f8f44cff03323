/*
 * pb_protocol.h - message layer of the host link (see docs/protocol.md).
 *
 * A frame body is: header (4 bytes) | payload | CRC-32 (4 bytes, little-endian) over
 * header and payload. Header: type u8, reserved u8 (0), seq u16 LE. Replies echo seq;
 * errors about frames whose header cannot be trusted carry PB_SEQ_UNKNOWN.
 * This layer is pure: no I/O, so it is the same code on every board.
 */
#ifndef PB_PROTOCOL_H
#define PB_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "pb_cobs.h"
#include "pb_frame.h"

/* 2 added PROFILE; HELLO and INFER are unchanged since 1. */
#define PB_PROTOCOL_VERSION 2u

#define PB_HEADER_LEN  4u
#define PB_CRC_LEN     4u
#define PB_SEQ_UNKNOWN 0xFFFFu

/* Largest request payload (the image); the build may raise it with -DPB_MAX_PAYLOAD. */
#ifndef PB_MAX_PAYLOAD
#define PB_MAX_PAYLOAD 16384u
#endif
/* Most logits an INFER reply can carry. */
#ifndef PB_MAX_CLASSES
#define PB_MAX_CLASSES 256u
#endif
/* Most layers a PROFILE reply can time (ReActNet-18: stem + 16 blocks + head = 18). */
#ifndef PB_MAX_LAYERS
#define PB_MAX_LAYERS 64u
#endif

#define PB_MAX_BOARD_NAME 32u

/* Message types: a reply is the request type | 0x80. */
#define PB_MSG_HELLO   0x01u
#define PB_MSG_INFER   0x02u
#define PB_MSG_PROFILE 0x03u
#define PB_MSG_REPLY   0x80u
#define PB_MSG_ERROR   0x7Fu

/* Error codes carried by an ERROR reply. */
#define PB_ERR_BAD_CRC         1u
#define PB_ERR_BAD_COBS        2u
#define PB_ERR_UNKNOWN_TYPE    3u
#define PB_ERR_BAD_LENGTH      4u
#define PB_ERR_FRAME_TOO_LONG  5u
#define PB_ERR_MODEL           6u
#define PB_ERR_FRAME_TOO_SHORT 7u
#define PB_ERR_INTERNAL        8u

#define PB_HELLO_FIXED_LEN   52u
#define PB_INFER_FIXED_LEN   16u
#define PB_PROFILE_FIXED_LEN 16u
#define PB_ERROR_FIXED_LEN   8u

/* Largest reply body: a PROFILE reply with PB_MAX_CLASSES logits and PB_MAX_LAYERS layer
 * counts (an INFER reply is the same without the layers). */
#define PB_MAX_REPLY   (PB_HEADER_LEN + PB_PROFILE_FIXED_LEN + 4u * PB_MAX_CLASSES + 8u * PB_MAX_LAYERS + PB_CRC_LEN)
/* Largest request body. */
#define PB_MAX_REQUEST (PB_HEADER_LEN + PB_MAX_PAYLOAD + PB_CRC_LEN)
/* On the wire (COBS adds at most one byte per 254): the receive buffer for one request frame
 * and the send buffer for one reply. */
#define PB_RX_CAP      PB_COBS_MAX_ENCODED(PB_MAX_REQUEST)
#define PB_TX_CAP      PB_COBS_MAX_ENCODED(PB_MAX_REPLY)

/* Buffers the caller lends to the protocol (main.c owns them: no hidden state here). */
typedef struct {
    uint8_t *reply; /* at least PB_MAX_REPLY bytes */
    size_t reply_cap;
    int32_t *logits; /* at least PB_MAX_CLASSES entries */
    size_t logits_cap;
    uint64_t *layer_marks; /* PROFILE: the start and one counter reading per layer (PB_MAX_LAYERS + 1) */
    size_t layer_marks_cap;
} pb_protocol_ctx_t;

/* Handles one decoded frame body and writes the reply body (CRC included) into
 * ctx->reply. Returns the reply length (always > 0: every frame gets an answer). */
size_t pb_protocol_handle(const pb_protocol_ctx_t *ctx, const uint8_t *body, size_t len);

/* Answers what pb_frame_rx_push reported: a READY frame is COBS-decoded in place and handled, a
 * frame dropped as too long gets FRAME_TOO_LONG; then rx is reset for the next frame. Returns the
 * reply length, 0 for PB_FRAME_NONE (nothing to answer). This is the firmware's whole receive
 * path after the UART, so the host fuzz harness (firmware/host/pb_fuzz.c) drives exactly it. */
size_t pb_protocol_answer(const pb_protocol_ctx_t *ctx, pb_frame_rx_t *rx, pb_frame_event_t event);

/* Writes an ERROR reply body; returns its length. */
size_t pb_protocol_error(const pb_protocol_ctx_t *ctx, uint16_t seq, uint8_t code, int32_t detail, const char *text);

#endif /* PB_PROTOCOL_H */
