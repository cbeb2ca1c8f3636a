"""A small CNN search space: `nasforge search --space examples/custom_space.py:space`."""

from torch import nn

from nasforge.spaces.custom import Choice, Custom, IntRange


def build(cfg, *, in_channels, num_classes):
    """Conv or depthwise-separable layers, halving the map between layers; any input size."""
    layers, channels, width = [], in_channels, cfg["width"]
    for i in range(cfg["depth"]):
        if cfg["block"] == "conv":
            k = cfg["kernel"]  # only conv blocks have a kernel choice
            layers.append(nn.Conv2d(channels, width, k, padding=k // 2, bias=False))
        else:
            layers.append(nn.Conv2d(channels, channels, 3, padding=1, groups=channels))
            layers.append(nn.Conv2d(channels, width, 1, bias=False))
        layers += [nn.BatchNorm2d(width), nn.ReLU()]
        if i < cfg["depth"] - 1:
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        channels = width
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers, *head)


space = Custom(
    {
        "depth": IntRange(1, 3),  # 1, 2 or 3 layers
        "width": [16, 32, 64],
        "block": ["conv", "separable"],
        "kernel": Choice([3, 5], when={"block": "conv"}),
    },
    build=build,
    name="small-cnn",
)
