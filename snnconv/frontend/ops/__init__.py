"""ONNX op converters, one module per op family; each function registers itself.

Adding an op means adding one decorated function to the family's module (or a new
module here): the registry imports every module of this package.
"""
