"""From the Setup screen's choice to a RunSpec and its requests: the same checks as the CLI, as UserErrors."""

from tuibench.core.errors import UserError
from tuibench.core.spec import DatasetSpec, OfflineParams, ProfileParams, RunSpec, ServingParams
from tuibench.ui.settings import SetupChoice


def parse_lengths(text: str) -> tuple[int, ...]:
    try:
        lengths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"lengths {text!r}: give whole numbers separated by commas, e.g. 32,128,512") from None
    if not lengths or min(lengths) < 1:
        raise UserError(f"lengths {text!r}: give at least one length of 1 or more, e.g. 32,128")
    return lengths


def spec_from_choice(choice: SetupChoice, threads: int) -> tuple[RunSpec, list]:
    from tuibench.backends import require_backend
    from tuibench.core.workload import dataset_from_arg, load_requests
    from tuibench.models.resolve import resolve_model

    resolve_model(choice.model)
    require_backend(choice.library, choice.scenario)
    if choice.num_requests < 1 or choice.batch_size < 1:
        raise UserError("requests and batch size must be at least 1")
    if choice.request_rate is not None and choice.request_rate <= 0:
        raise UserError("the request rate must be positive (empty: all at once)")
    if choice.scenario == "profile":
        lengths = parse_lengths(choice.lengths)
        spec = RunSpec(model=choice.model, library=choice.library, scenario="profile", threads=threads,
                       profile=ProfileParams(lengths=lengths, batch_size=choice.batch_size),
                       dataset=DatasetSpec(kind="random", source="random", input_len=max(lengths),
                                           output_len=ProfileParams().decode_steps))
        return spec, []
    dataset = dataset_from_arg(choice.dataset, input_len=choice.input_len, output_len=choice.output_len)
    spec = RunSpec(model=choice.model, library=choice.library, dataset=dataset, scenario=choice.scenario,
                   offline=OfflineParams(batch_size=choice.batch_size),
                   serving=ServingParams(request_rate=choice.request_rate), num_requests=choice.num_requests,
                   threads=threads)
    return spec, load_requests(dataset, choice.num_requests, spec.seed)
