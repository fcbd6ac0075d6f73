"""Compiled optimizer steps, adamlab's beside torch.optim's, eager and compiled, under a LambdaLR schedule.

Same as `adamlab bench --sections compile`; run `python benchmarks/bench_compile.py --help`.
"""

import sys

from adamlab.bench import main

if __name__ == "__main__":
    sys.exit(main(["--sections", "compile", *sys.argv[1:]]))
