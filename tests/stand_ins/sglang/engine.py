"""`sglang.Engine`'s offline interface as tuibench calls it: token-id prompts and sampling dicts in, a dict per
prompt out (its meta_info counts), greedy "tokens" that are the prompt's last id repeated."""


class Engine:
    def __init__(self, model_path: str, **server_args):
        self.model_path, self.server_args = model_path, server_args
        self.running = True

    def generate(self, input_ids: list[list[int]], sampling_params: list[dict]) -> list[dict]:
        assert self.running, "generate after shutdown"
        return [{"output_ids": [ids[-1]] * params["max_new_tokens"],
                 "meta_info": {"prompt_tokens": len(ids), "completion_tokens": params["max_new_tokens"]}}
                for ids, params in zip(input_ids, sampling_params, strict=True)]

    def shutdown(self) -> None:
        self.running = False
