/* pb_mlperf_dut.c - MLPerf Tiny host-DUT commands for ic01 (see pb_mlperf_dut.h). */
#include "pb_mlperf_dut.h"

#include <stddef.h>

#include "pb_board.h"
#include "pb_model.h"

#define FW_VERSION    "ULPMark for tinyML Firmware V0.0.1" /* what the runner's profile line carries */
#define MODEL_VERSION "ic01"
#define MAX_TOKENS    4u

/* round(2^24 * e^-d) for d = 0..17; e^-d rounds to 0 in Q24 beyond. */
/* clang-format off */
static const uint32_t exp_neg_q24[] = {
    16777216u, 6171993u, 2270549u, 835288u, 307285u, 113044u, 41587u, 15299u, 5628u,
    2070u, 762u, 280u, 103u, 38u, 14u, 5u, 2u, 1u,
};
/* clang-format on */
#define EXP_TABLE_LEN (sizeof exp_neg_q24 / sizeof exp_neg_q24[0])

void pb_mlperf_puts(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    pb_uart_write((const uint8_t *)s, n);
}

static void put_u64(uint64_t v)
{
    char buf[21];
    uint32_t i = sizeof buf - 1u;
    buf[i] = '\0';
    do {
        buf[--i] = (char)('0' + (uint32_t)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    pb_mlperf_puts(&buf[i]);
}

static void put_line_u64(const char *prefix, uint64_t v)
{
    pb_mlperf_puts(prefix);
    put_u64(v);
    pb_mlperf_puts("\r\n");
}

void pb_mlperf_ready(void)
{
    pb_mlperf_puts("m-ready\r\n");
}

static int str_eq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

/* Decimal digits only; -1 when s is not a non-negative number below 2^31. */
static int32_t parse_u31(const char *s)
{
    int32_t v = 0;
    if (*s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > 214748363) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Splits command at spaces, in place; returns the token count (at most MAX_TOKENS). */
static uint32_t tokenize(char *command, char *tokens[MAX_TOKENS])
{
    uint32_t n = 0;
    char *p = command;
    while (*p != '\0' && n < MAX_TOKENS) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        tokens[n++] = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
    }
    return n;
}

void pb_mlperf_dut_init(pb_mlperf_dut_t *dut, uint8_t *db, uint8_t *chw, uint32_t cap, int32_t *logits,
                        uint32_t logits_cap)
{
    dut->db = db;
    dut->chw = chw;
    dut->db_cap = cap;
    dut->db_expected = 0u;
    dut->db_loaded = 0u;
    dut->logits = logits;
    dut->logits_cap = logits_cap;
    dut->class_index = 0u;
    dut->have_results = 0u;
}

static uint64_t counter_us(void)
{
    const uint64_t ticks = pb_counter_read();
    return (ticks / PB_CLOCK_HZ) * 1000000u + ((ticks % PB_CLOCK_HZ) * 1000000u) / PB_CLOCK_HZ;
}

static void timestamp(void)
{
    put_line_u64("m-lap-us-", counter_us());
}

static void db_load(pb_mlperf_dut_t *dut, const char *count)
{
    const int32_t n = parse_u31(count);
    if (n <= 0) {
        pb_mlperf_puts("e-[Command 'db load' must be >0 bytes]\r\n");
        return;
    }
    if ((uint32_t)n > dut->db_cap) {
        pb_mlperf_puts("e-[db load: ");
        put_u64((uint64_t)n);
        pb_mlperf_puts(" bytes exceed the buffer of ");
        put_u64(dut->db_cap);
        pb_mlperf_puts("]\r\n");
        return;
    }
    dut->db_expected = (uint32_t)n;
    dut->db_loaded = 0u;
    pb_mlperf_puts("m-[Expecting ");
    put_u64((uint64_t)n);
    pb_mlperf_puts(" bytes]\r\n");
}

static void db_hex(pb_mlperf_dut_t *dut, const char *hex)
{
    uint32_t len = 0;
    while (hex[len] != '\0') {
        len++;
    }
    if ((len & 1u) != 0u) {
        pb_mlperf_puts("e-[Insufficient number of hex digits]\r\n");
        return;
    }
    for (uint32_t i = 0; i < len; i += 2u) {
        const int hi = hex_digit(hex[i]);
        const int lo = hex_digit(hex[i + 1u]);
        if (hi < 0 || lo < 0) {
            pb_mlperf_puts("e-[Invalid hex digit]\r\n");
            return;
        }
        if (dut->db_loaded >= dut->db_expected) {
            pb_mlperf_puts("e-[db: more bytes than 'db load' announced]\r\n");
            return;
        }
        dut->db[dut->db_loaded++] = (uint8_t)((hi << 4) | lo);
        if (dut->db_loaded == dut->db_expected) {
            pb_mlperf_puts("m-load-done\r\n");
            return; /* like the reference monitor: digits past the announced size are ignored */
        }
    }
}

/* db holds H x W x C bytes as the runner's .bin files do; pb_model_run takes C x H x W. */
static int load_tensor(pb_mlperf_dut_t *dut)
{
    const uint32_t c = pb_model_info.channels, h = pb_model_info.height, w = pb_model_info.width;
    const uint32_t n = c * h * w;
    if (dut->db_loaded != n || n > dut->db_cap) {
        pb_mlperf_puts("e-[Input db has ");
        put_u64(dut->db_loaded);
        pb_mlperf_puts(" elements, expected ");
        put_u64(n);
        pb_mlperf_puts("]\r\n");
        return 0;
    }
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            for (uint32_t k = 0; k < c; k++) {
                dut->chw[(k * h + y) * w + x] = dut->db[(y * w + x) * c + k];
            }
        }
    }
    return 1;
}

