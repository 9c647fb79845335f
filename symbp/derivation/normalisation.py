"""A normalised layer, forward and backward (section "normalisation"): the per-sample statistics that the layer's
kind defines, and the chain rule through them, by SymPy.

The layer computes u_j = sum_i w_ij a_i, then over its H units mu = (1/H) sum_k u_k, sigma^2 = (1/H) sum_k
(u_k - mu)^2, sigma_hat = sqrt(sigma^2 + epsilon), x_hat_j = (u_j - mu) / sigma_hat and z_j = gamma_j x_hat_j +
beta_j. The point of the section is the coupling: u_j reaches the loss through every x_hat_k of its sample, since
each of them holds mu and sigma^2. SymPy differentiates each definition (the statistics standing as symbols of
their own while it does), the steps put the pieces together, and the last line is the literature's compact form,
which SymPy proves equal to its own before it is shown. ``symbp.checks.verify`` evaluates every line.

What the section reads of the layer is its kind's index form (``index_statistics``, ``index_normalised``,
``index_routes``, ``index_input_route``): a kind that normalises otherwise states other definitions.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.coefficients import constants_out, times, vanishes
from symbp.derivation.indexform import route_chains
from symbp.derivation.model import Reason, Section, chain, fact, product, step
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import parameter_routes
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import SAMPLE_LOSS, Partial, unit_index


def normalised_layers(net: Network) -> tuple[int, ...]:
    """The layers whose kind normalises its weighted sums (it states ``index_statistics``), first to last."""
    return tuple(layer.index for layer in net.layers if hasattr(layer, "index_statistics"))


def _resolved(expr: sp.Expr, j, units: int) -> sp.Expr:
    """``expr`` with SymPy's "if unit j exists" cases resolved: j is one of the layer's units 1..units."""
    def first_true(piecewise: sp.Piecewise) -> sp.Expr:
        for value, condition in piecewise.args:
            if all(bool(condition.subs(j, unit)) for unit in range(1, units + 1)):
                return value
        return piecewise

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), first_true)


def _as_symbols(expr: sp.Expr, statistics) -> tuple[sp.Expr, dict]:
    """``expr`` with each statistic (one number per sample) as a plain symbol, so that SymPy can differentiate
    with respect to it; and the way back."""
    plain = {statistic: sp.Symbol(f"_{statistic.label.name}", real=True) for statistic in statistics}
    return expr.xreplace(plain), {symbol: statistic for statistic, symbol in plain.items()}


def normalisation_section(net: Network, layer_index: int, sign: int) -> Section:
    layer = net.layer(layer_index)
    units = layer.units
    j, k = unit_index(layer_index, "cur"), unit_index(layer_index, "cur'")
    u, x_hat = q.weighted(layer_index), q.normalised(layer_index)
    g, error_u = q.normalised_delta(layer_index), q.weighted_delta(layer_index)
    (mean, mean_def), (variance, variance_def), (scale, scale_def) = layer.index_statistics(k)
    stabiliser = q.layer_statistic("stabiliser", layer_index)
    z_j = q.pre(layer_index)[j]
    prefix = f"norm{layer_index}"

    weighted_j, *_ = layer.index_input_route(j, unit_index(layer_index - 1, "prev"))[2:]
    chains = [
        chain(f"{prefix}.weighted", u[j], step(weighted_j), relation=":="),
        chain(f"{prefix}.mean", mean, step(mean_def), relation=":="),
        chain(f"{prefix}.variance", variance, step(variance_def), relation=":="),
        chain(f"{prefix}.scale", scale, step(scale_def), relation=":="),
        chain(f"{prefix}.normalised", x_hat[j], step(layer.index_normalised(j)), relation=":="),
        chain(f"{prefix}.pre", z_j, step(layer.index_preactivation(j))),
    ]

    # -- the error term at the normalised values: only z_j holds x_hat_j
    dz_dx = sp.diff(layer.index_preactivation(j), x_hat[j])
    chains.append(chain(
        f"{prefix}.normalised_delta", g[j],
        step(sign * Partial(SAMPLE_LOSS, x_hat[j]), Reason("definition")),
        step(product(sign, Partial(SAMPLE_LOSS, z_j), Partial(z_j, x_hat[j])), Reason("chain_rule")),
        step(q.delta(layer_index)[j] * dz_dx, Reason("delta"), Reason("substitute", (fact(Partial(z_j, x_hat[j]),
                                                                                            dz_dx),))),
        relation=":=",
    ))

    # -- the statistics' derivatives, each by SymPy from its definition
    d_mean = _resolved(sp.diff(mean_def, u[j]).doit(), j, units)
    chains.append(chain(f"{prefix}.mean_du", Partial(mean, u[j]),
                        step(Partial(mean_def, u[j]), Reason("definition")), step(d_mean, Reason("only_term"))))
    plain_variance, back = _as_symbols(variance_def, (mean,))
    plain_mean = next(iter(back))
    direct = sp.factor_terms(_resolved(sp.diff(plain_variance, u[j]).doit(), j, units).xreplace(back))
    through_mean = constants_out(sp.diff(plain_variance, plain_mean).xreplace(back), k)  # a sum over k, kept whole
    centred_sum = sp.Sum(u[k] - mean, (k, 1, units))
    chains.append(chain(
        f"{prefix}.variance_du", Partial(variance, u[j]),
        step(direct + times(through_mean, Partial(mean, u[j])), Reason("chain_rule")),
        step(direct + through_mean * d_mean, Reason("substitute", (fact(Partial(mean, u[j]), d_mean),))),
        step(direct, Reason("fact", (fact(centred_sum, 0),))),
    ))
    d_variance = direct

    # -- x_hat_k holds u_j only when k = j, and every x_hat_k holds mu and sigma^2
    written = layer.index_normalised(k).xreplace({scale: scale_def})
    plain_x, back_x = _as_symbols(written, (mean, variance, stabiliser))
    by_symbol = {statistic: symbol for symbol, statistic in back_x.items()}
    to_scale = {sp.sqrt(variance + stabiliser): scale}

    def in_scale(expr):
        return sp.powsimp(expr.xreplace(back_x)).subs(to_scale)

    own = in_scale(sp.diff(plain_x, u[k])) * sp.KroneckerDelta(j, k)
    by_mean = sp.factor_terms(in_scale(sp.diff(plain_x, by_symbol[mean])))
    by_variance = sp.factor_terms(in_scale(sp.diff(plain_x, by_symbol[variance])))
    substituted = own + by_mean * d_mean + by_variance * d_variance
    in_normalised = sp.expand(substituted).xreplace({u[k]: mean + scale * x_hat[k], u[j]: mean + scale * x_hat[j]})
    in_normalised = sp.expand(in_normalised)
    factored = sp.Mul(sp.expand(in_normalised * units * scale),
                      sp.Pow(sp.Mul(units, scale, evaluate=False), -1, evaluate=False), evaluate=False)
    if not vanishes(factored.doit() - substituted.xreplace({u[k]: mean + scale * x_hat[k],
                                                            u[j]: mean + scale * x_hat[j]})):
        raise ArithmeticError(f"{factored} is not SymPy's {substituted}")
    x_def = fact(x_hat[k], layer.index_normalised(k))
    chains.append(chain(
        f"{prefix}.normalised_du", Partial(x_hat[k], u[j]),
        step(own + times(by_mean, Partial(mean, u[j])) + times(by_variance, Partial(variance, u[j])),
             Reason("chain_rule")),
        step(substituted, Reason("substitute", (fact(Partial(mean, u[j]), d_mean),
                                                fact(Partial(variance, u[j]), d_variance)))),
        step(factored, Reason("definition", (x_def,)), Reason("factor")),
    ))

    # -- the error term at the weighted sums: u_j reaches the loss through every x_hat_k of its sample
    summand = sp.Mul(g[k], factored, evaluate=False)
    derived = _picked(sp.Sum(sp.expand(g[k] * factored.doit()), (k, 1, units)), j, units)
    compact = sp.Mul(units * g[j] - sp.Sum(g[k], (k, 1, units)) - x_hat[j] * sp.Sum(g[k] * x_hat[k], (k, 1, units)),
                     sp.Pow(sp.Mul(units, scale, evaluate=False), -1, evaluate=False), evaluate=False)
    if not vanishes((derived - compact.doit()).doit()):
        raise ArithmeticError(f"the compact form {compact} is not SymPy's {derived}")
    chains.append(chain(
        f"{prefix}.weighted_delta", error_u[j],
        step(sign * Partial(SAMPLE_LOSS, u[j]), Reason("definition")),
        step(sign * sp.Sum(product(Partial(SAMPLE_LOSS, x_hat[k]), Partial(x_hat[k], u[j])), (k, 1, units)),
             Reason("total_derivative")),
        step(sp.Sum(summand, (k, 1, units)), Reason("substitute")),
        step(derived, Reason("sum_rule")),
        step(compact, Reason("factor")),
        relation=":=", boxed=True,
    ))

    # -- the parameters that enter the weighted sums (the weights), through their error term
    through_u = [route for route in parameter_routes(layer) if route.through != z_j]
    chains += route_chains(prefix, through_u, sign)
    return Section("normalisation", tuple(chains), layer_index, facts={
        "epsilon": layer.epsilon, "units": units, "first": layer_index == 1})


def _picked(total: sp.Sum, j, units: int) -> sp.Expr:
    """A sum over k whose terms hold the bracket [j = k]: the bracketed terms picked out (k = j), the others
    summed, each sum with its constant factors in front."""
    (index, low, high), = total.limits
    kept = sp.Integer(0)
    for term in sp.Add.make_args(total.function):
        if term.has(sp.KroneckerDelta):
            kept += _resolved(sp.Sum(term, (index, low, high)).doit(), j, units)
            continue
        constant, rest = term.as_independent(index, as_Add=False)
        kept += constant * sp.Sum(rest, (index, low, high))
    return kept
