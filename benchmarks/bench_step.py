"""Optimizer-step throughput: adamlab against torch's loop, foreach and fused AdamW.

Same as `adamlab bench`; run `python benchmarks/bench_step.py --help`.
"""

import argparse
import sys

from adamlab.lab import bench

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    bench.add_arguments(parser)
    sys.exit(bench.run(parser.parse_args()))
