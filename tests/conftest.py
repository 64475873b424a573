"""pytest configuration for the xent_fast suite.

Environment switches:
  XENT_TEST_IMPL=reference   run the semantic tests against xent_fast.reference (self-check of the
                             tests while the compiled package is not there); tests about threads,
                             dispatch, the GIL and hardening are skipped then.
  HYPOTHESIS_PROFILE=ci|dev|thorough   hypothesis settings (default "dev": 50 examples, random;
                             "ci": 50 examples, derandomized; "thorough": 1000 examples).
"""

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # so that test modules can `import _helpers` under any import mode
    sys.path.insert(0, _HERE)

from hypothesis import HealthCheck, settings  # noqa: E402

import _helpers  # noqa: E402

_common = dict(deadline=None, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("dev", max_examples=50, **_common)
settings.register_profile("ci", max_examples=50, derandomize=True, **_common)
settings.register_profile("thorough", max_examples=1000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_report_header(config):
    mod = _helpers.impl
    return "xent_fast tests: implementation under test = %s (%s)" % (
        mod.__name__, getattr(mod, "__file__", "?"))


def pytest_configure(config):
    config.addinivalue_line("markers", "compiled_only: needs the compiled package (skipped with "
                                       "XENT_TEST_IMPL=reference)")


def pytest_collection_modifyitems(config, items):
    skip_ref = pytest.mark.skip(reason="XENT_TEST_IMPL=reference: only semantic tests run")
    for item in items:
        if _helpers.USING_REFERENCE and "compiled_only" in item.keywords:
            item.add_marker(skip_ref)


@pytest.fixture(scope="session")
def impl():
    return _helpers.impl


@pytest.fixture(scope="session")
def ref():
    return _helpers.ref


@pytest.fixture
def rng(request):
    # a per-test deterministic generator (seeded from the test's node id)
    import zlib

    import numpy as np

    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
