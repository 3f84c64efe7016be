"""Per-module cost of a LLaMA-family forward pass: FLOPs and bytes moved, in prefill and in decode.

Pure arithmetic on the model's HF config. Conventions, held everywhere:

- A matmul of (m x k) by (k x n) is 2mkn FLOPs (a multiply and an add), as torch's FlopCounterMode
  counts it. Attention scores are counted for every (query, key) pair the kernel computes: the
  full s x s square in prefill, as eager and sdpa compute it (a causal flash kernel skips about half).
- Element-wise ops count their arithmetic per element: RMSNorm 4 (square, sum, scale, weight),
  softmax 5 (max, subtract, exp, sum, divide), SiLU·mul 5, RoPE 3, a residual add 1.
- Bytes are the ideal traffic of each op at the run's dtype: its inputs read once, its weights read
  once, its outputs written once. Attention scores cost bytes only when materialised (eager); a fused
  kernel (sdpa, flash) keeps them on chip.
- Prefill runs b sequences of s tokens; decode runs one new token per sequence against a cache of
  `context` tokens (the new one included). The LM head runs on the last position only, as `generate`
  and vLLM do.
"""

from collections.abc import Mapping
from typing import Literal

import msgspec

from tuibench.core.roofline import Cost

Phase = Literal["prefill", "decode"]
AttnImpl = Literal["fused", "eager"]

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float8": 1}
INDEX_BYTES = 8  # token ids are int64


def total(costs) -> Cost:
    result = Cost()
    for cost in costs:
        result = result + cost
    return result


