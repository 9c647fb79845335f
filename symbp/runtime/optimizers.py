"""The optimizers' update rules, each one formula over plain arithmetic.

The same functions update NumPy arrays in train() and build the SymPy update rules that the
derivation documents print (symbp.derivation.updates calls them with symbols), so the rule a
student reads is the rule the trainer runs. sqrt is an argument where a rule needs one: NumPy's
for arrays, SymPy's for symbols.
"""

import math

import numpy as np

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


def adam_parameter(parameter, rate, moment, second, epsilon, sqrt=np.sqrt):
    """adam: the step, with epsilon added to the root of the second moment (Keras's placement)."""
    return parameter - rate * moment / (sqrt(second) + epsilon)


def optimizer_update(optimizer, learning_rate, momentum, beta1, beta2, epsilon):
    """update(params, grads, step): applies step number `step` (from 1) of the optimizer to the dict
    params, replacing its arrays; grads are plain gradients. Velocities and moments live in the closure."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown {optimizer!r}; choose gd, sgd, momentum or adam")
    # The running averages start at zero: a scalar 0 stands for arrays of zeros of each parameter's shape and dtype.
    velocity, second = {}, {}

    def gradient_step(params, grads, step):
        for name, gradient in grads.items():
            params[name] = descent(params[name], gradient, learning_rate)

    def momentum_step(params, grads, step):
        for name, gradient in grads.items():
            velocity[name] = momentum_velocity(velocity.get(name, 0.0), gradient, learning_rate, momentum)
            params[name] = momentum_parameter(params[name], velocity[name])

    def adam_step(params, grads, step):
        rate = adam_rate(learning_rate, beta1, beta2, step)
        for name, gradient in grads.items():
            velocity[name] = adam_moment(velocity.get(name, 0.0), gradient, beta1)
            second[name] = adam_second_moment(second.get(name, 0.0), gradient, beta2)
            params[name] = adam_parameter(params[name], rate, velocity[name], second[name], epsilon)

    return {"momentum": momentum_step, "adam": adam_step}.get(optimizer, gradient_step)
