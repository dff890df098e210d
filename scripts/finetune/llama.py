"""A Llama-architecture model in PyTorch that computes what flashdip (and llama.cpp's 'llama' arch) computes.

Conventions are GGUF's, so weights move between this module and a GGUF file without permutation:
- a GGUF matrix W of dims [ne0 = n_in, ne1 = n_out] is a row-major [n_out][n_in] array, i.e. torch's
  nn.Linear weight layout; y = x @ W.T.
- RoPE is llama.cpp's "normal" rope (LLAMA_ROPE_TYPE_NORM): it rotates adjacent pairs (x[2i], x[2i+1])
  of each head by pos * base^(-2i / head_dim).
- RMSNorm: x * rsqrt(mean(x^2) + eps) * w.
- SwiGLU MLP: down(silu(gate(x)) * up(x)).

DIP (the paper's Dynamic Input Pruning, as flashdip's native/model/context.cc computes it) is applied in the
MLP when a `sparsity` (keep_x, keep_h) pair is given: the x-mask keeps the floor(keep_x * dim) entries of
the ffn_norm output with the largest |x| (it feeds ffn_gate and ffn_up, LoRA included); the h-mask keeps
the floor(keep_h * ffn) entries of h = silu(gate) * up with the largest |h| (it feeds ffn_down, LoRA
included). Ties go to the lower index, a NaN scores 0, at least one entry is kept. split_density() is
flashdip's "optimized DIP" split of an MLP density rho into (keep_x, keep_h) (lib/sparsity.ts).

Only torch 1.13 APIs are used (Debian's python3-torch), so CI can run it.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, dim, layers, heads, kv_heads, ffn, vocab, ctx=256, norm_eps=1e-5, rope_base=10000.0, tied=False):
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.kv_heads = kv_heads
        self.ffn = ffn
        self.vocab = vocab
        self.ctx = ctx
        self.norm_eps = norm_eps
        self.rope_base = rope_base
        self.tied = tied

    @property
    def head_dim(self):
        return self.dim // self.heads

    def to_dict(self):
        return dict(self.__dict__)

    @staticmethod
    def from_dict(d):
        return Config(**d)


def keep_count(keep, n):
    """How many of n entries a DIP mask keeps at fraction `keep` (native keep_count: floor, at least 1)."""
    return min(n, max(1, int(math.floor(keep * n))))


def split_density(rho):
    """flashdip's optimized DIP split (lib/sparsity.ts splitDensity): (keep_x, keep_h) for MLP density rho."""
    if rho >= 1:
        return 1.0, 1.0
    logit = math.log(rho / (1 - rho))
    keep_x = 1 / (1 + math.exp(-(0.9849930711017189 * logit + 0.29976477589716316)))
    keep_h = 3 * rho - 2 * keep_x
    if keep_h <= 0:
        raise ValueError('density %g is too low for the optimized split' % rho)
    return keep_x, min(1.0, keep_h)


