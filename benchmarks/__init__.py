"""On-demand performance benchmarks (not part of the tests): `python -m benchmarks [--quick] [NAME ...]`.

Each benchmark measures the package against the baseline a user would otherwise run, in the same process,
and reports ratios; results go to benchmarks/results/<name>.json (git-ignored).
"""
