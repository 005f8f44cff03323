/*
 * pb_mlperf_main.c - main() of the MLPerf Tiny DUT build (pbkit build --protocol mlperf):
 * bring the board up, then collect '%'-terminated commands from the UART and answer each
 * (pb_mlperf_dut.c). Replaces main.c, pbkit's framed protocol, in that build.
 */
#include <stdint.h>

#include "pb_board.h"
#include "pb_mlperf_dut.h"
#include "pb_protocol.h" /* PB_MAX_PAYLOAD, PB_MAX_CLASSES: the same build knobs as main.c */

#define CMD_TERMINATOR '%'
#define STR_(x)        #x
#define STR(x)         STR_(x)

static uint8_t db_buf[PB_MAX_PAYLOAD] __attribute__((aligned(4)));
static uint8_t chw_buf[PB_MAX_PAYLOAD] __attribute__((aligned(4)));
static int32_t logits_buf[PB_MAX_CLASSES];

int main(void)
{
    static char command[PB_MLPERF_CMD_CAP + 1];
    uint32_t len = 0u;
    uint8_t overflow = 0u;
    pb_mlperf_dut_t dut;

    pb_board_init();
    pb_mlperf_dut_init(&dut, db_buf, chw_buf, sizeof db_buf, logits_buf, PB_MAX_CLASSES);
    pb_mlperf_dut_banner();

    for (;;) {
        const char c = (char)pb_uart_read_byte();
        if (c == CMD_TERMINATOR) {
            command[len] = '\0';
            if (overflow) {
                pb_mlperf_puts("e-[Command longer than " STR(PB_MLPERF_CMD_CAP) " characters, dropped]\r\n");
                pb_mlperf_ready();
            } else {
                pb_mlperf_dut_command(&dut, command);
            }
            len = 0u;
            overflow = 0u;
        } else if (c == '\r' || c == '\n' || c == '\0') {
            /* line ends from a terminal are not part of a command */
        } else if (len < PB_MLPERF_CMD_CAP) {
            command[len++] = c;
        } else {
            overflow = 1u;
        }
    }
}
