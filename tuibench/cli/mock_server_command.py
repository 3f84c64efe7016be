"""`tuibench mock-server`: a known-answer OpenAI-compatible server, tokens on a schedule set in advance."""

from tuibench.cli.common import EXIT_OK, port_number


def register(commands) -> None:
    from tuibench.cli.flags import add_struct_options
    from tuibench.servers.mock import MockConfig

    parser = commands.add_parser("mock-server", help="a known-answer OpenAI-compatible server: tokens on a fixed "
                                                     "schedule",
                                 description="Streams every request's tokens on a schedule set in advance: the first "
                                             "after --ttft-ms, then one every --itl-ms. Ground truth for a client, a "
                                             "network path or a proxy.")
    add_struct_options(parser, MockConfig)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port_number, default=8000)
    parser.set_defaults(handler=main)


def main(args) -> int:
    from tuibench.cli.flags import struct_from_args
    from tuibench.servers.managed import check_port_free
    from tuibench.servers.mock import MockConfig, serve

    if args.host in ("127.0.0.1", "localhost"):
        check_port_free(args.port)
    config = struct_from_args(args, MockConfig)

    def ready(url: str) -> None:
        jitter = f" ± {config.jitter_ms:g}" if config.jitter_ms else ""
        limit = f", {config.max_concurrency} at once" if config.max_concurrency else ""
        print(f"mock server on {url}: model '{config.model}', TTFT {config.ttft_ms:g} ms, ITL {config.itl_ms:g}{jitter} "
              f"ms{limit}\ntry: tuibench run --scenario serving --endpoint {url} --served-model-name {config.model} "
              "--dataset random --num-requests 20 --request-rate 5", flush=True)

    serve(config, args.host, args.port, ready)
    return EXIT_OK
