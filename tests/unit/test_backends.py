import pytest

from tuibench.backends import backend_names, require_backend
from tuibench.backends.engine import Availability
from tuibench.core.errors import UserError


def test_availability_names_what_is_missing_and_what_to_do():
    assert Availability.of_modules("json", "msgspec").ok
    missing = Availability.of_modules("json", "no_such_module_xyz", hint="pip install xyz")
    assert not missing.ok and missing.reason == "no_such_module_xyz not installed: pip install xyz"


def test_require_backend_rejects_unknown_library_and_unsupported_scenario():
    assert {"transformers", "vllm", "endpoint"} <= set(backend_names())
    with pytest.raises(UserError, match="unknown library 'mlc'") as refused:
        require_backend("mlc", "offline")
    # The test engines run by name but are no choice a user is offered.
    assert str(refused.value).endswith("choose one of transformers, vllm, llamacpp, mii, sglang, trtllm, endpoint")
    assert require_backend("fake", "offline").name == "fake"
    with pytest.raises(UserError, match="library 'endpoint' does not support the offline scenario"):
        require_backend("endpoint", "offline")
