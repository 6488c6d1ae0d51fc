"""Lesson 1's backward-walk exercises (1.6 the topological order, 1.7 the walk): the right
answers are accepted, a missing one is "not implemented yet", and each usual mistake is
rejected with a message that names it (see course/lesson1_walk.py)."""
import numpy

from course import check, lesson1_walk

from exercise_tests import standard_tests


def _inputs(tensor):
    return [] if tensor.node is None else [p for p in tensor.node.inputs if p is not None]


def reverse_post_order(root):
    order, visited = [], set()

    def visit(tensor):
        if id(tensor) in visited:
            return
        visited.add(id(tensor))
        for parent in _inputs(tensor):
            visit(parent)
        order.append(tensor)
    visit(root)
    return order[::-1]


def kahn(root):
    """Another right answer: count each tensor's users, release a tensor when all have gone."""
    everything, stack, seen = [], [root], {id(root)}
    while stack:
        tensor = stack.pop()
        everything.append(tensor)
        for parent in _inputs(tensor):
            if id(parent) not in seen:
                seen.add(id(parent))
                stack.append(parent)
    waiting = {id(t): 0 for t in everything}
    for tensor in everything:
        for parent in _inputs(tensor):
            waiting[id(parent)] += 1
    ready, order = [root], []
    while ready:
        tensor = ready.pop()
        order.append(tensor)
        for parent in _inputs(tensor):
            waiting[id(parent)] -= 1
            if waiting[id(parent)] == 0:
                ready.append(parent)
    return order


def pre_order(root):
    """Depth-first, each tensor listed when first reached: not topological."""
    order, visited = [], set()

    def visit(tensor):
        if id(tensor) in visited:
            return
        visited.add(id(tensor))
        order.append(tensor)
        for parent in _inputs(tensor):
            visit(parent)
    visit(root)
    return order


def no_visited_set(root):
    order = []

    def visit(tensor):
        for parent in _inputs(tensor):
            visit(parent)
        order.append(tensor)
    visit(root)
    return order[::-1]


def walk(root, order, accumulate=True):
    gradients = {root: numpy.ones_like(root.data)}
    for tensor in order:
        if tensor not in gradients or tensor.node is None:
            continue
        node = tensor.node
        for parent, g in zip(node.inputs, node.backward(gradients[tensor], node.cache)):
            if parent is None or g is None or not parent.requires_grad:
                continue
            gradients[parent] = gradients[parent] + g if accumulate and parent in gradients else g
    return gradients


def walk_reversed(root, order):
    return walk(root, list(reversed(order)))


def walk_reversed_strict(root, order):
    """Inputs first, looking each gradient up: the first leaf has none yet."""
    gradients = {root: numpy.ones_like(root.data)}
    for tensor in reversed(order):
        g = gradients[tensor]
        if tensor.node is not None:
            for parent, sent in zip(tensor.node.inputs, tensor.node.backward(g, tensor.node.cache)):
                if parent is not None and sent is not None:
                    gradients[parent] = gradients.get(parent, 0) + sent
    return gradients


def walk_own_pre_order(root, order):
    """Ignores the order it is given and walks its own depth-first pre-order."""
    return walk(root, pre_order(root))


def walk_every_path(root, order):
    """Recursion from the output, sending a tensor's whole gradient so far each time it is reached."""
    gradients = {root: numpy.ones_like(root.data)}

    def visit(tensor):
        if tensor.node is None:
            return
        node = tensor.node
        for parent, g in zip(node.inputs, node.backward(gradients[tensor], node.cache)):
            if parent is None or g is None or not parent.requires_grad:
                continue
            gradients[parent] = gradients[parent] + g if parent in gradients else g
            visit(parent)
    visit(root)
    return gradients


def walk_without_skipping_none(root, order):
    gradients = {root: numpy.ones_like(root.data)}
    for tensor in order:
        if tensor in gradients and tensor.node is not None:
            node = tensor.node
            for parent, g in zip(node.inputs, node.backward(gradients[tensor], node.cache)):
                if parent.requires_grad:
                    gradients[parent] = gradients[parent] + g if parent in gradients else g
    return gradients


def walk_in_place(root, order):
    """Right gradients, but it adds into the array it received: the first share of a tensor
    used twice is the array its user's backward returned, which may be a cached array."""
    gradients = walk(root, order)
    for tensor in order:
        tensor.data = tensor.data * 1.0 + (0.5 if tensor is root else 0.0)
    return gradients


