"""Winograd's minimal filtering F(2x2, 3x3): a 3x3 convolution (stride 1, padding 1) in 2.25
times fewer multiplications than im2col's product (Lavin and Gray, "Fast Algorithms for
Convolutional Neural Networks", CVPR 2016, after S. Winograd, "Arithmetic Complexity of
Computations", 1980). The numpy kernel set uses it on the CPU for such convolutions on maps of
WINOGRAD_MIN_PIXELS pixels or more (``vectorized.py``).

One 2x2 tile of output needs a 4x4 tile d of the padded input. Done directly, each (output
channel, input channel) pair costs 2*2*9 = 36 multiplications per tile; Winograd's way, 16:

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* element by element; g the 3x3 filter)

    B^T = [[1, 0,-1, 0],    G = [[1,    0,   0  ],    A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],         [1/2,  1/2, 1/2],           [0, 1,-1,-1]]
           [0,-1, 1, 0],         [1/2, -1/2, 1/2],
           [0, 1, 0,-1]]         [0,    0,   1  ]]

Check it on one row: with d = (d0, d1, d2, d3) and g = (g0, g1, g2), the two outputs are
y0 = d0 g0 + d1 g1 + d2 g2 and y1 = d1 g0 + d2 g1 + d3 g2; A^T[(G g) * (B^T d)] gives the
same from 4 products instead of 6. In 2-D the rows and the columns both get it: 16 instead of 36.

The sum over input channels passes through the transforms (they are linear), so for each of
the 16 positions xi of a 4x4 tile it is one matrix product:

    M[xi] (C_out, tiles) = U[xi] (C_out, C) @ V[xi] (C, tiles),   U = G g G^T,  V = B^T d B

and each input tile and each filter is transformed once, not once per pair. What stays of the
direct way's cost is memory traffic: the input's transform is additions and subtractions (B
holds only 0, 1 and -1), a few NumPy passes over arrays the size of the input, in place of
im2col's 9-fold copy of it; the output's transform, and the filters', is one small product
each (a Kronecker square of A^T, of G), which reads its operand once.

The backward is the exact adjoint of the forward (the transposed linear maps in reverse
order), so a finite-difference check of it holds to rounding:

    Z[xi] = (A gY A^T)[xi]                      the output gradient, spread over 4x4 tiles
    gU[xi] = Z[xi] @ V[xi]^T,  gg = G^T gU G     the filters' gradient
    gV[xi] = U[xi]^T @ Z[xi],  gd = B gV B^T     the input tiles' gradient, added back into
                                                 the (overlapping) tiles' pixels

Memory layout: everything works batch last, (C, H, W, N), as the numpy set's convolution
does, and the padded input is kept with its rows and its columns split by parity,

    x_split[c, pr, r, pc, s, n] = x_pad[c, 2r + pr, 2s + pc, n],

so that row k of every tile (padded row 2t + k) is the slice [:, k % 2, k//2 : k//2 + TH]:
one strided view with long runs of memory, and a transform is a handful of whole-array
additions. Tiles run over (TH, TW, N), batch fastest; a map of odd size gets one more row or
column of zeros (its tile half outside the output), whose results are dropped.

Rounding: the results differ from im2col's product in the last bits (float32: a few 1e-7 of
the largest output, about the size of the direct product's own error against float64;
``tests/test_winograd.py``). F(4x4, 3x3), on 6x6 tiles, would save more multiplications but
its constants (1/6, 1/24, 8) lose more: about 1e-5 in float32.
"""
import numpy

from .. import parallel

# The three matrices of F(2x2, 3x3); B^T and A^T hold only 0, 1 and -1 (additions).
B_T = ((1, 0, -1, 0),
       (0, 1, 1, 0),
       (0, -1, 1, 0),
       (0, 1, 0, -1))
G = numpy.array([[1.0, 0.0, 0.0],
                 [0.5, 0.5, 0.5],
                 [0.5, -0.5, 0.5],
                 [0.0, 0.0, 1.0]])
A_T = ((1, 1, 1, 0),
       (0, 1, -1, -1))


def _transposed(matrix):
    """A matrix given as a tuple of rows, transposed (B from B^T, A from A^T)."""
    return tuple(zip(*matrix))


def tiles_of(size):
    """How many 2-pixel tiles cover ``size`` pixels (one more half-empty tile for an odd size)."""
    return (size + 1) // 2


