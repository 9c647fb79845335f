"""The optimizers' update rules, each one formula over plain arithmetic.

The same functions update the arrays in the NumPy module's train() and the array-API module's,
and build the SymPy update rules that the derivation documents print (symbp.derivation.updates
calls them with symbols), so the rule a student reads is the rule the trainer runs. They use
nothing but arithmetic: sqrt is an argument where a rule needs one (NumPy's, the array library's
or SymPy's).
"""

import math

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")


def descent(parameter, gradient, learning_rate):
    """gd and sgd: a step against the gradient."""
    return parameter - learning_rate * gradient


def momentum_velocity(velocity, gradient, learning_rate, momentum):
    """momentum: the velocity keeps a fraction of itself and steps against the gradient."""
    return momentum * velocity - learning_rate * gradient


def momentum_parameter(parameter, velocity):
    """momentum: the parameter moves by the updated velocity."""
    return parameter + velocity


def adam_moment(moment, gradient, beta1):
    """adam: the running mean of the gradient."""
    return moment + (1 - beta1) * (gradient - moment)


def adam_second_moment(second, gradient, beta2):
    """adam: the running mean of the squared gradient."""
    return second + (1 - beta2) * (gradient * gradient - second)


def adam_rate(learning_rate, beta1, beta2, step, sqrt=math.sqrt):
    """adam: the learning rate with both moments' bias corrections folded in (Kingma and Ba, section 2)."""
    return learning_rate * sqrt(1 - beta2**step) / (1 - beta1**step)


def adam_parameter(parameter, rate, moment, second, epsilon, sqrt):
    """adam: the step, with epsilon added to the root of the second moment (Keras's placement)."""
    return parameter - rate * moment / (sqrt(second) + epsilon)
