"""The workload's environment (sandbox.workloads.environment): what each kind gets, and the
Playwright driver's young-generation cap that the verdict's start-up reads."""

from __future__ import annotations

import pytest

from sandbox.workloads.environment import (
    DRIVER_NODE_OPTIONS,
    node_semi_space_mb,
    workload_environment,
)

HARNESS = {"PATH": "/bin", "CI_TOKEN": "t0ken", "NODE_OPTIONS": "--inspect", "LC_ALL": "C"}


def test_a_command_gets_no_node_options_of_the_harness():
    env = workload_environment("command", None, passed={}, inherit=False, source=HARNESS)
    assert env == {"PATH": "/bin", "LC_ALL": "C"}
    assert node_semi_space_mb(env) is None


def test_the_screenshot_driver_gets_a_small_young_generation():
    env = workload_environment("screenshot", None, passed={}, inherit=False, source=HARNESS)
    assert env["NODE_OPTIONS"] == DRIVER_NODE_OPTIONS and "CI_TOKEN" not in env
    assert node_semi_space_mb(env) == 1


def test_the_driver_option_is_added_to_what_is_passed_or_inherited():
    passed = workload_environment("screenshot", None, passed={"NODE_OPTIONS": "--trace-gc"},
                                  inherit=False, source=HARNESS)
    assert passed["NODE_OPTIONS"] == f"--trace-gc {DRIVER_NODE_OPTIONS}"
    inherited = workload_environment("screenshot", None, passed={}, inherit=True,
                                     source=HARNESS)
    assert inherited["NODE_OPTIONS"] == f"--inspect {DRIVER_NODE_OPTIONS}"


@pytest.mark.parametrize(("options", "mb"), [
    ("", None), ("--max-old-space-size=512", None), ("--max-semi-space-size=1", 1),
    ("--max_semi_space_size 4", 4), ("--max-semi-space-size=16 --max-semi-space-size=1", 1),
    ("--max-semi-space-size=1x", None),
])
def test_the_young_generation_cap_is_read_from_node_options(options, mb):
    assert node_semi_space_mb({"NODE_OPTIONS": options}) == mb
