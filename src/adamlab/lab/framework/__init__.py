"""The lab's framework: the claim protocol, the runner and its workers, the report, the console, sweeps.

Nothing here knows about any particular claim; claims live in :mod:`adamlab.lab.claims`.
"""
