"""Readers for the real dataset formats (KITTI raw, NYU), the HDF5 cache and the torch Datasets over it.

Submodules are imported explicitly (`depthcli.data.kitti`, `depthcli.data.cache`, ...) so that the
CLI can use the readers and the cache builder without importing torch.
"""
