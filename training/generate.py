"""Sample text from an exported model through Hugging Face `transformers` (the demo's last step).

    python -m training.generate HF_DIR [--prompt TEXT] [--max-new-tokens N] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import os


def generate(model_dir: str, prompt: str, max_new_tokens: int = 40, seed: int = 0) -> str:
    import torch
    from transformers import AutoTokenizer, OlmoForCausalLM

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = OlmoForCausalLM.from_pretrained(model_dir)
    model.eval()
    inputs = tokenizer(prompt, return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=True, top_k=40, temperature=0.8,
                             pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 1)
    return tokenizer.decode(out[0], skip_special_tokens=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--prompt", default="The")
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="also write the sample to OUTPUT/sample.json")
    args = parser.parse_args(argv)
    text = generate(args.model_dir, args.prompt, args.max_new_tokens, args.seed)
    print("\n=== sample from the trained model (transformers OlmoForCausalLM) ===")
    print(text)
    print("=== end of sample ===\n")
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        with open(os.path.join(args.output, "sample.json"), "w") as fh:
            json.dump({"model": os.path.abspath(args.model_dir), "prompt": args.prompt, "text": text}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