static int run_model(pb_mlperf_dut_t *dut)
{
    return pb_model_run(dut->chw, dut->logits, &dut->class_index);
}

/* softmax(logits) to 3 decimals with the integer logits taken as they are: e^(l - max)
 * from a Q24 table. Every value is round(1000 * p); the largest p is >= 1/classes and
 * logits differing by >= 1 differ in p by a factor >= e, so the argmax survives rounding. */
static void results(const pb_mlperf_dut_t *dut)
{
    const uint32_t classes = pb_model_info.num_classes;
    int32_t top = dut->logits[0];
    uint64_t sum = 0u;

    if (!dut->have_results) {
        pb_mlperf_puts("e-[No results: run infer first]\r\n");
        return;
    }
    for (uint32_t k = 1; k < classes; k++) {
        top = dut->logits[k] > top ? dut->logits[k] : top;
    }
    for (uint32_t k = 0; k < classes; k++) {
        const uint32_t d = (uint32_t)(top - dut->logits[k]);
        sum += d < EXP_TABLE_LEN ? exp_neg_q24[d] : 0u;
    }
    pb_mlperf_puts("m-results-[");
    for (uint32_t k = 0; k < classes; k++) {
        const uint32_t d = (uint32_t)(top - dut->logits[k]);
        const uint64_t e = d < EXP_TABLE_LEN ? exp_neg_q24[d] : 0u;
        const uint32_t milli = (uint32_t)((e * 1000u + sum / 2u) / sum);
        char frac[5] = {'.', (char)('0' + milli / 100u % 10u), (char)('0' + milli / 10u % 10u),
                        (char)('0' + milli % 10u), '\0'};
        put_u64(milli / 1000u);
        pb_mlperf_puts(frac);
        pb_mlperf_puts(k + 1u < classes ? "," : "]\r\n");
    }
}

