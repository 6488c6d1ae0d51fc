"""Lesson 1's exercises 1.6 and 1.7: the backward walk itself. 1.6 puts a graph's tensors in topological
order (outputs first, each tensor after all of its users); 1.7 walks a given order, running
each op's backward once and adding up the gradients of tensors used more than once. Both
are checked on small graphs built afresh for every attempt, against minigrad's own walk
(Tensor.backward_steps).
"""
from typing import NamedTuple

import numpy

import minigrad.functional as F
from minigrad import Tensor
from minigrad.autograd import graph_order
from .cases import run_learners_code
from .check import registers
from .verdicts import CORRECT, WRONG, compare, same_values

SAME_ARITHMETIC = 1e-12      # what the walk sends is minigrad's own arithmetic, at most reordered


def _leaf(values, requires_grad=True):
    return Tensor(numpy.array(values, dtype=numpy.float64), requires_grad=requires_grad)


def _chain():
    x = _leaf([0.3, -0.8, 1.1])
    a = x * 2.0
    b = a.tanh()
    c = b.exp()
    L = c.sum()
    return L, {"x": x, "a": a, "b": b, "c": c, "L": L}


def _used_twice():
    x = _leaf([1.0, 2.0], requires_grad=False)
    w = _leaf([0.5, -1.0])
    b = _leaf(0.25)
    h = w * x + b
    hh = h * h
    L = hh.sum()
    return L, {"x": x, "w": w, "b": b, "h": h, "h*h": hh, "L": L}


def _diamond():
    x = _leaf([0.5, -1.0, 0.25])
    a = x * 2.0
    e = a.exp()
    m = a * e                   # m reaches a directly and through e
    L = m.sum()
    return L, {"x": x, "a": a, "e": e, "m": m, "L": L}


def _broadcasting():
    rng = numpy.random.default_rng(16)
    X = _leaf(rng.standard_normal((4, 3)))
    w = _leaf(rng.standard_normal(3))
    b = _leaf(0.1)
    z = X * w + b
    t = z.tanh()
    p = t * X
    L = p.sum()
    return L, {"X": X, "w": w, "b": b, "z": z, "tanh(z)": t, "tanh(z) * X": p, "L": L}


def _no_bias():
    rng = numpy.random.default_rng(17)
    x = _leaf(rng.standard_normal((2, 3)), requires_grad=False)
    W = _leaf(rng.standard_normal((4, 3)))
    y = F.linear(x, W, None)        # as nn.Linear(3, 4, bias=False) calls it
    r = y.relu()
    L = (r ** 2).sum()
    return L, {"x": x, "W": W, "y": y, "relu(y)": r, "L": L}


# case name -> a function that builds the graph afresh: (root, {name: tensor})
WALK_GRAPHS = {
    "a chain, L = sum(exp(tanh(2 x)))": _chain,
    "h used twice, L = sum(h * h) with h = w x + b": _used_twice,
    "a diamond, a = 2 x feeds e = exp(a) and m = a * e, L = sum(m)": _diamond,
    "broadcasting, z = X w + b with X (4, 3), w (3,), b scalar, L = sum(tanh(z) * X)": _broadcasting,
    "a linear layer without a bias (its inputs are x, W, None), L = sum(relu(x W^T) ** 2)": _no_bias,
}


def _namer(names):
    """label(tensor): its name in the case, else what it is ('the constant 2', 'the output of mul')."""
    lookup = {id(tensor): name for name, tensor in names.items()}

    def label(tensor):
        if id(tensor) in lookup:
            return lookup[id(tensor)]
        if tensor.node is not None:
            return f"the output of {tensor.node.name}"
        return f"the constant {tensor.item():g}" if tensor.size == 1 else "a constant"
    return label


def _users(order):
    """id(tensor) -> the tensors whose op took it as an input (once per use)."""
    users = {}
    for tensor in order:
        if tensor.node is not None:
            for parent in tensor.node.inputs:
                if parent is not None:
                    users.setdefault(id(parent), []).append(tensor)
    return users


def _walk_exception_hint(error):
    """What an exception in the learner's walk usually means."""
    if isinstance(error, KeyError):
        return ("Hint: a tensor was looked up before any gradient reached it. Walk the order as "
                "given, the output first (its gradient is ones), and skip a tensor that has no "
                "gradient (a constant such as x needs none).")
    if "NoneType" in str(error):
        return ("Hint: an op's inputs may hold None (a linear layer without a bias), and a backward "
                "returns None for an input that needs no gradient: skip both.")
    return ""


def _changed_input(order, before, label):
    for tensor, values in zip(order, before):
        if not numpy.array_equal(tensor.data, values):
            return f"it changed the value of {label(tensor)}; a walk only reads the graph."
    return None


