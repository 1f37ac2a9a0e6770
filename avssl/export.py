"""Export a trained audio encoder for deployment: waveform in, speaker embedding out.

The exported model includes the log-Mel front end, so a deployment needs only a runtime (PyTorch for
TorchScript, onnxruntime for ONNX) and no avssl code, configs or torchaudio: a mismatched front end is
the most common way a deployed speaker model silently loses accuracy.

TorchScript export traces the model (the ECAPA code uses Python the TorchScript compiler rejects, such as
``zip(strict=True)``). Tracing records shape arithmetic as graph operations, so the traced model accepts
any input length; :func:`export_torchscript` checks that on a second length before writing the file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from avssl.errors import AvsslError
from avssl.models.waveform import WaveformEncoder
from avssl.train.encoder_file import load_encoder
from avssl.utils.atomic import atomic_write

# Example input lengths in seconds: the trace uses the first, the check the second (a different one).
_TRACE_SECONDS = 1.0
_CHECK_SECONDS = 1.7
_CHECK_ATOL = 1e-4
_ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


def _load_wrapper(encoder_path: str | Path) -> tuple[WaveformEncoder, int]:
    encoder, fbank, sample_rate = load_encoder(encoder_path, device="cpu")
    return WaveformEncoder(encoder, fbank).eval(), sample_rate


def _noise(seconds: float, sample_rate: int) -> torch.Tensor:
    """A reproducible (1, samples) example waveform."""
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(1, round(seconds * sample_rate), generator=generator)


def export_torchscript(encoder_path: str | Path, out_path: str | Path) -> Path:
    """Write a TorchScript waveform -> embedding model; load it with ``torch.jit.load(out_path)``.

    Raises AvsslError if the traced model disagrees with the PyTorch model at another input length,
    which would mean the trace froze a length-dependent shape.
    """
    wrapper, sample_rate = _load_wrapper(encoder_path)
    check = _noise(_CHECK_SECONDS, sample_rate)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, _noise(_TRACE_SECONDS, sample_rate), check_trace=False)
        expected, got = wrapper(check), traced(check)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=_CHECK_ATOL):
        raise AvsslError(
            f"the traced encoder from {encoder_path} does not generalise to other input lengths "
            f"(max difference {(got - expected).abs().max().item():.3g}); it cannot be exported as TorchScript"
        )
    return atomic_write(out_path, lambda handle: torch.jit.save(traced, handle))


def export_onnx(encoder_path: str | Path, out_path: str | Path) -> Path:
    """Write an ONNX waveform -> embedding model: input ``waveforms`` (batch, samples), output ``embeddings``.

    Batch and time axes are dynamic. Before writing, onnxruntime runs the exported graph at another
    batch size and input length and must agree with PyTorch, so a shape frozen during export is caught
    here and not in a deployment. Export needs ``onnx``, ``onnxscript`` and ``onnxruntime`` (the
    ``export`` extra), which avssl does not depend on: without them this raises AvsslError naming the
    packages to install.
    """
    missing = [name for name in _ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise AvsslError(
            f"ONNX export needs the package(s) {', '.join(missing)}: `pip install {' '.join(missing)}` "
            "(or `pip install avssl[export]`), or use the TorchScript export instead"
        )
    wrapper, sample_rate = _load_wrapper(encoder_path)
    # A batch of 2 in the example keeps torch.export from specialising the batch axis to 1.
    example = _noise(_TRACE_SECONDS, sample_rate).repeat(2, 1)
    dynamic = {0: torch.export.Dim("batch", min=1), 1: torch.export.Dim("samples", min=sample_rate // 10)}
    try:
        program = torch.onnx.export(
            wrapper,
            (example,),
            input_names=["waveforms"],
            output_names=["embeddings"],
            dynamic_shapes={"waveforms": dynamic},
            dynamo=True,
            verbose=False,
        )
    except Exception as err:
        raise AvsslError(f"ONNX export of {encoder_path} failed ({err}); use the TorchScript export") from err
    payload = program.model_proto.SerializeToString()
    _check_onnx(payload, wrapper, sample_rate, encoder_path)
    return atomic_write(out_path, lambda handle: handle.write(payload))


def _check_onnx(payload: bytes, wrapper: WaveformEncoder, sample_rate: int, encoder_path: str | Path) -> None:
    """Raise AvsslError unless onnxruntime reproduces PyTorch at a new batch size and input length."""
    import onnxruntime

    session = onnxruntime.InferenceSession(payload, providers=["CPUExecutionProvider"])
    check = _noise(_CHECK_SECONDS, sample_rate)
    with torch.no_grad():
        expected = wrapper(check).numpy()
    got = session.run(["embeddings"], {"waveforms": check.numpy()})[0]
    if got.shape != expected.shape or not np.allclose(got, expected, atol=_CHECK_ATOL):
        raise AvsslError(
            f"the ONNX model of {encoder_path} disagrees with PyTorch at another input length; it was not written"
        )
