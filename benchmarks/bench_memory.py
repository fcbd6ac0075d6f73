"""Low-precision optimizer state: bytes per param and step throughput against each storage's ceiling.

Same as ``python -m adamlab.bench.memory``; run with ``--help``.
"""

import sys

from adamlab.bench import memory

if __name__ == "__main__":
    sys.exit(memory.main())