def _as_sequence(got, what):
    """The learner's order as a list, or a message saying why it is not one."""
    if isinstance(got, (Tensor, numpy.ndarray, str, bytes, dict, set, frozenset)) or \
            not hasattr(got, "__iter__"):
        return None, f"returned {type(got).__name__}, expected {what}"
    return list(got), None


# --- 1.6: topological order ----------------------------------------------------------------------
def _order_problem(got, root, label):
    """None when ``got`` is a topological order of root's graph, outputs first, else what is wrong."""
    everything = graph_order(root)                              # inputs first
    known = {id(t) for t in everything}
    got, problem = _as_sequence(got, "a list of the graph's tensors")
    if problem:
        return problem
    for i, tensor in enumerate(got):
        if not isinstance(tensor, Tensor):
            return f"item {i} of your order is {type(tensor).__name__}, expected a tensor of the graph."
        if id(tensor) not in known:
            return f"item {i} of your order is a tensor that is not in the graph."
    places = {}
    for i, tensor in enumerate(got):
        places.setdefault(id(tensor), []).append(i)
    for tensor in reversed(everything):
        if len(places.get(id(tensor), ())) > 1:
            return (f"{label(tensor)} appears {len(places[id(tensor)])} times (items "
                    f"{', '.join(map(str, places[id(tensor)]))}). Hint: each tensor goes in once, or its "
                    f"backward would run twice: remember the tensors already visited (a set of their "
                    f"ids) and skip them when you reach them again.")
    for tensor in reversed(everything):
        if tensor.requires_grad and id(tensor) not in places:
            return (f"{label(tensor)} is missing. Hint: the order holds every tensor the output was "
                    f"computed from: follow each tensor's node.inputs down to the leaves.")
    if got[0] is not root:
        if got[-1] is root:
            return (f"the output {label(root)} comes last: this is the forward order, inputs first. "
                    f"Hint: the walk needs the reverse, the output first and every tensor before its "
                    f"inputs (reverse your list).")
        return f"the first tensor is {label(got[0])}, expected the output {label(root)}."
    for user in reversed(everything):
        for parent in (p for p in (user.node.inputs if user.node else ()) if p is not None):
            if id(parent) in places and places[id(parent)][0] < places[id(user)][0]:
                return (f"{label(parent)} (item {places[id(parent)][0]}) comes before {label(user)} "
                        f"(item {places[id(user)][0]}), which uses it: its gradient would be sent on "
                        f"before {label(user)}'s share reached it. Hint: a tensor goes only after ALL "
                        f"of its users. A depth-first search that lists a tensor when it first reaches "
                        f"it (pre-order) breaks this when a tensor has two users; list each tensor after "
                        f"its inputs instead (post-order) and reverse the list.")
    return None


@registers("1.6", "topological order",
           rule="the output first, then each tensor after every tensor that uses it, each tensor once: "
                "a depth-first walk that lists a tensor after all of its inputs (post-order), reversed.")
def check_topological_order(topological_order):
    for case, build in WALK_GRAPHS.items():
        root, names = build()
        label = _namer(names)
        order = graph_order(root)
        before = [t.data.copy() for t in order]
        got, failure = run_learners_code(lambda: topological_order(root), case, _walk_exception_hint)
        if failure:
            return WRONG, failure
        problem = _changed_input(order, before, label) or _order_problem(got, root, label)
        if problem:
            return WRONG, f"On {case}: {problem}"
    return CORRECT, (f"A valid order on all {len(WALK_GRAPHS)} graphs: the output first, each tensor "
                     f"once and after all of its users.")


# --- 1.7: the walk -------------------------------------------------------------------------------------
class _Reference(NamedTuple):
    gradients: dict      # position in graph_order -> the complete gradient (minigrad's walk)
    shares: dict         # position -> the gradients its users sent it, one per use


def _reference(build):
    """minigrad's walk on a fresh copy of the graph: each tensor's gradient, and its shares."""
    root, _ = build()
    position = {id(t): i for i, t in enumerate(graph_order(root))}
    gradients, shares = {}, {}
    for tensor, gradient in root.backward_steps():
        gradients[position[id(tensor)]] = gradient
        node = tensor.node
        if node is not None:
            for parent, sent in zip(node.inputs, node.backward(gradient, node.cache)):
                if parent is not None and sent is not None and parent.requires_grad:
                    shares.setdefault(position[id(parent)], []).append(sent)
    return _Reference(gradients, shares)


def _recorded(backward, position, calls):
    """``backward`` that also notes (position, the gradient it was given) in ``calls``."""
    def recording(gy, cache):
        calls.append((position, numpy.array(gy, dtype=numpy.float64, copy=True)))
        return backward(gy, cache)
    return recording


