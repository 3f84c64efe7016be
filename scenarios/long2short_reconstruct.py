"""Regenerates long2short.csv: a reconstruction, since the paper did not release that dataset.

The paper's long2short is summarisation: long inputs, short outputs. We draw 1000 requests with
inputs from a triangular distribution on [500, 2000] tokens (mode 900: most documents are
short-ish, a tail is long) and outputs uniform on [16, 100] tokens. Fixed seed, so the file is
reproducible: `python scenarios/long2short_reconstruct.py > scenarios/long2short.csv`.
"""

import random

rng = random.Random(2404_11502)
print("input_tokens,output_tokens")
for _ in range(1000):
    print(f"{round(rng.triangular(500, 2000, 900))},{rng.randint(16, 100)}")
