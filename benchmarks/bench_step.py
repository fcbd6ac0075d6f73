"""Optimizer-step throughput: adamlab against torch's loop, foreach and fused AdamW, and the memory ceiling.

Same as `adamlab bench`; run `python benchmarks/bench_step.py --help`.
"""

import sys

from adamlab.bench import main

if __name__ == "__main__":
    sys.exit(main())