def _calls_problem(calls, order, reference, label):
    """What went wrong in the order or number of the backward calls the walk made, if anything."""
    counts = {}
    for position, _ in calls:
        counts[position] = counts.get(position, 0) + 1
    for position, count in counts.items():
        if count > 1:
            tensor = order[position]
            return (f"the backward of {tensor.node.name} (which made {label(tensor)}) ran {count} "
                    f"times. Hint: visit each tensor once and send its gradient on once, when it is "
                    f"complete; walk the order, not the graph.")
    users = _users(order)
    for call, (position, gy) in enumerate(calls):
        tensor, expected = order[position], reference.gradients[position]
        if same_values(gy, expected, SAME_ARITHMETIC):
            continue
        called_before = {id(order[p]) for p, _ in calls[:call]}
        late = [u for u in users.get(id(tensor), ()) if u.requires_grad and id(u) not in called_before]
        if late:
            return (f"the backward of {tensor.node.name} (which made {label(tensor)}) ran before "
                    f"{label(late[0])}, which uses {label(tensor)}, had sent its share: it sent on "
                    f"{numpy.round(gy, 6).tolist()} instead of the whole gradient "
                    f"{numpy.round(expected, 6).tolist()}. Hint: walk the tensors in the order given, "
                    f"each after all of its users.")
    return None


def _gradient_problem(tensor, got, expected, shares, label, silent_users):
    if got is None:
        silent = f" (the backward of {label(silent_users[0])}, which uses it, never ran)" if silent_users else ""
        return (f"there is no gradient for {label(tensor)}{silent}. Hint: walk the order as given, "
                f"the output first; each op's backward sends its output's gradient to its inputs, "
                f"which come later in the order.")
    if not isinstance(got, (numpy.ndarray, numpy.generic)):
        return f"the gradient of {label(tensor)} is {type(got).__name__}, expected a NumPy array."
    if got.dtype != tensor.dtype:
        return f"the gradient of {label(tensor)} has dtype {got.dtype}, expected {tensor.dtype} (the tensor's)."
    problem = compare(f"the gradient of {label(tensor)}", got, expected, 1e-10)
    if problem is None:
        return None
    if len(shares) > 1 and any(same_values(numpy.asarray(got), share, SAME_ARITHMETIC) for share in shares):
        worst = numpy.unravel_index(numpy.argmax(numpy.abs(got - expected)), numpy.shape(got))
        where = f"[{', '.join(str(int(i)) for i in worst)}]" if worst else ""
        return (f"the gradient of {label(tensor)}{where} is {float(got[worst]):+.6g}, expected "
                f"{float(expected[worst]):+.6g}: {label(tensor)} is used {len(shares)} times, and "
                f"yours is what one use sent. Hint: a tensor used more than once gets the SUM of what "
                f"its users send: add to the gradient it has so far, never overwrite it.")
    return problem


def _walk_problem(walk, case, build):
    reference = _reference(build)                               # computed before the learner runs
    root, names = build()
    label = _namer(names)
    order = graph_order(root)
    before = [t.data.copy() for t in order]
    calls = []
    for position, tensor in enumerate(order):
        if tensor.node is not None:
            tensor.node.backward = _recorded(tensor.node.backward, position, calls)
    got, failure = run_learners_code(lambda: walk(root, list(reversed(order))), case, _walk_exception_hint)
    if failure:
        return failure
    if not isinstance(got, dict):
        return f"On {case}: returned {type(got).__name__}, expected a dict {{tensor: gradient}}."
    problem = _changed_input(order, before, label) or _calls_problem(calls, order, reference, label)
    if problem:
        return f"On {case}: {problem}"
    keyed_by_id = got and all(isinstance(key, int) for key in got)
    ran = {id(order[position]) for position, _ in calls}
    users = _users(order)
    for position in sorted(reference.gradients, reverse=True):        # outputs first
        tensor = order[position]
        mine = got.get(id(tensor)) if keyed_by_id else got.get(tensor)
        silent_users = [u for u in users.get(id(tensor), ()) if id(u) not in ran]
        problem = _gradient_problem(tensor, mine, reference.gradients[position],
                                    reference.shares.get(position, []), label, silent_users)
        if problem:
            return f"On {case}: {problem}"
    if keyed_by_id:
        return f"On {case}: the keys of your dict are numbers; use the tensors themselves as keys."
    return None


@registers("1.7", "backward walk",
           rule="go through the order from the output (its gradient is ones): for each tensor an op made, "
                "run that op's backward once with the tensor's whole gradient and ADD what it returns to "
                "each input's gradient (a tensor used twice gets the sum); skip None inputs and gradients.")
def check_backward_walk(backward_walk):
    for case, build in WALK_GRAPHS.items():
        problem = _walk_problem(backward_walk, case, build)
        if problem:
            return WRONG, problem
    return CORRECT, (f"Your walk gives minigrad's gradients on all {len(WALK_GRAPHS)} graphs, running "
                     f"each op's backward once, with its whole gradient.")
