"""A forked child counts the application's threads (/proc/self/task less the core's own) to
know when its endpoint may close: the count never misses an application thread while the
core's threads start and end during the listing."""
from __future__ import annotations


def test_a_core_thread_ending_and_another_starting_during_the_listing_hide_no_application_thread(
        application_threads, tmp_path):
    """Core thread A ends before the listing reaches it and core thread C starts after it: the
    core counts one thread before and after, the listing has neither, and the main thread was
    taken for a core thread (count 0: the child closed its endpoint under a live thread)."""
    assert application_threads("churn", tmp_path) == {"application_threads": 1}