class ModelShape(msgspec.Struct, frozen=True, kw_only=True):
    hidden: int  # h
    intermediate: int  # h'
    heads: int  # n
    kv_heads: int
    head_dim: int  # d
    layers: int  # L
    vocab: int  # V
    tied_embeddings: bool = False
    qkv_bias: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> "ModelShape":
        """From a LLaMA-family config.json (LLaMA 2/3, Mistral, Qwen2, SmolLM)."""
        try:
            hidden = int(config["hidden_size"])
            heads = int(config["num_attention_heads"])
            return cls(
                hidden=hidden,
                intermediate=int(config["intermediate_size"]),
                heads=heads,
                kv_heads=int(config.get("num_key_value_heads") or heads),
                head_dim=int(config.get("head_dim") or hidden // heads),
                layers=int(config["num_hidden_layers"]),
                vocab=int(config["vocab_size"]),
                tied_embeddings=bool(config.get("tie_word_embeddings", False)),
                # Qwen2 has biases on q/k/v and none elsewhere; LLaMA's attention_bias covers all four.
                qkv_bias=bool(config.get("attention_bias", False)) or config.get("model_type") == "qwen2",
            )
        except KeyError as exc:
            raise ValueError(f"config has no {exc.args[0]}: not a LLaMA-family decoder config") from None

    @property
    def parameters(self) -> int:
        h, f, n, m, d = self.hidden, self.intermediate, self.heads, self.kv_heads, self.head_dim
        attention = h * n * d * 2 + h * m * d * 2 + ((n + 2 * m) * d if self.qkv_bias else 0)
        per_layer = attention + 3 * h * f + 2 * h
        embeddings = self.vocab * h * (1 if self.tied_embeddings else 2)
        return self.layers * per_layer + embeddings + h


class Workload(msgspec.Struct, frozen=True, kw_only=True):
    """One forward pass: `batch` sequences, `query_tokens` new tokens each, attending to `context` keys."""

    phase: Phase
    batch: int
    query_tokens: int
    context: float  # decode: may be a mean over several steps
    dtype: str = "float32"
    attn: AttnImpl = "fused"

    @classmethod
    def prefill(cls, batch: int, seq: int, dtype: str = "float32", attn: AttnImpl = "fused") -> "Workload":
        return cls(phase="prefill", batch=batch, query_tokens=seq, context=seq, dtype=dtype, attn=attn)

    @classmethod
    def decode(cls, batch: int, context: float, dtype: str = "float32", attn: AttnImpl = "fused") -> "Workload":
        return cls(phase="decode", batch=batch, query_tokens=1, context=context, dtype=dtype, attn=attn)

    @property
    def tokens(self) -> int:
        return self.batch * self.query_tokens

    @property
    def element_bytes(self) -> int:
        try:
            return DTYPE_BYTES[self.dtype]
        except KeyError:
            raise ValueError(f"dtype {self.dtype}: choose one of {', '.join(DTYPE_BYTES)}") from None


# The modules of one decoder layer, in execution order, then the ones outside the layers.
LAYER_MODULES = (
    "input_norm", "q_proj", "k_proj", "v_proj", "rope", "kv_write", "attn_qk", "attn_softmax", "attn_pv",
    "o_proj", "attn_residual", "post_norm", "gate_proj", "up_proj", "act_mul", "down_proj", "mlp_residual",
)
MODEL_MODULES = ("embed", "final_norm", "lm_head")
ATTENTION_CORE = ("attn_qk", "attn_softmax", "attn_pv")
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

LABELS = {
    "embed": "embedding", "input_norm": "input RMSNorm", "q_proj": "q proj", "k_proj": "k proj",
    "v_proj": "v proj", "rope": "RoPE", "kv_write": "KV-cache write", "attn_qk": "attention QKᵀ",
    "attn_softmax": "attention softmax", "attn_pv": "attention ·V", "attn_core": "attention core",
    "o_proj": "o proj", "attn_residual": "residual add", "post_norm": "post-attn RMSNorm",
    "gate_proj": "gate proj", "up_proj": "up proj", "act_mul": "SiLU·mul", "down_proj": "down proj",
    "mlp_residual": "residual add", "final_norm": "final RMSNorm", "lm_head": "LM head",
}


def _linear(tokens: int, fan_in: int, fan_out: int, e: int, bias: bool = False) -> Cost:
    weights = fan_in * fan_out + (fan_out if bias else 0)
    return Cost(
        flops=2.0 * tokens * fan_in * fan_out + (tokens * fan_out if bias else 0),
        bytes_read=float(e * (tokens * fan_in + weights)),
        bytes_written=float(e * tokens * fan_out),
    )


def _elementwise(elements: int, flops_each: float, inputs: int, e: int, extra_read: int = 0) -> Cost:
    """An op reading `inputs` tensors of `elements` each (plus `extra_read` elements), writing one."""
    return Cost(flops=flops_each * elements, bytes_read=float(e * (inputs * elements + extra_read)),
                bytes_written=float(e * elements))


def _rmsnorm(tokens: int, hidden: int, e: int) -> Cost:
    return _elementwise(tokens * hidden, 4.0, 1, e, extra_read=hidden)


def layer_costs(shape: ModelShape, work: Workload) -> dict[str, Cost]:
    """The cost of each module of one decoder layer (LAYER_MODULES order)."""
    e, t, b = work.element_bytes, work.tokens, work.batch
    h, f, d = shape.hidden, shape.intermediate, shape.head_dim
    q_width, kv_width = shape.heads * d, shape.kv_heads * d
    pairs = b * shape.heads * work.query_tokens * work.context  # (query, key) score pairs
    scores_bytes = float(e * pairs) if work.attn == "eager" else 0.0
    return {
        "input_norm": _rmsnorm(t, h, e),
        "q_proj": _linear(t, h, q_width, e, shape.qkv_bias),
        "k_proj": _linear(t, h, kv_width, e, shape.qkv_bias),
        "v_proj": _linear(t, h, kv_width, e, shape.qkv_bias),
        # q and k rotated; cos and sin (one head_dim row per token) read alongside.
        "rope": _elementwise(t * (q_width + kv_width), 3.0, 1, e, extra_read=2 * t * d),
        "kv_write": Cost(bytes_read=float(e * 2 * t * kv_width), bytes_written=float(e * 2 * t * kv_width)),
        # Q once, K for every query of a sequence; the scores go out (eager) or stay on chip (fused).
        "attn_qk": Cost(flops=2.0 * pairs * d, bytes_read=float(e * (t * q_width + b * work.context * kv_width)),
                        bytes_written=scores_bytes),
        "attn_softmax": Cost(flops=5.0 * pairs, bytes_read=scores_bytes, bytes_written=scores_bytes),
        "attn_pv": Cost(flops=2.0 * pairs * d, bytes_read=scores_bytes + e * b * work.context * kv_width,
                        bytes_written=float(e * t * q_width)),
        "o_proj": _linear(t, q_width, h, e),
        "attn_residual": _elementwise(t * h, 1.0, 2, e),
        "post_norm": _rmsnorm(t, h, e),
        "gate_proj": _linear(t, h, f, e),
        "up_proj": _linear(t, h, f, e),
        "act_mul": _elementwise(t * f, 5.0, 2, e),  # silu(gate) * up, fused: gate and up in, one out
        "down_proj": _linear(t, f, h, e),
        "mlp_residual": _elementwise(t * h, 1.0, 2, e),
    }


def model_costs(shape: ModelShape, work: Workload) -> dict[str, Cost]:
    """The cost of each module outside the layers (MODEL_MODULES order)."""
    e, t = work.element_bytes, work.tokens
    h = shape.hidden
    return {
        "embed": Cost(bytes_read=float(e * t * h + INDEX_BYTES * t), bytes_written=float(e * t * h)),
        "final_norm": _rmsnorm(t, h, e),
        "lm_head": _linear(work.batch, h, shape.vocab, e),  # last position of each sequence only
    }


class Breakdown(msgspec.Struct, frozen=True, kw_only=True):
    """Every module's cost for one workload, per layer and for the whole model."""

    shape: ModelShape
    work: Workload
    layer: dict[str, Cost]
    outside: dict[str, Cost]

    @property
    def per_layer(self) -> Cost:
        return total(self.layer.values())

    @property
    def whole_model(self) -> Cost:
        return self.per_layer * self.shape.layers + total(self.outside.values())

    def module(self, key: str) -> Cost:
        """One module summed over the whole model (a layer module times the layer count)."""
        if key == "attn_core":
            return total(self.module(k) for k in ATTENTION_CORE)
        if key in self.layer:
            return self.layer[key] * self.shape.layers
        return self.outside[key]


def breakdown(shape: ModelShape, work: Workload) -> Breakdown:
    return Breakdown(shape=shape, work=work, layer=layer_costs(shape, work), outside=model_costs(shape, work))
