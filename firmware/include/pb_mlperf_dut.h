/*
 * pb_mlperf_dut.h - the device side of the MLCommons / EEMBC MLPerf Tiny host-DUT
 * protocol (performance and accuracy modes, model ic01), as the runner in
 * mlcommons/tiny benchmark/runner speaks it: '%'-terminated text commands, text replies,
 * "m-ready" after every command. Selected at build time (pbkit build --protocol mlperf)
 * instead of pbkit's framed protocol (main.c, pb_protocol.c).
 *
 * Commands: name, profile, help, timestamp, db load N, db HEX..., infer N [W], results.
 * The runner sends the image as its .bin file holds it: H x W x C uint8 (HWC, RGB); infer
 * reorders it to the CHW layout pb_model.h takes before the first timestamp, so the
 * timed region holds only the N model runs. m-lap-us-T is the board's counter
 * (pb_counter_read) in microseconds of its clock: DWT cycles / PB_CLOCK_HZ on hardware,
 * and under QEMU -icount virtual time, i.e. instructions x 2^shift ns.
 * results prints softmax(logits) of the last run to 3 decimals, computed in integers
 * (the logits are integers): its argmax is the model's class.
 * All state lives in a caller-owned pb_mlperf_dut_t: nothing here is global.
 */
#ifndef PB_MLPERF_DUT_H
#define PB_MLPERF_DUT_H

#include <stdint.h>

/* Longest command (without the '%'); the runner's longest, "db " + 31 bytes as hex, is 65. */
#define PB_MLPERF_CMD_CAP 128

typedef struct {
    uint8_t *db; /* the "db" buffer: bytes as the runner sends them (HWC) */
    uint32_t db_cap;
    uint32_t db_expected; /* N of the last "db load N" */
    uint32_t db_loaded;   /* bytes received since */
    uint8_t *chw;         /* model input, reordered from db (db_cap bytes) */
    int32_t *logits;      /* the last run's logits */
    uint32_t logits_cap;
    uint32_t class_index;
    uint8_t have_results;
} pb_mlperf_dut_t;

void pb_mlperf_dut_init(pb_mlperf_dut_t *dut, uint8_t *db, uint8_t *chw, uint32_t cap, int32_t *logits,
                        uint32_t logits_cap);

/* Handles one command (NUL-terminated, '%' stripped; modified in place) and writes its
 * reply, then "m-ready", to the UART. */
void pb_mlperf_dut_command(pb_mlperf_dut_t *dut, char *command);

/* What the firmware prints once at boot (the EEMBC monitor's banner), then m-ready. */
void pb_mlperf_dut_banner(void);

/* Helpers shared with the main loop. */
void pb_mlperf_puts(const char *s);
void pb_mlperf_ready(void);

#endif /* PB_MLPERF_DUT_H */
