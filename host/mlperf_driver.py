"""Child process of :func:`pbkit.host.mlperf.run_runner`: the MLPerf Tiny runner's own classes
(DUT, DataSet, Script), unmodified, driven the way its main.py drives a directly connected DUT.

main.py itself is not imported: it starts with USB device discovery (pyusb, joulescope) and
sklearn for the AUC, neither of which a host-to-DUT serial link needs. What it does for a DUT
is repeated here in order: the baud rate from devices_kws_ic_vww.yaml (runner_utils.get_baud_rate),
init_dut (name, model, profile after a 2 s settle), Script(tests[model]), DataSet(dataset/model,
truth) and script.run(None, dut, dataset, mode).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runner", required=True)
    parser.add_argument("--port", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--mode", choices=["p", "a"], required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sys.path.insert(0, args.runner)

    import yaml
    from datasets import DataSet  # pyright: ignore[reportMissingImports] - the runner's, on sys.path above
    from device_under_test import DUT  # pyright: ignore[reportMissingImports] - the runner's, on sys.path above
    from runner_utils import get_baud_rate  # pyright: ignore[reportMissingImports] - the runner's, on sys.path above
    from script import Script  # pyright: ignore[reportMissingImports] - from here on, print() goes to the runner's log

    with open(os.path.join(args.runner, "devices_kws_ic_vww.yaml")) as f:
        dut_config = next(d for d in yaml.safe_load(f) if d["type"] == "dut")
    script_file = {"p": "tests_performance.yaml", "a": "tests_accuracy.yaml"}[args.mode]
    with open(os.path.join(args.runner, script_file)) as f:
        tests = yaml.safe_load(f)

    dut = DUT(args.port, baud_rate=get_baud_rate(dut_config, args.mode))
    with dut:
        time.sleep(2)
        name, model, profile = dut.get_name(), dut.get_model(), dut.get_profile()
    if model not in tests:
        raise SystemExit(f"the DUT reports model {model!r}, which {script_file} has no script for")
    script = Script(tests[model])
    dataset = DataSet(os.path.join(args.dataset, script.model), script.truth)
    result = script.run(None, dut, dataset, args.mode)
    if isinstance(result, dict):
        result = [result]
    for r in result:
        r["dut"] = {"name": name, "model": model, "profile": profile}
    with open(args.out, "w") as f:
        json.dump(result, f, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
