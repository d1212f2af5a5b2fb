"""Hierarchical solving of large training graphs through their repeated blocks (issue 16).

:mod:`.chain` (the chain decomposition: groups, checkpoints, pinned and
crossing data), :mod:`.sequence` (compute sequences, their memory and their
plan), :mod:`.options` (the operations of a group and their menus of tapes),
:mod:`.block_models` (a group's own instance for the planner and
Checkmate), :mod:`.dp` (the chain DP, exact for its class of rotor
sequences), :mod:`.run` (one decomposition and its menus),
:mod:`.window` and :mod:`.lns` (windows of tasks re-solved exactly),
:mod:`.method` (the catalog's ``hierarchical``). The structure itself is
found by :mod:`memopt.graph.structure`. See docs/hierarchical.md.
"""
