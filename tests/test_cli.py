import argparse
import json

import pytest
import torch

from pbkit.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, build_parser, main
from pbkit.trainer.checkpoint import save_checkpoint
from tests.cifar_fixture import write_tiny_cifar
from tests.support import random_model


def test_every_command_has_help():
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # no public accessor
    commands = action.choices
    assert set(commands) == {"train", "eval", "export", "build", "emulate", "bench", "profile", "ops", "models", "demo",
                             "experiment"}
    for sub in commands.values():
        assert sub.description or sub.format_help()


def test_eval_json_on_the_shipped_sample(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), ckpt)
    assert main(["eval", str(ckpt), "--limit", "20", "--json"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 20 and 0 <= out["top1"] <= out["top5"] <= 1
    assert len(out["model_sha256"]) == 64


def test_export_writes_sources_report_and_vectors(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), ckpt)
    assert main(["export", str(ckpt), "--target", "stm32", "--out", str(tmp_path / "out"), "--json"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["board"] == "netduinoplus2" and report["flash_bytes_model"] > 0
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert names == {"model_data.c", "pb_model_config.h", "memory_report.json", "test_vectors.bin"}


def test_export_refuses_a_model_too_big_and_writes_nothing(tmp_path, capsys):
    ckpt = tmp_path / "big.safetensors"
    save_checkpoint(random_model(64), ckpt)
    out = tmp_path / "out"
    assert main(["export", str(ckpt), "--board", "nucleo_f446re", "--out", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "does not fit nucleo_f446re" in err and "flash" in err
    assert not out.exists()


def test_errors_are_one_line_with_a_nonzero_exit(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "missing.safetensors")]) == EXIT_ERROR
    assert "no such checkpoint" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "x"), "--board", "nope", "--out", str(tmp_path)]) == EXIT_ERROR
    assert "unknown board 'nope'" in capsys.readouterr().err
    data = write_tiny_cifar(tmp_path / "cifar")
    (data / "data_batch_1").unlink()
    assert main(["train", "--width", "0.125", "--epochs", "1", "--data", str(data), "--out",
                 str(tmp_path / "run"), "--no-progress"]) == EXIT_ERROR
    assert "data_batch_1: missing" in capsys.readouterr().err


def test_eval_per_class_and_confusion_png(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), ckpt)
    png = tmp_path / "confusion.png"
    assert main(["eval", str(ckpt), "--limit", "30", "--json", "--confusion", str(png)]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert len(out["per_class_top1"]) == 10 and sum(map(sum, out["confusion"])) == 30
    assert png.stat().st_size > 1000


def test_ptq_converts_a_baseline_and_refuses_anything_else(tmp_path, capsys):
    from pbkit.trainer.checkpoint import load_checkpoint

    baseline, popbin = tmp_path / "baseline.safetensors", tmp_path / "popbin.safetensors"
    save_checkpoint(random_model(8, mode="baseline"), baseline)
    save_checkpoint(random_model(8), popbin)
    common = ["train", "--mode", "ptq-popcount", "--width", "0.125", "--data", "unused"]
    assert main([*common, "--from", str(popbin), "--out", str(tmp_path / "a")]) == EXIT_ERROR
    assert "is a popbin checkpoint; ptq-popcount converts a baseline" in capsys.readouterr().err
    assert main([*common[:-4], "--width", "0.25", "--data", "x", "--from", str(baseline),
                 "--out", str(tmp_path / "b")]) == EXIT_ERROR
    assert "not the requested reactnet18 width 0.25" in capsys.readouterr().err
    assert main([*common, "--from", str(baseline), "--out", str(tmp_path / "c")]) == EXIT_OK
    model, _ = load_checkpoint(tmp_path / "c" / "checkpoint.safetensors")
    assert model.config.mode == "ptq-popcount"
    before = (tmp_path / "c" / "checkpoint.safetensors").read_bytes()
    assert main([*common, "--from", str(baseline), "--out", str(tmp_path / "c")]) == EXIT_ERROR
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "c" / "checkpoint.safetensors").read_bytes() == before


