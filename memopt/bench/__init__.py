"""Experiments: run a grid of instances × methods × budgets into a CSV.

>>> from memopt.bench import BenchSpec, run_bench                    # doctest: +SKIP
>>> spec = BenchSpec(["instances/tiny.yaml"], objective="time",
...                  budgets=["1x", "0.9x"], time_limit=10)          # doctest: +SKIP
>>> run_bench(spec, "results/tiny.csv")                              # doctest: +SKIP

- :mod:`~memopt.bench.grid`: the spec and its jobs (one per run);
- :mod:`~memopt.bench.worker`: one run, on whichever process executes it;
- :mod:`~memopt.bench.executors`: serial, local processes, Dask cluster;
- :mod:`~memopt.bench.table`: the CSV, the evaluator re-check, resuming;
- :mod:`~memopt.bench.report`: Markdown tables and figures from a CSV.

Methods are taken from the registry (:meth:`memopt.catalog.Catalog.for_request`), so
every registered method is benchmarked without a change here.
"""

from memopt.bench.executors import (
    DaskExecutor,
    LocalExecutor,
    SerialExecutor,
    available_cores,
    make_executor,
    pool_size,
)
from memopt.bench.experiment import BenchSummary, plans_dir_for, run_bench
from memopt.bench.grid import BenchSpec, Job, build_grid
from memopt.bench.table import COLUMNS, ResultsTable, read_rows, recheck
from memopt.bench.worker import Outcome, run_job

__all__ = [
    "BenchSpec", "BenchSummary", "COLUMNS", "DaskExecutor", "Job", "LocalExecutor", "Outcome",
    "ResultsTable", "SerialExecutor", "available_cores", "build_grid", "make_executor", "plans_dir_for",
    "pool_size", "read_rows", "recheck", "run_bench", "run_job",
]