def walk_keyed_by_id(root, order):
    return {id(tensor): g for tensor, g in walk(root, order).items()}


RIGHT = {
    "1.6": reverse_post_order,
    "1.7": walk,
}
CHAIN, TWICE, DIAMOND = (r"On a chain, L = sum\(exp\(tanh\(2 x\)\)\)", r"On h used twice, L = sum\(h \* h\)",
                         r"On a diamond, a = 2 x feeds e = exp\(a\) and m = a \* e")
WRONG = {
    "1.6": [("depth-first pre-order, not topological", pre_order,
             DIAMOND + r".*: a \(item \d\) comes before e \(item \d\), which uses it.*ALL of its users.*pre-order"),
            ("a tensor visited twice (no visited set)", no_visited_set,
             TWICE + r".*: h appears 2 times \(items \d+, \d+\).*each tensor goes in once"),
            ("reversed: inputs first", lambda root: reverse_post_order(root)[::-1],
             CHAIN + r": the output L comes last: this is the forward order, inputs first"),
            ("the leaves left out", lambda root: [t for t in reverse_post_order(root) if t.node is not None],
             CHAIN + r": x is missing"),
            ("a set, which has no order", lambda root: set(reverse_post_order(root)),
             CHAIN + r": returned set, expected a list of the graph's tensors"),
            ("names instead of tensors", lambda root: [str(t.shape) for t in reverse_post_order(root)],
             CHAIN + r": item 0 of your order is str, expected a tensor of the graph")],
    "1.7": [("overwriting instead of accumulating", lambda root, order: walk(root, order, accumulate=False),
             TWICE + r".*: the gradient of h\[1\] is -1.75, expected -3.5: h is used 2 times, and yours is "
                     r"what one use sent.*SUM"),
            ("walking the order reversed, skipping what has no gradient yet", walk_reversed,
             CHAIN + r": there is no gradient for b \(the backward of c, which uses it, never ran\).*the output first"),
            ("walking the order reversed, looking gradients up", walk_reversed_strict,
             CHAIN + r" it raised KeyError.*looked up before any gradient reached it"),
            ("its own depth-first pre-order", walk_own_pre_order,
             DIAMOND + r".*: the backward of mul \(which made a\) ran before e, which uses a, had sent its share"),
            ("a node visited twice (every path)", walk_every_path,
             TWICE + r".*: the backward of add \(which made h\) ran 2 times.*visit each tensor once"),
            ("None inputs not skipped", walk_without_skipping_none,
             r"On a linear layer without a bias.* it raised AttributeError.*may hold None"),
            ("changing the graph", walk_in_place, CHAIN + r": it changed the value of L"),
            ("keyed by id", walk_keyed_by_id, CHAIN + r": the keys of your dict are numbers")],
}

test_the_right_answer_is_accepted, test_a_missing_exercise_is_not_implemented_yet, \
    test_a_planted_mistake_is_rejected_naming_the_case = standard_tests(RIGHT, WRONG)


def test_another_valid_order_is_accepted():
    assert check.verdict("1.6", kahn).correct


def test_the_walk_is_checked_with_a_valid_order_of_its_own_graph():
    """1.7 does not depend on 1.6: the checker hands the walk minigrad's own order."""
    seen = []

    def spy(root, order):
        seen.append(lesson1_walk._order_problem(order, root, lambda t: "?"))
        return walk(root, order)
    assert check.verdict("1.7", spy).correct
    assert seen == [None] * len(lesson1_walk.WALK_GRAPHS)


def test_the_graphs_hold_what_the_mistakes_need():
    """A diamond (two users reached by paths of different lengths), a tensor used twice by one
    op, a broadcast input and an absent (None) input are among the cases."""
    root, names = lesson1_walk._diamond()
    assert [t for t in pre_order(root)].index(names["a"]) < pre_order(root).index(names["e"])
    root, names = lesson1_walk._used_twice()
    assert names["h*h"].node.inputs == (names["h"], names["h"])
    root, names = lesson1_walk._broadcasting()
    assert names["w"].shape == (3,) and names["z"].shape == (4, 3)
    root, names = lesson1_walk._no_bias()
    assert names["y"].node.inputs[2] is None
