"""Graph analysis, in one place: reachability masks, series-parallel decomposition,
peak blocks (Liu's algebra) and release tasks. Pure functions over task
graphs; no solving."""
