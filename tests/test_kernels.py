"""Kernel/algorithm capture: parsers on recorded real output (tests/fixtures), fd capture and a live CPU section."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from reportgen.measure import kernels as K

FIX = Path(__file__).parent / "fixtures"


def _text(name: str) -> str:
    return (FIX / name).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- oneDNN / MKL verbose
# onednn_mkl_verbose_cpu.txt was recorded on this project's CPU machine (oneDNN v3.12, AVX-512) by running
# Conv1d(8,32,1) on (128,8,256) and Linear(8,32) on (128,256,8) three times each with both verbose modes on.


def test_onednn_v3_conv1d_k1_is_a_1x1_jit_kernel_with_three_reorders_per_call():
    parsed = K.parse_onednn_verbose(_text("onednn_mkl_verbose_cpu.txt"))
    assert parsed["info"]["version"] == "v3.12.0"
    assert parsed["info"]["isa"].startswith("Intel AVX-512")
    assert parsed["info"]["nthr"] == "2"
    convs = [e for e in parsed["execs"] if e.primitive == "convolution"]
    assert len(convs) == 3 and {e.impl for e in convs} == {"jit_1x1:avx512_core"}
    assert convs[0].md("src")["tag"] == "aBcd16b" and convs[0].md("wei")["tag"] == "ABcd16b16a"
    assert convs[0].alg == "convolution_direct" and convs[0].prop_kind == "forward_training"
    summary = K.summarise_onednn(parsed["execs"], calls=3)
    assert summary["main"]["impl"] == "jit_1x1:avx512_core"
    assert summary["reorders_per_call"] == 3  # input and weights into blocked layout, output back to plain
    directions = {(p["direction"], p["per_call"]) for p in summary["primitives"] if p["primitive"] == "reorder"}
    assert directions == {("plain->blocked", 2.0), ("blocked->plain", 1.0)}
    assert 0 < summary["reorder_time_share"] < 1
    assert sum(p["share"] for p in summary["primitives"]) == pytest.approx(1.0)


def test_mkl_verbose_shows_linear_is_one_sgemm_per_call_with_cnr_off():
    parsed = K.parse_mkl_verbose(_text("onednn_mkl_verbose_cpu.txt"))
    assert parsed["info"]["version"].startswith("oneMKL 2024.0")
    assert parsed["info"]["threading"] == "gnu_thread"
    assert [c["function"] for c in parsed["calls"]] == ["SGEMM"] * 3
    c = parsed["calls"][0]
    # Linear(8 -> 32) over 128*256 rows: C(32 x 32768) = W^T-layout (32 x 8) @ X (8 x 32768).
    assert (c["transa"], c["transb"], c["m"], c["n"], c["k"]) == ("T", "N", 32, 32768, 8)
    assert c["cnr"] == "OFF" and c["threads"] == 2 and c["time_ms"] > 0
    assert "0x" not in c["args"]  # pointers dropped: they differ run to run
    summary = K.summarise_mkl(parsed["calls"], 3)
    assert summary["main"]["per_call"] == 1.0 and summary["cnr"] == ["OFF"]


def test_onednn_creation_lines_are_not_counted_as_executions():
    parsed = K.parse_onednn_verbose(_text("onednn_verbose_creation_cpu.txt"))
    assert len(parsed["execs"]) == 3  # the file has 6 lines: 3 create (miss/hit) + 3 exec
    conv = next(e for e in parsed["execs"] if e.primitive == "convolution")
    assert conv.impl == "jit:avx512_core"  # kernel_size=3: not the 1x1 kernel
    assert conv.md("src")["tag"] == "abcd"  # plain input, no input reorder for this shape


def test_onednn_v1_v2_and_unversioned_v3_formats_from_public_threads():
    parsed = K.parse_onednn_verbose(_text("onednn_verbose_v2_excerpts.txt"))
    assert parsed["info"]["version"] == "v1.6.0"
    assert parsed["info"]["isa"] == "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions"
    prims = [(e.primitive, e.impl, e.prop_kind) for e in parsed["execs"]]
    assert prims == [("convolution", "jit:avx512_common", "forward_inference"),
                     ("reorder", "jit:uni", "undef"),
                     ("convolution", "jit:avx2", "backward_data"),
                     ("reorder", "jit:uni", "undef"),
                     ("eltwise", "jit:avx2", "forward_training"),
                     ("convolution", "jit:avx2", "forward_training")]  # exec:check and create lines skipped
    assert [e.reorder_direction for e in parsed["execs"] if e.primitive == "reorder"] == \
        ["plain->blocked", "blocked->plain"]
    assert parsed["execs"][0].to_dict()["formats"] == {"src": "f32:abcd", "wei": "f32:Acdb16a", "bia": "undef",
                                                      "dst": "f32:aBcd16b"}


def test_unrelated_text_parses_to_nothing():
    assert K.parse_onednn_verbose("hello\nMKL_VERBOSE garbage\n")["execs"] == []
    assert K.parse_mkl_verbose("onednn_verbose,v1,primitive,exec\n")["calls"] == []
    assert K.summarise_onednn([], 3) is None and K.summarise_mkl([], 3) is None


# ------------------------------------------------------------------------------------------- profiler tables


def test_cpu_profiler_table_recorded_here():
    text = _text("profiler_table_cpu.txt")
    conv_part, lin_part = text.split("# Linear")
    conv_rows = K.parse_profiler_table(conv_part)
    lin_rows = K.parse_profiler_table(lin_part)
    assert conv_rows[0]["name"] == "aten::mkldnn_convolution" and conv_rows[0]["count"] == 3
    assert {r["name"] for r in lin_rows} >= {"aten::linear", "aten::addmm", "aten::copy_"}
    assert all(r["kind"] == "op" for r in conv_rows + lin_rows)  # no device time on CPU
    top = K.summarise_profile(conv_rows)["ops"][0]
    assert top["name"] == "aten::mkldnn_convolution" and top["share"] > 0.5


def test_cuda_profiler_rows_from_public_threads():
    rows = K.parse_profiler_table(_text("cuda_profiler_table_excerpts.txt"))
    by_name = {r["name"]: r for r in rows}
    conv = by_name["aten::cudnn_convolution"]
    assert conv["kind"] == "op" and conv["count"] == 20 and conv["self_device_us"] == pytest.approx(59261.0)
    kernels = [r for r in rows if r["kind"] == "kernel"]
    assert len(kernels) == 6
    summary = K.summarise_profile(rows)
    tf32 = [k for k in summary["kernels"] if k["precision"] == "tf32"]
    assert [k["name"][:40] for k in tf32] == ["sm80_xmma_fprop_implicit_gemm_tf32f32_tf"]
    sgemm = next(k for k in summary["kernels"] if "simt_sgemm" in k["name"])
    assert sgemm["precision"] == "f32" and not sgemm["tensor_cores"]
    assert sum(k["share"] for k in summary["kernels"]) == pytest.approx(1.0)


def _names() -> list[tuple[str, str]]:
    out = []
    for line in _text("cuda_kernel_names.txt").splitlines():
        if line and not line.startswith("#"):
            src, name = line.split("\t")
            out.append((src, name))
    return out


@pytest.mark.parametrize("needle, library, algo, precision, tile, tensor_cores", [
    ("volta_scudnn_128x128", "cuDNN", "splitk", "", "128x128", False),
    ("winograd3x3Kernel", "cuDNN", "winograd", "f32", "", False),
    ("volta_s884cudnn_fp16", "cuDNN", "", "f16", "128x128", True),
    ("void nhwcToNchwKernel", "cuDNN", "layout transform", "f32", "", False),
    ("sm90_xmma_gemm_f16f16", "cuBLAS", "gemm", "f16", "128x128x64", True),
    ("nvjet_tst_128x24", "cuBLASLt", "", "", "128x24", True),
    ("sm75_xmma_fprop_implicit_gemm", "cuDNN", "implicit_gemm", "f16", "", True),
    ("sm80_xmma_fprop_implicit_gemm_tf32", "cuDNN", "implicit_gemm", "tf32", "128x128", True),
    ("sm90_xmma_gemm_f32f32_tf32f32", "cuBLAS", "gemm", "tf32", "128x128x32", True),
    ("cutlass_tensorop_s1688fprop", "cuDNN", "fprop", "tf32", "64x64", True),
    ("cutlass_80_simt_sgemm", "CUTLASS", "gemm", "f32", "256x128", False),
])
def test_kernel_names_recorded_in_public_threads(needle, library, algo, precision, tile, tensor_cores):
    name = next(n for _, n in _names() if needle in n)
    c = K.classify_cuda_kernel(name)
    assert (c["library"], c["algo"], c["precision"], c["tile"], c["tensor_cores"]) == \
        (library, algo, precision, tile, tensor_cores)


def test_every_recorded_kernel_name_has_a_source():
    names = _names()
    assert len(names) >= 10 and all(src for src, _ in names)


# ------------------------------------------------------------------------------------------- cuDNN log


def test_cudnn_log_excerpts_engine_knobs_notes_math():
    parsed = K.parse_cudnn_log(_text("cudnn_log_excerpts.txt"))
    # the prefixed records of the posted logs and the unprefixed one of NVIDIA's documentation
    assert parsed["versions"] == ["8005", "8204", "90000", "90300", "91200"]
    assert parsed["functions"]["cudnnSetActivationDescriptor"] == 1
    # a cuDNN 9 return record (outputs + status) is not a second call
    assert parsed["functions"]["cudnnCreate"] == 1 and parsed["functions"]["cudnnGraphLibraryConfigInit"] == 1
    assert parsed["functions"]["cudnnBackendSetAttribute"] == 2  # 8.2.4 and 9.12 calls; the 9.12 return is not
    assert parsed["engine_ids"] == ["0"]  # the -1 of an unset engine descriptor is not an engine
    assert parsed["knobs"] == ["CUDNN_KNOB_TYPE_KERNEL_CFG=27"]
    assert "CUDNN_NUMERICAL_NOTE_TENSOR_CORE" in parsed["notes"]
    assert parsed["math_types"] == ["CUDNN_TENSOR_OP_MATH"]
    assert parsed["functions"]["cudnnConvolutionForward"] == 1


def test_cudnn_global_index_is_the_set_value_not_the_element_count():
    # Constructed in the cuDNN API-log layout of the fixtures above (no real cuDNN 9 log setting
    # CUDNN_ATTR_ENGINE_GLOBAL_INDEX was found to record): the element count (1) must not be read as the engine.
    block = ("I! CuDNN (v90100 70) function cudnnBackendSetAttribute() called:\n"
             "i!     descriptor: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:\n"
             "i!     attributeName: type=cudnnBackendAttributeName_t; val=CUDNN_ATTR_ENGINE_GLOBAL_INDEX (1301);\n"
             "i!     attributeType: type=cudnnBackendAttributeType_t; val=CUDNN_TYPE_INT64 (3);\n"
             "i!     elementCount: type=int64_t; val=1;\n"
             "i!     [0]: type=int64_t; val=42;\n")
    assert K.parse_cudnn_log(block)["engine_ids"] == ["42"]


def test_cudnn_log_capture_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the no-CUDA path is not reachable here")
    assert K.cudnn_log_capture("print(1)") == {"available": False, "reason": "CUDA not available"}


# ------------------------------------------------------------------------------------------- build identity


def test_build_config_recorded_here():
    ident = K.parse_build_config(_text("torch_config_cpu.txt"))
    assert ident["blas"] == "mkl" and ident["lapack"] == "mkl"
    assert ident["mkl_version"].startswith("2024.2")
    assert ident["onednn_version"] == "v3.12.0"
    assert ident["cpu_capability"] == "AVX512"
    assert ident["use_mkldnn"] == "ON" and ident["use_cuda"] == "0"


# ------------------------------------------------------------------------------------------- fd capture


def test_capture_fd_sees_output_written_below_python():
    with K.capture_fd(1) as cap:
        os.write(1, b"written to fd 1 directly\n")
    assert cap.text == "written to fd 1 directly\n"
    with K.capture_fd(1) as cap2:
        pass
    assert cap2.text == ""  # the redirect was undone: nothing leaked into a later capture


def test_capture_fd_restores_the_descriptor_after_an_exception():
    before = os.fstat(1)
    with pytest.raises(ValueError):
        with K.capture_fd(1):
            raise ValueError("x")
    after = os.fstat(1)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)


# ------------------------------------------------------------------------------------------- live section (CPU)


@pytest.fixture(scope="module")
def cpu_section():
    torch.manual_seed(0)
    conv, lin = torch.nn.Conv1d(4, 8, 1), torch.nn.Linear(4, 8)
    x = torch.randn(4, 4, 64)
    xt = x.transpose(1, 2).contiguous()
    with torch.no_grad():
        return K.kernel_section({"Linear": lambda: lin(xt), "Conv1d": lambda: conv(x)}, torch.device("cpu"), calls=2)


def test_kernel_section_on_cpu_names_both_implementations(cpu_section):
    json.dumps(cpu_section)  # JSON-able for results.json
    lin, conv = cpu_section["sides"]["Linear"], cpu_section["sides"]["Conv1d"]
    assert "aten::addmm" in lin["profile"]["chain"]
    assert "aten::mkldnn_convolution" in conv["profile"]["chain"]
    if torch.backends.mkldnn.is_available():
        assert conv["impl"].startswith("oneDNN convolution")
        assert conv["onednn"]["reorders_per_call"] >= 1
        assert cpu_section["facts"]["kernels.conv1d.reorders_per_call"] == conv["onednn"]["reorders_per_call"]
    if torch.backends.mkl.is_available():
        assert lin["impl"] == "MKL SGEMM"
    assert cpu_section["summary"][1].startswith("Conv1d -> aten::mkldnn_convolution -> ")
    assert cpu_section["facts"]["kernels.linear.impl"] == lin["impl"]


def test_summary_line_reads_the_evidence():
    side = {"profile": {"chain": ["aten::conv1d", "aten::convolution", "aten::_convolution",
                                  "aten::mkldnn_convolution"], "kernels": []},
            "onednn": {"main": {"primitive": "convolution", "impl": "jit_1x1:avx2"}, "reorders_per_call": 3.0,
                       "reorder_time_share": 0.71}}
    side["impl"] = K.implementation(side)
    assert K.summary_line("Conv1d", side) == \
        "Conv1d -> aten::mkldnn_convolution -> oneDNN convolution jit_1x1:avx2 + 3 reorders (71% of its time)"
    side["onednn"]["reorders_per_call"] = 0
    assert K.summary_line("Conv1d", side).endswith("jit_1x1:avx2")


def test_oneDNN_off_conv_falls_back_and_the_summary_says_to_what():
    from reportgen.measure.settings import applied_settings

    conv = torch.nn.Conv1d(4, 8, 1)
    x = torch.randn(2, 4, 32)
    with torch.no_grad(), applied_settings(mkldnn_enabled=False):
        sec = K.kernel_section({"Conv1d": lambda: conv(x)}, torch.device("cpu"), calls=1)
    side = sec["sides"]["Conv1d"]
    assert side["onednn"] is None  # oneDNN off: nothing in its verbose
    op = side["profile"]["chain"][-1]
    assert "mkldnn" not in op
    # At this size the fallback is im2col + BLAS (aten::_slow_conv2d_forward -> MKL SGEMM); larger inputs may go
    # to NNPACK, which prints nothing: then the implementation is named from the op.
    assert side["impl"].startswith("MKL ") or side["impl"].endswith("(from the op name; no verbose account)")
    assert sec["summary"][0] == f"Conv1d -> {op} -> {side['impl']}" or sec["summary"][0].startswith(
        f"Conv1d -> {op} -> {side['impl']}(")


def test_a_side_that_fails_is_recorded_and_rendered_not_raised():
    def broken() -> torch.Tensor:
        raise RuntimeError("shape mismatch (test side)")

    sec = K.kernel_section({"Broken": broken, "Add": lambda: torch.ones(4) + 1}, torch.device("cpu"), calls=1)
    assert "shape mismatch" in sec["sides"]["Broken"]["error"]
    assert sec["summary"][0].startswith("Broken: capture failed: RuntimeError")
    assert "kernels.broken.impl" not in sec["facts"] and "kernels.add.impl" in sec["facts"]
    html = _render("kernels", sec)
    assert "shape mismatch" in html


def test_implementation_named_from_the_op_when_no_library_speaks():
    side = {"profile": {"chain": ["aten::conv1d", "aten::_nnpack_spatial_convolution"], "kernels": []}}
    assert K.implementation(side) == "NNPACK (from the op name; no verbose account)"
    side = {"profile": {"chain": ["aten::add"], "kernels": []}}
    assert K.implementation(side) == "ATen native kernel (from the op name; no verbose account)"


def test_cuda_kernel_section_runs_on_gpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: GPU kernel capture cannot run here")
    dev = torch.device("cuda")
    conv, lin = torch.nn.Conv1d(8, 32, 1).to(dev), torch.nn.Linear(8, 32).to(dev)
    x = torch.randn(16, 8, 64, device=dev)
    xt = x.transpose(1, 2).contiguous()
    with torch.no_grad():
        sec = K.kernel_section({"Linear": lambda: lin(xt), "Conv1d": lambda: conv(x)}, dev, calls=2)
    json.dumps(sec)
    assert sec["sides"]["Conv1d"]["profile"]["kernels"], "the profiler recorded no CUDA kernel"
    assert set(sec["sides"]["Conv1d"]["variants"]) >= set(K.CUDA_VARIANTS)


# ------------------------------------------------------------------------------------------- template


def _render(key: str, section: dict) -> str:
    from reportgen.render.html import environment

    section = json.loads(json.dumps(section))
    return environment().get_template(f"_extra_{key}.html.j2").render(case={"id": "t/cpu/float32"}, section=section)


def test_kernels_template_renders_the_captured_section(cpu_section):
    html = _render("kernels", cpu_section)
    assert "Which implementation ran" in html and "aten::mkldnn_convolution" in html
    if cpu_section["sides"]["Conv1d"].get("onednn"):
        assert "oneDNN&#39;s own account" in html or "oneDNN's own account" in html


# ------------------------------------------------------------------------------------------- CUDA helpers on CPU
# What of the CUDA path can run without a GPU: the child script the cuDNN log is read from, the TF32 reading of
# kernel names, and the facts built from a cudnn.benchmark comparison.


def test_cudnn_child_script_runs_the_body_under_this_process_settings(tmp_path):
    import subprocess
    import sys

    from reportgen.measure.settings import applied_settings
    body = ("conv = torch.nn.Conv1d(4, 8, 1).to(device)\n"
            "x = torch.randn(2, 16, 4, device=device)\n"
            "y = conv(x.permute(0, 2, 1))\n"
            "from reportgen.measure.settings import cuda_settings_now\n"
            "import json; print(json.dumps({**cuda_settings_now(), 'shape': list(y.shape), 'grad': y.requires_grad}))\n")
    with applied_settings(cudnn_deterministic=True, conv_tf32=False):
        script = K.cudnn_child_script(body, torch.device("cpu"), cudnn_benchmark=True)
    compile(script, "<child>", "exec")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    # the parent's settings at build time, the override on top, the permuted input, no autograd
    assert child["cudnn_deterministic"] is True and child["conv_tf32"] is False and child["cudnn_benchmark"] is True
    assert child["shape"] == [2, 8, 16] and child["grad"] is False
    # and the parent is back where it was
    assert torch.backends.cudnn.deterministic is False


def test_cudnn_benchmark_effect_without_cuda_is_unknown_not_unchanged():
    effect = K.cudnn_benchmark_effect("pass", torch.device("cpu"))
    assert effect["engine_changed"] is None
    assert effect["off"]["available"] is False and effect["on"]["available"] is False


@pytest.mark.parametrize("names, expected", [
    (["sm80_xmma_gemm_tf32f32_tf32f32_f32_nn_n_tilesize128x128x16_stage4"], True),
    (["volta_sgemm_128x64_nn"], False),
    (["nvjet_tst_128x64_64x4_1x2_h_bz_TNT"], None),  # cuBLASLt names carry no precision: unknown, not "no"
    (["volta_sgemm_128x64_nn", "nvjet_tst_128x64_64x4_1x2_h_bz_TNT"], None),
])
def test_tf32_fact_from_kernel_names(names, expected):
    kernels = [K.classify_cuda_kernel(n) for n in names]
    assert K.kernels_use_tf32(kernels) is expected


def test_side_facts_carry_the_benchmark_comparison():
    side = {"impl": "cuDNN implicit gemm", "profile": {"kernels": [K.classify_cuda_kernel("volta_sgemm_128x64_nn")]},
            "cudnn_benchmark": {"engine_changed": True}}
    facts = K._side_facts("Conv1d", side)
    assert facts["kernels.conv1d.cudnn_benchmark_changes_engine"] is True and facts["kernels.conv1d.tf32"] is False


def test_cpu_profile_keeps_what_the_profiler_said():
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(3, 4)
    with torch.no_grad():
        side = K.capture_side(lambda: lin(x), torch.device("cpu"), calls=1)
    assert isinstance(side["profile"]["log"], str) and "no CUDA kernel" not in side.get("note", "")


def test_kernels_template_shows_the_benchmark_comparison(cpu_section):
    section = json.loads(json.dumps(cpu_section))
    side = section["sides"]["Conv1d"]
    log = {"available": True, "engine_ids": ["7", "12"], "executed_engine_ids": ["7"], "plan_tags": [], "algos": []}
    side["cudnn_benchmark"] = {"off": log, "on": {**log, "executed_engine_ids": ["12"]}, "engine_changed": True}
    html = _render("kernels", section)
    assert "off: executed engine 7; on: executed engine 12" in html and "benchmark changes cuDNN" in html
    side["cudnn_benchmark"] = {"off": {"available": False, "reason": "CUDA not available"},
                               "on": {"available": False, "reason": "CUDA not available"}, "engine_changed": None}
    html = _render("kernels", section)
    assert "not captured (CUDA not available)" in html and "cannot tell" in html


def test_executed_engine_is_read_from_execute_calls_only():
    # Shaped like the recorded cuDNN 8/9 backend logs above (fixtures/cudnn_log_excerpts.txt): descriptors nested
    # with "i!" lines. Constructed, not recorded: no GPU was available to record a cudnnBackendExecute block.
    def block(func, engine):
        return (f"I! CuDNN (v91200 46) function {func}() called:\n"
                "i!     executionPlan: type=CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:\n"
                "i!         engcfg: type=CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:\n"
                "i!             engine: type=CUDNN_BACKEND_ENGINE_DESCRIPTOR:\n"
                f"i!                 engine_id: type=int; val={engine};\n")
    candidates = "".join(block("cudnnBackendFinalize", e) for e in (3, 7, 12))
    parsed = K.parse_cudnn_log(candidates + block("cudnnBackendExecute", 7))
    assert parsed["engine_ids"] == ["3", "7", "12"] and parsed["executed_engine_ids"] == ["7"]
    # the benchmark comparison reads only executed engines: candidate lists that differ are no change
    off = {"available": True, **parsed}
    on = {"available": True, **K.parse_cudnn_log(candidates + block("cudnnBackendFinalize", 20)
                                                 + block("cudnnBackendExecute", 7))}
    assert K._executed(off) == K._executed(on) == ["7"]
    assert K._executed({"available": True, **K.parse_cudnn_log(candidates)}) is None  # not named: unknown


def test_cuda_variant_errors_stay_in_their_variant():
    # A variant whose settings make a library raise records the error; the others and the case go on.
    def fn():
        if torch.backends.cudnn.deterministic:
            raise RuntimeError("refused under cudnn.deterministic")
        return torch.ones(2)

    out = K._cuda_variants(fn, torch.device("cpu"), calls=1)
    assert out["failed"] == ["deterministic"] and "refused" in out["deterministic"]["error"]
    assert out["changed_by"] == [] and isinstance(out["default"], list)
    assert torch.backends.cudnn.deterministic is False and torch.are_deterministic_algorithms_enabled() is False


def test_cudnn_child_script_names_the_cuda_device_index():
    script = K.cudnn_child_script("conv(x)", torch.device("cuda", 1))
    compile(script, "<child>", "exec")
    assert "device = torch.device('cuda', 1)" in script and "torch.cuda.set_device(1)" in script
    assert "torch.cuda.synchronize(device)" in script


def test_kernels_template_names_changed_and_failed_variants(cpu_section):
    section = json.loads(json.dumps(cpu_section))
    side = section["sides"]["Conv1d"]
    k = K.classify_cuda_kernel("sm80_xmma_fprop_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize64x64x16")
    side["variants"] = {"default": [k], "tf32 off": [k], "deterministic": {"error": "RuntimeError: refused <x>"},
                        "changed_by": [], "failed": ["deterministic"]}
    html = _render("kernels", section)
    assert "kernel choice changed under:\nnone of tf32 off." in html
    assert "Variant “deterministic” failed: RuntimeError: refused &lt;x&gt;." in html
    side["variants"].update({"tf32 off": [dict(k, name="sm80_xmma_fprop_implicit_gemm_f32f32")], "changed_by": ["tf32 off"]})
    assert "kernel choice changed under:\ntf32 off." in _render("kernels", section)
