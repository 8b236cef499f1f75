from __future__ import annotations

import platform

from benchmarks.machine import PACKAGES, cpu_model, machine, version


def test_cpu_model_from_cpuinfo() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) X\n"
    assert cpu_model(cpuinfo) == "Intel(R) Xeon(R) X"
    assert cpu_model("processor\t: 0\nBogoMIPS\t: 50.00\n") == (platform.processor() or "unknown")


def test_versions_of_installed_and_missing_packages() -> None:
    assert version("httpx2").count(".") >= 1
    assert version("no-such-distribution-here") == "not installed"


def test_this_machine() -> None:
    facts = machine()
    assert facts.cores >= 1
    assert facts.python == platform.python_version()
    assert list(facts.packages) == list(PACKAGES)
