"""CP-SAT and MILP formulations, sharing their variable/constraint builders."""
