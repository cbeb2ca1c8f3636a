"""The space of `examples/tabular_benchmark.csv` (docs/custom_spaces.md): search the table with

    nasforge search --space examples/tabular_space.py:space \
        --table examples/tabular_benchmark.csv --strategy local --budget 15
"""

from nasforge.spaces.custom import Choice, Custom

space = Custom(
    {
        "block": ["conv", "pool"],
        "kernel": Choice([1, 3], when={"block": "conv"}),
        "depth": [1, 2, 3],
        "shortcut": ["none", "skip", "conv1x1"],
    },
    name="nb201-chain",
)
