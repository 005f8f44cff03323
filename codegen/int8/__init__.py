"""The int8 yardstick: a TFLite int8 model (the MLPerf Tiny ResNet-8) as C for CMSIS-NN.

``tflite_reader`` reads the .tflite flatbuffer (with the ``tflite`` package) into plain data,
``lower`` turns it into CMSIS-NN calls with TFLite's integer quantization parameters and a
static arena plan, ``render`` prints the C with one Jinja template. The runtime that walks the
generated op table is firmware/int8/pb_int8_run.c; CMSIS-NN itself is built in place from
``--cmsis-nn`` (default ../shared/cmsis-nn), never copied here.
"""