def dip_mask(x, keep):
    """The DIP top-k mask of the last axis of x: 1.0 where |x| is among the k largest, else 0.0.

    Ties at the threshold go to the lower index, as flashdip's selection does; NaN scores 0."""
    n = x.shape[-1]
    k = keep_count(keep, n)
    if k >= n:
        return torch.ones_like(x)
    a = x.detach().abs()
    a = torch.where(torch.isnan(a), torch.zeros_like(a), a)
    # A stable descending sort puts, among equal magnitudes, the lower index first.
    order = torch.sort(a, dim=-1, descending=True, stable=True).indices
    mask = torch.zeros_like(a)
    mask.scatter_(-1, order[..., :k], 1.0)
    return mask


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoraLinear(nn.Module):
    """A bias-free linear layer y = x W^T (+ scale * (x A^T) B^T when a LoRA pair is attached).

    A is [rank, n_in] (the GGUF tensor <name>.lora_a of dims [n_in, rank]), B is [n_out, rank] (lora_b,
    dims [rank, n_out]); scale = alpha / rank, as llama.cpp applies adapter.lora.alpha."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.lora_a = None
        self.lora_b = None
        self.lora_scale = 0.0

    def add_lora(self, rank, alpha, generator=None):
        n_out, n_in = self.weight.shape
        a = torch.empty(rank, n_in)
        # LoRA's usual init: A random (Kaiming-uniform-like), B zero, so training starts at the base model.
        bound = 1.0 / math.sqrt(n_in)
        a.uniform_(-bound, bound, generator=generator)
        self.lora_a = nn.Parameter(a)
        self.lora_b = nn.Parameter(torch.zeros(n_out, rank))
        self.lora_scale = alpha / rank

    def forward(self, x):
        y = F.linear(x, self.weight)
        if self.lora_a is not None:
            y = y + self.lora_scale * F.linear(F.linear(x, self.lora_a), self.lora_b)
        return y


def rope_tables(head_dim, ctx, base):
    inv = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(ctx, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin):
    # x: [B, T, H, hd]; rotate adjacent pairs.
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    r0 = x0 * c - x1 * s
    r1 = x0 * s + x1 * c
    return torch.stack((r0, r1), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        hd = c.head_dim
        self.attn_norm = RMSNorm(c.dim, c.norm_eps)
        self.attn_q = LoraLinear(c.dim, c.heads * hd)
        self.attn_k = LoraLinear(c.dim, c.kv_heads * hd)
        self.attn_v = LoraLinear(c.dim, c.kv_heads * hd)
        self.attn_output = LoraLinear(c.heads * hd, c.dim)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)
        self.ffn_gate = LoraLinear(c.dim, c.ffn)
        self.ffn_up = LoraLinear(c.dim, c.ffn)
        self.ffn_down = LoraLinear(c.ffn, c.dim)

    def forward(self, x, cos, sin, sparsity):
        c = self.c
        B, T, _ = x.shape
        hd = c.head_dim
        h = self.attn_norm(x)
        q = apply_rope(self.attn_q(h).view(B, T, c.heads, hd), cos, sin)
        k = apply_rope(self.attn_k(h).view(B, T, c.kv_heads, hd), cos, sin)
        v = self.attn_v(h).view(B, T, c.kv_heads, hd)
        rep = c.heads // c.kv_heads
        if rep > 1:
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, hd]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float('-inf')).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, c.heads * hd)
        x = x + self.attn_output(o)
        h = self.ffn_norm(x)
        if sparsity is not None:
            h = h * dip_mask(h, sparsity[0])
        g = F.silu(self.ffn_gate(h)) * self.ffn_up(h)
        if sparsity is not None:
            g = g * dip_mask(g, sparsity[1])
        return x + self.ffn_down(g)


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.token_embd = nn.Parameter(torch.empty(c.vocab, c.dim))
        self.blocks = nn.ModuleList([Block(c) for _ in range(c.layers)])
        self.output_norm = RMSNorm(c.dim, c.norm_eps)
        self.output = None if c.tied else LoraLinear(c.dim, c.vocab)
        cos, sin = rope_tables(c.head_dim, c.ctx, c.rope_base)
        self.register_buffer('rope_cos', cos, persistent=False)
        self.register_buffer('rope_sin', sin, persistent=False)

    def init_weights(self, generator):
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith('attn_norm.weight') or name.endswith('ffn_norm.weight') or name == 'output_norm.weight':
                p.data.fill_(1.0)
            else:
                p.data.normal_(0.0, std, generator=generator)
                # GPT-2's scaled init of the residual projections.
                if name.endswith('attn_output.weight') or name.endswith('ffn_down.weight'):
                    p.data.mul_(1.0 / math.sqrt(2 * self.c.layers))

    def forward(self, tokens, sparsity=None):
        """Logits [B, T, vocab]; sparsity: None (dense) or DIP's (keep_x, keep_h)."""
        T = tokens.shape[1]
        x = F.embedding(tokens, self.token_embd)
        cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        for b in self.blocks:
            x = b(x, cos, sin, sparsity)
        x = self.output_norm(x)
        if self.output is None:
            return F.linear(x, self.token_embd)
        return self.output(x)

    # GGUF tensor names <-> parameters.
    def gguf_tensors(self):
        """(gguf name, parameter) for every base weight, in llama.cpp's order."""
        out = [('token_embd.weight', self.token_embd)]
        for i, b in enumerate(self.blocks):
            p = 'blk.%d.' % i
            out += [
                (p + 'attn_norm.weight', b.attn_norm.weight),
                (p + 'attn_q.weight', b.attn_q.weight),
                (p + 'attn_k.weight', b.attn_k.weight),
                (p + 'attn_v.weight', b.attn_v.weight),
                (p + 'attn_output.weight', b.attn_output.weight),
                (p + 'ffn_norm.weight', b.ffn_norm.weight),
                (p + 'ffn_gate.weight', b.ffn_gate.weight),
                (p + 'ffn_up.weight', b.ffn_up.weight),
                (p + 'ffn_down.weight', b.ffn_down.weight),
            ]
        out.append(('output_norm.weight', self.output_norm.weight))
        if self.output is not None:
            out.append(('output.weight', self.output.weight))
        return out

    def linears(self):
        """(gguf base name, LoraLinear) for every matrix a LoRA adapter may target."""
        out = []
        for i, b in enumerate(self.blocks):
            for n in ('attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down'):
                out.append(('blk.%d.%s.weight' % (i, n), getattr(b, n)))
        if self.output is not None:
            out.append(('output.weight', self.output))
        return out
