"""The training child runs on jemalloc when the system has it (`make sysdeps` installs it)."""

from __future__ import annotations

import os

from _child_work import allocator_and_env

from ollama_tune._child import call_in_child
from ollama_tune.train.allocator import ENV, ONEDNN_CACHE, current, find_jemalloc, training_env


def test_the_training_child_runs_on_jemalloc_and_the_parent_keeps_its_environment() -> None:
    assert find_jemalloc(), "libjemalloc2 is missing: `make sysdeps` installs it"
    before = os.environ.get("LD_PRELOAD")
    name, preload = call_in_child(allocator_and_env, env=training_env())
    assert name == "jemalloc" and "jemalloc" in preload
    assert os.environ.get("LD_PRELOAD") == before  # only the child got it
    assert current() == ("jemalloc" if "jemalloc" in (before or "") else "system")
    # Without the preload the child runs on the system's malloc: the check can tell them apart.
    assert call_in_child(allocator_and_env, env={"LD_PRELOAD": ""})[0] == "system"


def test_the_system_allocator_can_be_kept_and_a_preload_is_not_doubled() -> None:
    assert training_env({ENV: "system"}) == {ONEDNN_CACHE: "64"}
    assert training_env({"LD_PRELOAD": "/opt/libjemalloc.so.2"}) == {ONEDNN_CACHE: "64"}
    other = training_env({"LD_PRELOAD": "/opt/libfoo.so"})
    assert other["LD_PRELOAD"].endswith(" /opt/libfoo.so") and "jemalloc" in other["LD_PRELOAD"]
    # The user's own oneDNN cache size stays.
    assert ONEDNN_CACHE not in training_env({ONEDNN_CACHE: "1024", ENV: "system"})