def test_unknown_division_and_real_model_export_are_one_line_errors(tmp_path, capsys):
    from pbkit.trainer.model import ModelConfig, build_model

    assert main(["train", "--division", "nope", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == EXIT_ERROR
    assert "unknown division rule 'nope'" in capsys.readouterr().err
    ckpt = tmp_path / "teacher.safetensors"
    save_checkpoint(build_model(ModelConfig(width=0.125, mode="real")), ckpt)
    assert main(["export", str(ckpt), "--out", str(tmp_path / "out")]) == EXIT_ERROR
    assert "float distillation teacher" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- inputs checked at the border: one line naming the cause, a non-zero exit ----------------


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == EXIT_USAGE
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("limit", ["0", "-1", "two"])
@pytest.mark.parametrize("command", ["eval", "bench", "demo"])
def test_limit_must_be_a_positive_integer(command, limit, tmp_path, capsys):
    argv = {"eval": ["eval", "ckpt"], "bench": ["bench", "--port", "socket://127.0.0.1:9", "--checkpoint", "c"],
            "demo": ["demo"]}[command]
    err = _usage_error([*argv, "--limit", limit], capsys)
    assert "--limit" in err and ("positive integer, got" in err or "is not an integer" in err)


@pytest.mark.parametrize("command", [["export", "ckpt", "--out", "out"], ["profile"], ["demo"]])
def test_kernel_is_parsed_once_at_the_border(command, capsys):
    from pbkit.codegen.kernel import Kernel

    assert build_parser().parse_args([*command, "--kernel", "reference"]).kernel is Kernel.REFERENCE
    assert build_parser().parse_args(command).kernel is Kernel.FAST
    assert build_parser().parse_args([*command, "--kernel", "tables"]).kernel is Kernel.TABLES
    assert build_parser().parse_args([*command, "--kernel", "slices"]).kernel is Kernel.SLICES
    err = _usage_error([*command, "--kernel", "turbo"], capsys)
    assert err.endswith("argument --kernel: unknown kernel 'turbo'; choose one of reference, fast, tables, slices")


def test_zero_images_is_an_error(tmp_path, capsys, monkeypatch):
    from pbkit.trainer import data as cifar

    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), ckpt)
    monkeypatch.setattr(cifar, "load", lambda data, split: cifar.load_sample().head(0))  # a test set of 0 images
    assert main(["eval", str(ckpt), "--data", "empty"]) == EXIT_ERROR
    assert capsys.readouterr().err.strip() == "pbkit eval: error: --data empty holds no test images"
    assert main(["bench", "--port", "socket://127.0.0.1:9", "--checkpoint", str(ckpt), "--data", "x"]) == EXIT_ERROR
    assert capsys.readouterr().err.strip() == "pbkit bench: error: --data x holds no test images"


def test_a_limit_above_the_data_says_so(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), ckpt)
    data = write_tiny_cifar(tmp_path / "cifar", per_batch=20)
    assert main(["eval", str(ckpt), "--data", str(data), "--limit", "50", "--json"]) == EXIT_OK
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 20
    assert "--limit 50 is above the 20 images" in captured.err


def test_nan_weights_are_refused_by_eval_and_export(tmp_path, capsys):
    model = random_model(8)
    with torch.no_grad():
        model.blocks[2].weight.fill_(float("nan"))
    ckpt = tmp_path / "nan.safetensors"
    save_checkpoint(model, ckpt)
    for argv in (["eval", str(ckpt)], ["export", str(ckpt), "--out", str(tmp_path / "out")]):
        assert main(argv) == EXIT_ERROR
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "blocks.2.weight holds" in err and "NaN" in err
    assert not (tmp_path / "out").exists()


def test_a_port_given_twice_is_a_usage_error(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), ckpt)
    url = "socket://127.0.0.1:9"
    assert main(["bench", "--port", url, "--port", url, "--checkpoint", str(ckpt), "--limit", "2"]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err == f"pbkit bench: error: --port {url} is given twice: a board serves one connection"


def test_bench_refuses_an_existing_report_without_resume(tmp_path, capsys):
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(random_model(8), ckpt)
    report = tmp_path / "report.json"
    report.write_text('{"images": 69}\n')
    argv = ["bench", "--port", "socket://127.0.0.1:9", "--checkpoint", str(ckpt), "--limit", "2",
            "--report", str(report)]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert err == f"pbkit bench: error: {report} already exists: pass --resume to continue that run, or choose " \
                  "another --report (it is never overwritten)"
    assert report.read_text() == '{"images": 69}\n'
    assert main([*argv[:-2], "--resume"]) == EXIT_USAGE  # --resume needs a --report
    assert "--resume continues the run of a --report" in capsys.readouterr().err
