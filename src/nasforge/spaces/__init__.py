"""Search spaces: what can be searched. Each implements ``spaces.base.SearchSpace``;
``nasforge.factory.SPACE_CLASSES`` maps the CLI names to these classes."""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "NB201Space": "nasforge.spaces.nb201",
        "NB201Arch": "nasforge.spaces.nb201",
        "DartsSpace": "nasforge.spaces.darts",
        "DartsArch": "nasforge.spaces.darts",
        "NB101Space": "nasforge.spaces.nb101",
        "NB101Arch": "nasforge.spaces.nb101",
        "NASNetSpace": "nasforge.spaces.nasnet",
        "NASNetArch": "nasforge.spaces.nasnet",
        "MobileSpace": "nasforge.spaces.mobile",
        "MobileArch": "nasforge.spaces.mobile",
        "ChainSpace": "nasforge.spaces.chain",
        "ChainArch": "nasforge.spaces.chain",
        "Custom": "nasforge.spaces.custom",
        "Choice": "nasforge.spaces.custom",
        "IntRange": "nasforge.spaces.custom",
        "load_space": "nasforge.spaces.custom",
        "DecisionVectorSpace": "nasforge.spaces.vector",
    },
)
