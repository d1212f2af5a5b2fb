"""Transforms: rewrite an instance into a smaller or better-scaled one, and map answers back.

Peak-preserving reductions (:mod:`.reduction`), fusion of private links
(:mod:`.fusion`) and gcd scaling (:mod:`.scaling`).
"""
