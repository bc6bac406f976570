"""SegmentSlots: the runner-wide limit on running segment tasks, fair between jobs."""

from __future__ import annotations

import threading
import time

from engine.cluster.runner import SegmentSlots


def test_slots_are_limited_and_given_back():
    slots = SegmentSlots(2)
    assert slots.take(wait=False) and slots.take(wait=False)
    assert not slots.take(wait=False)
    assert not slots.take(wait=True)  # gives up after the stop-poll interval
    slots.give_back()
    assert slots.take(wait=False)


def test_a_job_with_nothing_running_gets_the_next_free_slot_first():
    slots = SegmentSlots(1)
    assert slots.take(wait=False)  # the first job's only slot
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.take(wait=True)))
    waiter.start()
    time.sleep(0.1)  # the second job is now waiting
    slots.give_back()
    assert not slots.take(wait=False)  # the first job, with others still running, yields
    waiter.join()
    assert got == [True]