static void infer(pb_mlperf_dut_t *dut, char *tokens[MAX_TOKENS], uint32_t n_tokens)
{
    int32_t n = 1, warmups = 10; /* the reference monitor's defaults */
    if (n_tokens > 1u) {
        n = parse_u31(tokens[1]);
        if (n <= 0) {
            pb_mlperf_puts("e-[Inference iterations must be >0]\r\n");
            return;
        }
    }
    if (n_tokens > 2u) {
        warmups = parse_u31(tokens[2]);
        if (warmups < 0) {
            pb_mlperf_puts("e-[Inference warmup must be >=0]\r\n");
            return;
        }
    }
    if (pb_model_info.num_classes > dut->logits_cap || !load_tensor(dut)) {
        return;
    }
    put_line_u64("m-warmup-start-", (uint64_t)warmups);
    int status = PB_OK;
    for (int32_t i = 0; i < warmups && status == PB_OK; i++) {
        status = run_model(dut);
    }
    pb_mlperf_puts("m-warmup-done\r\n");
    put_line_u64("m-infer-start-", (uint64_t)n);
    timestamp();
    for (int32_t i = 0; i < n && status == PB_OK; i++) {
        status = run_model(dut);
    }
    timestamp();
    pb_mlperf_puts("m-infer-done\r\n");
    if (status != PB_OK) {
        dut->have_results = 0u;
        pb_mlperf_puts("e-[pb_model_run failed with status ");
        pb_mlperf_puts(status < 0 ? "-" : "");
        put_u64((uint64_t)(status < 0 ? -(int64_t)status : status));
        pb_mlperf_puts("]\r\n");
        return;
    }
    dut->have_results = 1u;
    results(dut);
}

static void help(void)
{
    /* The help text in the runner's column layout (left as written by clang-format). */
    /* clang-format off */
    pb_mlperf_puts(FW_VERSION "\r\n"
                   "help         : Print this information\r\n"
                   "name         : Print the name of the device\r\n"
                   "timestamp    : Generate a timestamp\r\n"
                   "db load N    : Allocate N bytes and set load counter\r\n"
                   "db HH[HH]*   : Load 8-bit hex byte(s) until N bytes\r\n"
                   "infer N [W=10]: Load input, execute N inferences after W warmup loops\r\n"
                   "results      : Return the result vector\r\n");
    /* clang-format on */
}

void pb_mlperf_dut_command(pb_mlperf_dut_t *dut, char *command)
{
    char *tokens[MAX_TOKENS] = {0};
    const uint32_t n = tokenize(command, tokens);

    if (n == 0u) {
        /* an empty command (a lone '%') only gets the ready line */
    } else if (str_eq(tokens[0], "name")) {
        pb_mlperf_puts("m-name-dut-[pbkit " PB_BOARD_NAME "]\r\n");
    } else if (str_eq(tokens[0], "profile")) {
        pb_mlperf_puts("m-profile-[" FW_VERSION "]\r\nm-model-[" MODEL_VERSION "]\r\n");
    } else if (str_eq(tokens[0], "help")) {
        help();
    } else if (str_eq(tokens[0], "timestamp")) {
        timestamp();
    } else if (str_eq(tokens[0], "db")) {
        if (n < 2u) {
            pb_mlperf_puts("e-[Command 'db' requires a subcommand]\r\n");
        } else if (str_eq(tokens[1], "load")) {
            db_load(dut, n > 2u ? tokens[2] : "");
        } else {
            db_hex(dut, tokens[1]);
        }
    } else if (str_eq(tokens[0], "infer")) {
        infer(dut, tokens, n);
    } else if (str_eq(tokens[0], "results")) {
        results(dut);
    } else {
        pb_mlperf_puts("e-[Unknown command: ");
        pb_mlperf_puts(tokens[0]);
        pb_mlperf_puts("]\r\n");
    }
    pb_mlperf_ready();
}

void pb_mlperf_dut_banner(void)
{
    pb_mlperf_puts("m-timestamp-mode-performance\r\n");
    timestamp();
    pb_mlperf_puts("m-init-done\r\n");
    pb_mlperf_ready();
}
