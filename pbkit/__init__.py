"""pbkit: PopBin binary neural networks from PyTorch to Cortex-M."""
__version__ = "0.1.0"
