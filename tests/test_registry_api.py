"""The public registry functions stay reachable as ``memopt.methods()`` once the registry has loaded."""

import subprocess
import sys


def test_memopt_methods_is_the_function_after_the_registry_loads():
    # a fresh interpreter: in this one the registry may have loaded long ago
    code = (
        "import sys\n"
        "import memopt\n"
        "memopt.solve(memopt.load_instance('instances/tiny.yaml'), method='greedy')\n"
        "assert callable(memopt.methods), memopt.methods\n"
        "assert 'greedy' in memopt.methods()\n"
        "assert 'auto' in memopt.methods()\n"  # registered from memopt.strategies
        "assert 'memopt.strategies.auto' in sys.modules\n"
        "import memopt.strategies.auto\n"
        "assert memopt.strategies.auto.run_auto\n"
        "assert callable(memopt.methods), memopt.methods\n"  # the subpackage does not shadow it
    )
    import os

    root = os.path.dirname(os.path.dirname(__file__))
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
