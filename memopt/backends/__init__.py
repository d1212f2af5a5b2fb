"""Solver backends: one backend-neutral linear model (:mod:`.linear`) solved by CP-SAT, HiGHS or CBC."""
