"""Whether the converter reads a checkpoint's architecture, decided from ``config.json``'s ``model_type``.

:func:`splade_onnx._hub.resolve` asks before fetching any weights, so a checkpoint the converter cannot
read (GTE's custom ``new`` architecture, say) costs no download, and the refusal names what does work.
The architectures read are :data:`splade_onnx._spec.SPEC_READERS`, looked up when asked, so a reader
added there is accepted here with no other change.
"""

from __future__ import annotations

from ._registry import HubSource, list_models
from ._spec import SPEC_READERS

__all__ = ["readable", "refusal"]


def readable(model_type: str | None) -> bool:
    """Whether the converter reads checkpoints of ``model_type`` (``None``, unknown, is not refused here)."""
    return model_type is None or model_type.lower() in SPEC_READERS


def refusal(repo_id: str, model_type: str) -> str:
    """Why ``repo_id`` is refused, in one line: its ``model_type``, the architectures read, and what works."""
    onnx = _onnx_export(repo_id)
    if onnx is not None:
        fix = f"load {onnx[0]!r} by that name: its source {onnx[1]} is an ONNX export of this model, which loads"
    else:
        fix = (
            "export it to ONNX with a 'logits' output (optimum-cli export onnx --task fill-mask, with "
            "--trust-remote-code for custom code) and load that folder or repository: any such export loads"
        )
    return (
        f"{repo_id} has model_type={model_type!r} (its config.json), which the converter cannot read (it reads "
        f"{', '.join(sorted(SPEC_READERS))}), so no weights were downloaded; {fix}"
    )


def _onnx_export(repo_id: str) -> tuple[str, str] | None:
    """The registry entry holding ``repo_id`` (as its name or a source) and its first ONNX source, if it has one."""
    key = repo_id.lower()
    for m in list_models():
        hubs = [s for s in m.sources if isinstance(s, HubSource)]
        if m.name.lower() == key or any(s.repo_id.lower() == key for s in hubs):
            for s in hubs:
                if s.format == "onnx":
                    return m.name, s.label()
    return None
