"""Compression: pruning, quantisation, distillation and the loops they share."""
