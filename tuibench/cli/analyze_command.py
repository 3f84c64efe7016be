"""`tuibench analyze`: theory per module (FLOPs, bytes, arithmetic intensity) on a device's roofline."""

from tuibench.cli.common import EXIT_OK, console, positive_int


def register(commands) -> None:
    parser = commands.add_parser("analyze", help="theory per module: FLOPs, bytes, arithmetic intensity, roofline")
    parser.add_argument("--model", default="smollm2-135m", help="embedded alias, an architecture (llama-2-7b, …), "
                        "local HF folder, or HF id in the local cache")
    parser.add_argument("--device", default="auto", help="auto (the GPU here, else this CPU), cpu, or a GPU: h100, "
                        "a100-80gb, …")
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--seq", type=positive_int, default=1024, help="prefill input length and decode context")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16", "float8"])
    parser.add_argument("--attn", choices=["fused", "eager"], default="fused",
                        help="fused keeps attention scores on chip (sdpa, flash); eager writes them out")
    parser.add_argument("--threads", type=positive_int, help="CPU roofline: threads to measure with (default: cores - 1)")
    parser.add_argument("--per-layer", action="store_true", help="a layer's modules for one layer, not summed over "
                        "the layers (the same intensity and bound, 1/L of the work)")
    parser.set_defaults(handler=main)


def main(args) -> int:
    from tuibench.analysis.theory import Workload, breakdown
    from tuibench.models.convert import model_shape
    from tuibench.profiling.cpu_roofline import device_roofline
    from tuibench.report.module_tables import intensity_sweep_table, paper_forms_legend, theory_table
    from tuibench.runner.environment import default_threads

    ref, shape = model_shape(args.model)
    chosen = device_roofline(args.device, args.dtype, args.threads or default_threads())
    shown = console()
    if chosen.note:
        shown.print(f"[dim]{chosen.note}[/]", highlight=False)
    roofline, dtype = chosen.roofline, chosen.dtype
    shown.print(f"[bold]{ref.name}[/]: {shape.layers} layers, hidden {shape.hidden}, intermediate "
                f"{shape.intermediate}, {shape.heads} heads ({shape.kv_heads} KV) of {shape.head_dim}, vocab "
                f"{shape.vocab:,}, {shape.parameters / 1e6:,.1f}M parameters")
    shown.print(f"[bold]{roofline.device}[/], {dtype}: {roofline.peak_flops_s / 1e12:,.3g} TFLOP/s, "
                f"{roofline.bandwidth_bytes_s / 1e9:,.0f} GB/s, ridge point {roofline.ridge:.1f} FLOP/B "
                f"[dim]({roofline.source})[/]")
    for work in (Workload.prefill(args.batch, args.seq, dtype, args.attn),
                 Workload.decode(args.batch, args.seq, dtype, args.attn)):
        shown.print()
        shown.print(theory_table(breakdown(shape, work), roofline, per_layer=args.per_layer))
        shown.print(f"[dim]{paper_forms_legend(work.phase)}[/]")
    shown.print()
    shown.print(intensity_sweep_table(shape, args.seq, dtype, args.attn, roofline, batch=args.batch))
    return EXIT_OK
