"""Hospital births adapter: the conformance kit, plus its own bad input."""

from __future__ import annotations

from adapters.hospital_births import HospitalBirthsAdapter
from gateway.testing import adapter_test_class

from conftest import SPECIMENS

TestHospitalBirths = adapter_test_class(
    HospitalBirthsAdapter,
    samples=[SPECIMENS / "hospital_births_202610.csv"],
    expected={"hospital_births_202610.csv": (3, 3)},
)
