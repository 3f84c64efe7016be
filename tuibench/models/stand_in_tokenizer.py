"""A tokenizer for a model that has none: token i is the word `w<i>`, so ids and text map one to one.

Architecture-only models ship a config and no tokenizer, yet every path of tuibench wants one: random
prompts draw from its plain ids, servers take text, the client fits text to its count. This one has
exactly the config's vocabulary, so a prompt of n ids is a text of n words that encodes back to the
same n ids on any library that loads Hugging Face tokenizers (a word-level model, split on spaces).
"""

import json
from pathlib import Path


def _first(token_id) -> int | None:
    """A config's token id: a number, a list (several EOS ids: the first) or absent."""
    if isinstance(token_id, list):
        return int(token_id[0]) if token_id else None
    return None if token_id is None else int(token_id)


def _specials(config: dict) -> dict[int, str]:
    """The config's special ids by name: EOS (one or several), BOS, pad, and id 0 as the unknown token when
    it is none of those (a word-level model needs one)."""
    named: dict[int, str] = {}
    eos = config.get("eos_token_id")
    for i in eos if isinstance(eos, list) else [eos]:
        if i is not None:
            named.setdefault(int(i), "</s>" if not named else f"</s{i}>")
    for key, name in (("bos_token_id", "<s>"), ("pad_token_id", "<pad>")):
        if (token_id := _first(config.get(key))) is not None:
            named.setdefault(token_id, name)
    named.setdefault(0, "<unk>")
    return named


def write_stand_in_tokenizer(config: dict, out: Path) -> None:
    """tokenizer.json and tokenizer_config.json for `config`'s vocabulary, into `out`."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    from tuibench.models.architectures import context_tokens

    specials = _specials(config)
    vocab = {specials.get(i, f"w{i}"): i for i in range(int(config["vocab_size"]))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=specials[0]))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens([AddedToken(name, special=True) for name in specials.values()])
    tokenizer.save(str(out / "tokenizer.json"))
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": context_tokens(config),
                "clean_up_tokenization_spaces": False, "unk_token": specials[0]}
    for key, config_key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("pad_token", "pad_token_id")):
        if (token_id := _first(config.get(config_key))) is not None:
            settings[key] = specials[token_id]
    (out / "tokenizer_config.json").write_text(json.dumps(settings, indent=2) + "\n")
