"""C7: low-precision optimizer state trains as well as fp32 state; bf16 params need stochastic or Kahan updates.

Self-contained: :mod:`.experiment` runs everything and returns metrics,
:mod:`.verdict` judges them (one part per task and the one-step check),
:mod:`.dynamic_map` is the paper's code, kept for comparison, and
:mod:`.report` draws the figure and the tables. The claim framework wires
``experiment.run`` and ``verdict.parts`` into ``adamlab reproduce``.
"""
