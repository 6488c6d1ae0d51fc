"""The math of every op as forward/backward pairs over plain arrays.

Each ``*_forward(arrays..., **params)`` returns ``(out, cache)``; the matching
``*_backward(gy, cache)`` returns one gradient per array input (``None`` for an
input that has none). ``minigrad.autograd.Op`` wraps any such pair into a
differentiable function; the pairs themselves know nothing about graphs.
"""
