# Host build of the firmware's link code (frame, COBS, CRC-32, protocol) with AddressSanitizer and
# UndefinedBehaviorSanitizer, driven by firmware/host/pb_fuzz.c. Run from the repository root:
#   make -f firmware/host/fuzz.mk run SEED=1 ITERATIONS=20000
# SRC may point at a copy of firmware/src (tests/test_fuzz.py plants a bug in one); MODEL is the model
# behind pb_model.h (default: the stub model of the firmware tests).
FW ?= firmware
SRC ?= $(FW)/src
MODEL ?= tests/fixtures/stub_model/model.c
OUT ?= build/fuzz
FUZZ_CC ?= gcc
SEED ?= 1
ITERATIONS ?= 20000
SECONDS_MAX ?= 0

SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# Board facts a host build stands in for (pb_board.h requires them).
BOARD := -DPB_BOARD_NAME='"host-fuzz"' -DPB_CLOCK_HZ=1000000u -DPB_COUNTER_KIND=1 -DPB_ICOUNT_SHIFT=0
CFLAGS := -std=c11 -O1 -g -Wall -Wextra $(SANITIZE) $(BOARD) -I$(FW)/include
LINK_SOURCES := $(SRC)/pb_frame.c $(SRC)/pb_cobs.c $(SRC)/pb_crc32.c $(SRC)/pb_protocol.c $(SRC)/pb_layer_timer.c

.PHONY: run
$(OUT)/pb_fuzz: $(FW)/host/pb_fuzz.c $(LINK_SOURCES) $(MODEL) $(wildcard $(FW)/include/*.h)
	@mkdir -p $(OUT)
	$(FUZZ_CC) $(CFLAGS) $(FW)/host/pb_fuzz.c $(LINK_SOURCES) $(MODEL) -o $@

run: $(OUT)/pb_fuzz
	$(OUT)/pb_fuzz --seed $(SEED) --iterations $(ITERATIONS) --seconds $(SECONDS_MAX)
