import pytest
import torch

from reportgen.cases import CaseContext, CaseOutput, register

# A case that always fails, registered for tests only: the runner must record it as an error and go on.
@register("_test_boom", "Always raises (tests only).", defaults={"message": "boom"}, facts=[])
def _boom(ctx: CaseContext) -> CaseOutput:
    raise RuntimeError(ctx.params["message"])


@pytest.fixture
def cpu_ctx():
    def make(params, dtype=torch.float32, **kw):
        return CaseContext(name="t", params=params, device=torch.device("cpu"), dtype=dtype, seed=0, **kw)
    return make


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's own reportgen config or framework environments: a developer who ran
    `reportgen frameworks install` would otherwise get runs with MindSpore/JAX where a test expects none."""
    home = tmp_path_factory.mktemp("reportgen-user")
    monkeypatch.setenv("REPORTGEN_CONFIG", str(home / "config.yaml"))
    monkeypatch.setenv("REPORTGEN_FRAMEWORKS_DIR", str(home / "frameworks"))
