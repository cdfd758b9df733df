"""The stage clock behind `spritefit bench speed`'s fit rows."""
import time

from spritefit import timing


def test_stages_nest_and_unclocked_time_is_left_out_of_every_stage_around_it():
    clock = timing.StageClock()
    with clock.active():
        with timing.stage("iterations"):
            with timing.stage("forward"):
                time.sleep(0.02)
                with timing.unclocked():
                    time.sleep(0.2)
            timing.count("samples", 5)
        timing.mark("done")
    seconds = clock.seconds
    assert 0.02 <= seconds["iterations/forward"] < 0.1
    assert seconds["iterations/forward"] <= seconds["iterations"] < 0.1
    assert clock.counts["iterations/samples"] == 5 and "done" in clock.marks


def test_nothing_is_timed_without_an_active_clock():
    assert not timing.is_active()
    with timing.stage("forward"), timing.unclocked():
        timing.count("samples")
