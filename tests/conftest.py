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
