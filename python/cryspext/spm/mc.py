"""Monte Carlo dropout over many inputs with adaptive, per-input stopping (ARISE thesis 2.3.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["MCResult", "mc_dropout", "predict_structure"]




@dataclass
class MCResult:
    """MC-dropout statistics for n inputs: mean probabilities (n, C), MI and predictive entropy (n,) in nats, passes drawn (n,)."""

    probabilities: np.ndarray
    mutual_information: np.ndarray
    predictive_entropy: np.ndarray
    passes: np.ndarray


def _entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=-1)


def mc_dropout(
    model,
    descriptors: np.ndarray,
    *,
    mc_samples: int = 1000,
    adaptive: bool = True,
    block: int = 20,
    min_samples: int = 200,
    tolerance: float = 0.02,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> MCResult:
    """Classify ``descriptors`` (n, D) with ``model.predict`` and MC dropout.

    Passes are drawn in blocks of ``block``; each block is one ``model.predict(x,
    mc_samples=block, seed=...)`` call on the boxes still active. Blocks combine exactly:
    the mean probability is the pass-weighted mean of block means, the expected entropy
    E[H(p_t)] of a block is its predictive entropy minus its MI, and the total MI is
    H(mean p) − mean E[H(p_t)].

    Adaptive criterion (``adaptive=True``): after at least ``min_samples`` passes, a box stops
    when the batch-means standard errors of (a) its top-class probability and (b) its MI are
    both below ``tolerance`` (probability units and nats). For (b) each block contributes the
    linearised MI value u_b = −Σ_c log(p̄_c) p_b,c − E_b[H], whose mean has the same first-order
    error as the MI estimate. No box draws more than ``mc_samples`` passes.
    ``progress`` (optional) is called with the number of boxes that just finished.
    """
    x = np.asarray(descriptors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"descriptors must have shape (n, n_features), got {x.shape}")
    mc_samples = int(mc_samples)
    if mc_samples < 1:
        raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
    if not (tolerance > 0):
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    n = x.shape[0]
    n_classes = len(model.classes)
    seeds = np.random.SeedSequence(seed)
    if n == 0:
        empty = np.zeros((0, n_classes))
        return MCResult(empty, np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int32))
    if not adaptive or mc_samples <= min_samples:
        out = model.predict(x, mc_samples=mc_samples, seed=int(seeds.generate_state(1)[0]))
        p = np.asarray(out.probabilities, dtype=np.float64)
        if progress:
            progress(n)
        return MCResult(
            p, np.asarray(out.mutual_information, dtype=np.float64), _entropy(p), np.full(n, mc_samples, dtype=np.int32)
        )

    block = max(1, min(int(block), mc_samples))
    sum_p = np.zeros((n, n_classes))  # Σ_b B·p_b
    sum_p2 = np.zeros((n, n_classes))  # Σ_b p_b²  (per block, for the batch-means variance)
    sum_e = np.zeros(n)  # Σ_b B·E_b[H]
    sum_u = np.zeros(n)
    sum_u2 = np.zeros(n)
    passes = np.zeros(n, dtype=np.int64)
    blocks = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    k = 0
    while active.size:
        b = min(block, mc_samples - int(passes[active].min()))
        out = model.predict(x[active], mc_samples=b, seed=int(seeds.generate_state(1 + k)[k]))
        k += 1
        p_b = np.asarray(out.probabilities, dtype=np.float64)
        e_b = _entropy(p_b) - np.asarray(out.mutual_information, dtype=np.float64)
        sum_p[active] += b * p_b
        sum_p2[active] += p_b**2
        sum_e[active] += b * e_b
        passes[active] += b
        blocks[active] += 1
        p_bar = sum_p[active] / passes[active, None]
        u_b = -np.sum(np.log(np.clip(p_bar, 1e-12, 1.0)) * p_b, axis=1) - e_b
        sum_u[active] += u_b
        sum_u2[active] += u_b**2
        nb = blocks[active]
        done = passes[active] >= mc_samples
        enough = (passes[active] >= min_samples) & (nb >= 2)
        if np.any(enough):
            top = np.argmax(p_bar, axis=1)
            rows = np.arange(active.size)
            mean_pb = sum_p[active, top] / passes[active]  # ≈ mean of block means (equal blocks)
            var_p = np.maximum(sum_p2[active][rows, top] / nb - mean_pb**2, 0.0) * nb / np.maximum(nb - 1, 1)
            mean_u = sum_u[active] / nb
            var_u = np.maximum(sum_u2[active] / nb - mean_u**2, 0.0) * nb / np.maximum(nb - 1, 1)
            converged = (np.sqrt(var_p / nb) < tolerance) & (np.sqrt(var_u / nb) < tolerance)
            done |= enough & converged
        if progress and np.any(done):
            progress(int(done.sum()))
        active = active[~done]
    p = sum_p / passes[:, None]
    pe = _entropy(p)
    mi = np.maximum(pe - sum_e / passes, 0.0)
    return MCResult(p, mi, pe, passes.astype(np.int32))




class SharedMaskMLP:
    """Fast MC dropout for an MLP with dropout before every dense layer (ARISE's architecture).

    Each pass t draws *one* network ω_t (one dropout mask per layer) and applies it to all
    inputs, as in Gal's MC dropout: the masks fold into the weights (W_t = diag(m_t) W / (1 − p)),
    so a block of passes is one batched matrix product per layer without per-element random
    numbers. Per input, the T passes are the same independent draws from the dropout
    distribution as with per-row masks, so means and MI follow the same distribution;
    only boxes of one chunk share their networks.

    Layers: ReLU after each hidden layer, softmax at the end.
    """

    def __init__(self, weights, biases, p: float, classes, dtype: str = "float32"):
        import torch

        if dtype == "auto":
            dtype = "bfloat16" if cpu_has_bf16() else "float32"
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {dtype!r}")
        self.dtype = dtype

        self.weights = [torch.as_tensor(w, dtype=torch.float32).contiguous() for w in weights]  # (in, out)
        self.biases = [torch.as_tensor(b, dtype=torch.float32).contiguous() for b in biases]
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError("need one bias per weight matrix")
        for a, b in zip(self.weights[:-1], self.weights[1:]):
            if a.shape[1] != b.shape[0]:
                raise ValueError("weight shapes do not chain")
        self.p = float(p)
        if not 0 <= self.p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.classes = list(classes)
        self.descriptor_settings = {}

    @classmethod
    def from_model(cls, model, dtype: str = "float32") -> "SharedMaskMLP | None":
        """Read weights from a model whose ``module`` has ``fc1, fc2, ...`` linear layers and a
        dropout probability ``p`` (cryspext's ARISE network); None when it has not."""
        module = getattr(model, "module", None)
        if module is None or not hasattr(module, "p") or not hasattr(module, "fc1"):
            return None
        weights, biases = [], []
        k = 1
        while hasattr(module, f"fc{k}"):
            layer = getattr(module, f"fc{k}")
            weights.append(layer.weight.detach().T)
            biases.append(layer.bias.detach())
            k += 1
        fast = cls(weights, biases, float(module.p), model.classes, dtype=dtype)
        fast.descriptor_settings = dict(getattr(model, "descriptor_settings", {}) or {})
        return fast

    def predict(self, descriptors, mc_samples: int = 1000, seed: int | None = None, max_elements: int = 2**25):
        """MC-dropout statistics (probabilities, MI, predictive entropy in nats) of (n, D) inputs."""
        import torch

        x = torch.as_tensor(np.asarray(descriptors, dtype=np.float32))
        n, t = x.shape[0], int(mc_samples)
        if x.ndim != 2 or x.shape[1] != self.weights[0].shape[0]:
            raise ValueError(f"descriptors must have shape (n, {self.weights[0].shape[0]}), got {tuple(x.shape)}")
        g = torch.Generator().manual_seed(0 if seed is None else int(seed))
        widest = max(w.shape[1] for w in self.weights)
        sum_p = torch.zeros(n, len(self.classes), dtype=torch.float64)
        sum_h = torch.zeros(n, dtype=torch.float64)
        passes_per_block = max(1, min(t, max_elements // max(n * widest, 1)))
        rows = max(1, max_elements // (passes_per_block * widest))
        keep = 1.0 - self.p
        # bfloat16: hidden layers in bf16 (fp32 accumulation inside the GEMM), the output layer
        # and softmax in fp32. Several times faster on CPUs with AVX512-BF16/AMX.
        low = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        last = len(self.weights) - 1
        with torch.inference_mode():
            done = 0
            while done < t:
                b = min(passes_per_block, t - done)
                # One mask per pass and layer, folded into the weights: (b, in, out).
                masked = [w * ((torch.rand(b, w.shape[0], 1, generator=g) < keep).float() / keep) if self.p > 0
                          else w.expand(b, *w.shape) for w in self.weights]
                masked = [m.to(low if k < last else torch.float32) for k, m in enumerate(masked)]
                biases = [bb.to(low if k < last else torch.float32) for k, bb in enumerate(self.biases)]
                for start in range(0, n, rows):
                    h = x[start : start + rows].to(low).expand(b, -1, -1)
                    for k, (w, bias) in enumerate(zip(masked, biases)):
                        if k == last:
                            h = h.float()
                        h = torch.baddbmm(bias, h, w)
                        if k < last:
                            h = torch.relu_(h)
                    logp = torch.log_softmax(h, dim=-1)
                    prob = logp.exp()
                    sum_p[start : start + rows] += prob.sum(dim=0).double()
                    sum_h[start : start + rows] -= (prob * logp).sum(dim=(0, 2)).double()
                done += b
        p = (sum_p / t).numpy()
        p /= p.sum(axis=1, keepdims=True)
        pe = _entropy(p)
        mi = np.maximum(pe - (sum_h / t).numpy(), 0.0)

        class _Out:
            pass

        out = _Out()
        out.probabilities, out.mutual_information, out.predictive_entropy = p, mi, pe
        return out


def cpu_has_bf16() -> bool:
    """True on (Linux) CPUs with native bfloat16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split()
                    return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    return False


def predict_structure(model, structure, *, mc_samples: int, seed: int | None = None,
                      descriptor: Callable | None = None):
    """MC-dropout prediction for one whole structure, as the ASE and pymatgen adapters make it.

    With a model that describes structures itself (the shipped ARISE model: ``describe``, all
    its descriptor views) and no ``descriptor``: one ``model.predict`` call, the same numbers as
    :func:`cryspext.classify`. Otherwise ``descriptor(structure)`` (default: ARISE SOAP at
    ``model.descriptor_settings``) through :func:`mc_dropout` without early stopping. The result
    has one row of ``probabilities``, ``mutual_information`` and ``predictive_entropy`` (nats).
    """
    if descriptor is None and hasattr(model, "describe"):
        return model.predict(model.describe([structure], progress=False), mc_samples=mc_samples,
                             seed=seed)
    if descriptor is None:
        from ..descriptors import arise_soap

        settings = dict(getattr(model, "descriptor_settings", {}) or {})

        def descriptor(s):
            return arise_soap(s, **settings)

    x = np.asarray(descriptor(structure), dtype=np.float64).reshape(1, -1)
    return mc_dropout(model, x, mc_samples=mc_samples, adaptive=False, seed=seed)
