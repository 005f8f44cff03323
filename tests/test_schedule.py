import math

import pytest
import torch

from pbkit.trainer.schedule import Schedule, lr_at


def test_onecycle_is_torchs_one_cycle_at_every_step():
    total, peak = 40, 2e-3
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=peak)
    reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=total, pct_start=0.15)
    schedule = Schedule("onecycle", peak, total, warmup_steps=0)
    for step in range(total):
        lr, beta1 = schedule.values(step)
        assert lr == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12), step
        assert beta1 == pytest.approx(optimizer.param_groups[0]["betas"][0], rel=1e-12), step
        optimizer.step()
        reference.step()


def test_cosine_and_linear_warm_up_then_decay_to_zero():
    for kind in ("cosine", "linear"):
        assert lr_at(kind, 0, 100, 1.0, 10)[0] == pytest.approx(0.01)
        assert lr_at(kind, 10, 100, 1.0, 10)[0] == pytest.approx(1.0)
        assert lr_at(kind, 100, 100, 1.0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert lr_at("cosine", 55, 100, 1.0, 10)[0] == pytest.approx(0.5)
    assert lr_at("linear", 55, 100, 1.0, 10)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at("step", 0, 10, 1.0, 1)


def test_extending_an_interrupted_run_continues_from_its_rate_and_stretches_the_rest():
    schedule = Schedule("cosine", 1.0, 100, warmup_steps=0, step=40)
    before = schedule.values()[0]
    schedule.extend(160)
    assert schedule.values()[0] == pytest.approx(before)  # continuous at the extension step
    # what was left (virtual 40..100) now spans real steps 40..160: half way is virtual 70
    assert schedule.values(100)[0] == pytest.approx(lr_at("cosine", 70, 100, 1.0, 0)[0])
    assert schedule.values(160)[0] == pytest.approx(0.0, abs=1e-12)
    assert schedule.total_steps == 160


def test_extending_a_finished_run_reenters_where_a_longer_plan_would_be():
    schedule = Schedule("cosine", 1.0, 100, warmup_steps=0, step=100)
    schedule.extend(200)
    # a 200-step plan is half way at step 100: lr 0.5, then down to 0 at 200
    assert schedule.values()[0] == pytest.approx(0.5)
    assert schedule.values(200)[0] == pytest.approx(0.0, abs=1e-12)
    assert all(schedule.values(s)[0] >= schedule.values(s + 1)[0] for s in range(100, 200))


def test_schedule_state_round_trips_and_cannot_shorten():
    schedule = Schedule("linear", 3e-3, 50, warmup_steps=5, step=20)
    schedule.extend(80)
    schedule.step = 33
    again = Schedule.from_state(schedule.state())
    assert again == schedule and again.values() == schedule.values()
    with pytest.raises(ValueError, match="cannot shorten"):
        again.extend(60)
    assert math.isfinite(again.values(80)[0])