def _combine(matrix, inputs, outputs):
    """outputs[i] = sum over j of matrix[i][j] * inputs[j], for a matrix of 0, 1 and -1:
    additions and subtractions only, each straight into outputs[i] (no temporaries)."""
    for row, out in zip(matrix, outputs):
        # a positive term first when there is one; with none, the sum of the negated terms, negated
        terms = sorted(((sign, a) for sign, a in zip(row, inputs) if sign), key=lambda term: -term[0])
        (first_sign, first), rest = terms[0], terms[1:]
        if not rest:
            (numpy.copyto if first_sign > 0 else _negative)(out, first)
            continue
        for step, (sign, a) in enumerate(rest):
            add = sign == first_sign
            (numpy.add if add else numpy.subtract)(first if step == 0 else out, a, out=out)
        if first_sign < 0:
            numpy.negative(out, out=out)


def _negative(out, a):
    numpy.negative(a, out=out)


def _shifted(a, k, count, axis):
    """Of an array whose axes axis, axis+1 are (parity, index) of a split one: the ``count``
    entries 2t + k, t = 0 .. count-1 (a view)."""
    index = (slice(None),) * axis + (k % 2, slice(k // 2, k // 2 + count))
    return a[index]


# --- the filters: U = G g G^T and its adjoint -----------------------------------------------------
# (G g G^T)[a, b] = sum over i, j of G[a, i] G[b, j] g[i, j]: with the 3x3 filter flattened to 9
# numbers and the 4x4 result to 16, a (16, 9) matrix, the Kronecker product of G with itself.
G_KRON_G = numpy.kron(G, G)


def filter_transform(weight):
    """weight (C_out, C, 3, 3) -> U (16, C_out, C): U[4a + b] = (G g G^T)[a, b] for every filter
    (one product: (16, 9) @ (9, C_out*C))."""
    c_out, c = weight.shape[:2]
    filters = weight.reshape(c_out * c, 9)
    return numpy.matmul(G_KRON_G.astype(weight.dtype), filters.T).reshape(16, c_out, c)


def filter_gradient(gu):
    """gU (16, C_out, C) -> the filters' gradient (C_out, C, 3, 3) = G^T gU G for each pair."""
    c_out, c = gu.shape[1:]
    return numpy.matmul(gu.reshape(16, c_out * c).T, G_KRON_G.astype(gu.dtype)).reshape(c_out, c, 3, 3)


# --- the input: V = B^T d B, tile by tile, and its adjoint --------------------------------------
def input_transform(x):
    """x (N, C, H, W), any strides -> V (16, C, TH*TW*N): V[4a + b][c, (t, s, n)] is
    (B^T d B)[a, b] for the 4x4 tile d at tile row t, tile column s of image n."""
    n, c, h, w = x.shape
    th, tw = tiles_of(h), tiles_of(w)
    v = numpy.empty((16, c, th * tw * n), dtype=x.dtype)

    def channels(start, stop):
        x_split = _split_padded(x[:, start:stop], th, tw)
        rows = numpy.empty((4, stop - start, th, 2, tw + 1, n), dtype=x.dtype)
        _combine(B_T, [_shifted(x_split, k, th, 1) for k in range(4)], rows)     # B^T d
        v_chunk = v[:, start:stop].reshape(4, 4, stop - start, th, tw, n)
        for a in range(4):                                                        # (B^T d) B
            _combine(B_T, [_shifted(rows[a], k, tw, 2) for k in range(4)], v_chunk[a])
    parallel.for_chunks("winograd input", c, channels, x.size * 9, numpy)
    return v


def _split_padded(x, th, tw):
    """x (N, C, H, W) -> x_split (C, 2, TH+1, 2, TW+1, N) (see the module's docstring): x
    padded by one zero on top and left, and with zeros to 2*TH+2 rows, 2*TW+2 columns."""
    n, c, h, w = x.shape
    x_split = numpy.zeros((c, 2, th + 1, 2, tw + 1, n), dtype=x.dtype)
    x_t = x.transpose(1, 2, 3, 0)
    for in_map, in_split in _parity_classes(h, w):
        x_split[in_split] = x_t[in_map]
    return x_split


def _parity_classes(h, w):
    """For each of the four classes of an (H, W) map's pixels by the parity of their padded row
    and column: (the class as an index into a (C, H, W, N) array, where it lies in the split
    padded array). Input row i is padded row i + 1: odd rows have parity 0 and start at split
    index 1, even rows parity 1 from index 0; columns alike."""
    for parity_row, first_row in ((0, 1), (1, 0)):
        for parity_col, first_col in ((0, 1), (1, 0)):
            rows, columns = len(range(first_row, h, 2)), len(range(first_col, w, 2))
            at_r, at_s = (first_row + 1) // 2, (first_col + 1) // 2
            in_map = (slice(None), slice(first_row, None, 2), slice(first_col, None, 2))
            yield in_map, (slice(None), parity_row, slice(at_r, at_r + rows), parity_col, slice(at_s, at_s + columns))


def input_gradient(gv, x_shape):
    """The adjoint of ``input_transform``: gV (16, C, TH*TW*N) -> gx (N, C, H, W), a view of a
    (C, H, W, N) array. Each tile's gradient B gV B^T is added into the pixels the tile read:
    neighbouring tiles overlap by two rows or columns, which receive the sum."""
    n, c, h, w = x_shape
    th, tw = tiles_of(h), tiles_of(w)
    gx = numpy.empty((c, h, w, n), dtype=gv.dtype)
    b = _transposed(B_T)

    def channels(start, stop):
        gv_chunk = gv[:, start:stop].reshape(4, 4, stop - start, th, tw, n)
        columns = numpy.zeros((4, stop - start, th, 2, tw + 1, n), dtype=gv.dtype)
        for a in range(4):                                                        # gV B^T, columns
            _add_shifted(b, list(gv_chunk[a]), columns[a], tw, axis=2)
        g_split = numpy.zeros((stop - start, 2, th + 1, 2, tw + 1, n), dtype=gv.dtype)
        _add_shifted(b, list(columns), g_split, th, axis=1)                      # B (gV B^T), rows
        _unsplit_interior(g_split, gx[start:stop])
    parallel.for_chunks("winograd input gradient", c, channels, gv.size * 2, numpy)
    return gx.transpose(3, 0, 1, 2)


def _add_shifted(matrix, inputs, split, count, axis):
    """The adjoint of ``_combine(transposed matrix, shifted slices of split)``: for k = 0..3,
    split's entries 2t + k (along the parity-split ``axis``) += sum over j of
    matrix[k][j] * inputs[j]. Rows k and k + 2 land on one parity, shifted by one entry."""
    scratch = numpy.empty_like(inputs[0])
    for k in range(4):
        _combine([matrix[k]], inputs, [scratch])
        target = _shifted(split, k, count, axis)
        numpy.add(target, scratch, out=target)


def _unsplit_interior(g_split, out):
    """out (C, H, W, N) = the interior (the rows and columns of x) of a split padded array."""
    for in_map, in_split in _parity_classes(*out.shape[1:3]):
        out[in_map] = g_split[in_split]


# --- the output: Y = A^T M A, and its adjoint ----------------------------------------------------
# As for the filters, (A^T M A)[p, q] over the 16 numbers of M flattened is a (4, 16) matrix,
# A^T's Kronecker product with itself. Here the products are worth it over additions: one BLAS
# call reads M once, where a chain of additions (2 per output, 16 for the rows) passes over it
# and its partial sums many times (at conv2's shape at batch 8: 13 ms, against 5 for the product
# and 3 for putting its pixels in place).
A_KRON_A = numpy.kron(numpy.array(A_T, dtype=float), numpy.array(A_T, dtype=float))


def output_transform(m):
    """M (16, C_out, tiles) -> (2, 2, C_out, tiles): pixel (p, q) of every output tile,
    (A^T M A)[p, q]; the caller puts the pixels in place."""
    return numpy.matmul(A_KRON_A.astype(m.dtype), m.reshape(16, -1)).reshape(2, 2, *m.shape[1:])


def output_gradient(gy_pixels):
    """The adjoint of ``output_transform``: the gradient of pixel (p, q) of every tile,
    (2, 2, C_out, tiles) -> Z (16, C_out, tiles), each tile's A gY A^T."""
    shape = gy_pixels.shape[2:]
    return numpy.matmul(A_KRON_A.T.astype(gy_pixels.dtype), gy_pixels.reshape(4, -1)).reshape(16, *shape)
