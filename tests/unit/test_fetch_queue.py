"""The reducer's fetch queue keeps bytes in flight under its bound."""

from __future__ import annotations

import threading

from aiospark.shuffle.reader import ByteBoundedQueue


def test_a_writer_waits_for_room_and_the_bound_holds():
    queue = ByteBoundedQueue(100)
    peak = []
    done = threading.Event()

    def writer():
        for _ in range(50):
            queue.put(b"x" * 40)
            peak.append(queue.held)
        queue.put(None, 0)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    got = 0
    while queue.get() is not None:
        got += 1
    thread.join(timeout=10)
    assert done.is_set() and got == 50
    assert max(peak) <= 100


def test_an_item_bigger_than_the_bound_still_passes_alone():
    queue = ByteBoundedQueue(10)
    queue.put(b"y" * 50)
    assert queue.held == 50 and queue.get() == b"y" * 50


def test_closing_releases_a_blocked_writer():
    queue = ByteBoundedQueue(10)
    queue.put(b"z" * 10)
    finished = threading.Event()

    def writer():
        queue.put(b"w" * 10)  # blocks: the queue is full and nobody reads
        finished.set()

    thread = threading.Thread(target=writer)
    thread.start()
    assert not finished.wait(0.2)
    queue.close()
    thread.join(timeout=10)
    assert finished.is_set() and queue.held == 0
