#!/bin/sh
# Regenerate the shipped instances (see instances/README.md). Run from the repository root:
#   sh instances/regenerate.sh
# The generators are seeded and platform independent: this rewrites identical files.
set -e
G="memopt generate"
$G chain           --n 20  --seed 1                                   -o instances/chain-20.yaml
$G in-tree         --n 30  --seed 2 --max-children 3 --workspace 0,4  -o instances/in-tree-30.yaml
$G out-tree        --n 25  --seed 3                                   -o instances/out-tree-25.yaml
$G series-parallel --n 50  --seed 4                                   -o instances/sp-50.yaml
$G series-parallel --n 40  --seed 5 --p-series 0.4 --form buffer --sizes 1,20  -o instances/sp-buffer-40.yaml
$G layered         --n 100 --seed 1 --width 0.27                      -o instances/layered-100.yaml
$G layered         --n 200 --seed 2 --width 0.3                       -o instances/layered-200.yaml
$G layered         --n 40  --seed 5 --form general --workspace 0,500  -o instances/layered-general-40.yaml
$G chain           --n 12  --seed 4 --train --params 1,20             -o instances/chain-train-12.yaml
$G layered         --n 40  --seed 6 --train --params 0,3000           -o instances/layered-train-40.yaml
# offloading: a budget below the best baseline peak, and a transfer bandwidth
$G chain           --n 16  --seed 7 --train --params 1,10 --budget 0.8x --bandwidth 2  -o instances/chain-train-offload.yaml
$G layered         --n 60  --seed 8 --budget 0.8x --bandwidth 4                        -o instances/layered-offload-60.yaml
$G series-parallel --n 80  --seed 9 --p-series 0.3 --sizes 1,50 --workspace 0,3 --budget 0.85x --bandwidth 1  -o instances/sp-offload-80.yaml
# a real-workflow format (WfCommons WfFormat 1.5), converted from the importer's test fixture
memopt convert tests/data/wfformat_v15.json instances/workflow-toy.yaml
