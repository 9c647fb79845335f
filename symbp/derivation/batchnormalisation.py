"""A batch-normalised layer, forward and backward (section "batch_normalisation"): each unit's statistics over
the batch, and the chain rule through them, by SymPy.

The layer computes, for each sample n of a batch of N, u_nj = sum_i w_ij a_i; then over the batch, unit by unit,
mu_j = (1/N) sum_n' u_n'j, sigma^2_j = (1/N) sum_n' (u_n'j - mu_j)^2, sigma_hat_j = sqrt(sigma^2_j + epsilon),
x_hat_nj = (u_nj - mu_j) / sigma_hat_j and z_nj = gamma_j x_hat_nj + beta_j. The point of the section is the
coupling: u_nj reaches the loss through x_hat_n'j of every sample n' of the batch, since each of them holds mu_j and
sigma^2_j. The loss of the batch no longer splits into one loss per sample, so an error term of a sample here is
its share of the batch loss's derivative: sign (1/c) dL/dq_n, c the loss's factor in front of its sum over samples
(1/N for a mean), which is sign dl_n/dq_n wherever the loss still splits (above the layer). SymPy differentiates
each definition on a batch of symbolic size N (the statistics standing as symbols of their own while it does),
the steps put the pieces together, and the last line is the literature's compact form, which SymPy proves equal
to its own before it is shown. ``symbp.checks.verify`` evaluates every line on a batch.

The section reads the layer's index form over the batch (``batch_statistics``, ``batch_normalised``); the sample
indices are n (the sample in focus) and n' (summed), the notation's own sample letter.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.coefficients import constants_out, times, vanishes
from symbp.derivation.indexform import route_chains
from symbp.derivation.model import Reason, Section, chain, fact, product, step
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import parameter_routes
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import LOSS, N_SAMPLES, SAMPLE_LOSS, AtSample, Partial, unit_index


def batch_normalised_layers(net: Network) -> tuple[int, ...]:
    """The layers whose kind normalises over the batch (it states ``batch_statistics``), first to last."""
    return tuple(layer.index for layer in net.layers if hasattr(layer, "batch_statistics"))


def _in_batch(expr: sp.Expr) -> sp.Expr:
    """``expr`` with SymPy's "if sample n is in the batch" cases resolved: n is one of the batch's samples."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0].expr)


def _as_symbols(expr: sp.Expr, statistics) -> tuple[sp.Expr, dict]:
    """``expr`` with each statistic of the unit as a plain symbol, so that SymPy can differentiate with respect to
    it; and the way back."""
    plain = {statistic: sp.Symbol(f"_{statistic.base.label.name}", real=True) for statistic in statistics}
    return expr.xreplace(plain), {symbol: statistic for statistic, symbol in plain.items()}


def _over(numerator: sp.Expr, denominator: sp.Expr) -> sp.Expr:
    """numerator / denominator as one fraction, as the texts write it."""
    return sp.Mul(numerator, sp.Pow(denominator, -1, evaluate=False), evaluate=False)


def _times(coefficient: sp.Expr, derivative: sp.Expr) -> sp.Expr:
    """``times`` keeping a coefficient that holds a sum whole, as this section's vanishing facts are written."""
    return times(coefficient, derivative, keep_sums_whole=True)


def batch_normalisation_section(net: Network, layer_index: int, sign: int) -> Section:
    layer = net.layer(layer_index)
    n, other = q.sample_index(), unit_index(0, "sample'")
    j = unit_index(layer_index, "cur")
    u, x_hat = q.weighted(layer_index), q.normalised(layer_index)
    g, error_u = q.normalised_delta(layer_index), q.weighted_delta(layer_index)
    (mean, mean_def), (variance, variance_def), (scale, scale_def) = layer.batch_statistics(j, other)
    stabiliser = q.layer_statistic("stabiliser", layer_index)
    z_j = q.pre(layer_index)[j]
    prefix = f"batchnorm{layer_index}"

    weighted_j = layer.index_input_route(j, unit_index(layer_index - 1, "prev"))[2]
    chains = [
        chain(f"{prefix}.weighted", u[j], step(weighted_j), relation=":="),
        chain(f"{prefix}.mean", mean, step(mean_def), relation=":="),
        chain(f"{prefix}.variance", variance, step(variance_def), relation=":="),
        chain(f"{prefix}.scale", scale, step(scale_def), relation=":="),
        chain(f"{prefix}.normalised", x_hat[n, j], step(layer.batch_normalised(n, j)), relation=":="),
        chain(f"{prefix}.pre", z_j, step(layer.index_preactivation(j))),
    ]

    # -- the error term at the normalised value, on each sample: only its own z_j holds x_hat_j
    dz_dx = sp.diff(layer.index_preactivation(j), x_hat[j])
    chains.append(chain(
        f"{prefix}.normalised_delta", g[j],
        step(sign * Partial(SAMPLE_LOSS, x_hat[j]), Reason("definition")),
        step(product(sign, Partial(SAMPLE_LOSS, z_j), Partial(z_j, x_hat[j])), Reason("chain_rule")),
        step(q.delta(layer_index)[j] * dz_dx, Reason("delta"), Reason("substitute", (fact(Partial(z_j, x_hat[j]),
                                                                                            dz_dx),))),
        relation=":=",
    ))

    # -- the statistics' derivatives with respect to one sample's weighted sum, each by SymPy from its definition
    d_mean = _in_batch(sp.diff(mean_def, u[n, j]).doit())
    chains.append(chain(f"{prefix}.mean_du", Partial(mean, u[n, j]),
                        step(Partial(mean_def, u[n, j]), Reason("definition")), step(d_mean, Reason("only_term"))))
    plain_variance, back = _as_symbols(variance_def, (mean,))
    plain_mean = next(iter(back))
    direct = sp.factor_terms(_in_batch(sp.diff(plain_variance, u[n, j]).doit()).xreplace(back))
    through_mean = constants_out(sp.diff(plain_variance, plain_mean).xreplace(back), other)
    centred_sum = sp.Sum(u[other, j] - mean, (other, 1, N_SAMPLES))
    chains.append(chain(
        f"{prefix}.variance_du", Partial(variance, u[n, j]),
        step(direct + _times(through_mean, Partial(mean, u[n, j])), Reason("chain_rule")),
        step(direct + _times(through_mean, d_mean), Reason("substitute", (fact(Partial(mean, u[n, j]), d_mean),))),
        step(direct, Reason("fact", (fact(centred_sum, 0),))),
    ))
    d_variance = direct

    # -- x_hat_n'j holds u_nj only when n' = n, and every x_hat_n'j holds mu_j and sigma^2_j
    written = layer.batch_normalised(other, j).xreplace({scale: scale_def})
    plain_x, back_x = _as_symbols(written, (mean, variance))
    plain_x = plain_x.xreplace({stabiliser: sp.Symbol("_stabiliser", positive=True)})
    back_x[sp.Symbol("_stabiliser", positive=True)] = stabiliser
    by_symbol = {statistic: symbol for symbol, statistic in back_x.items()}
    to_scale = {sp.sqrt(variance + stabiliser): scale}

    def in_scale(expr):
        return sp.powsimp(expr.xreplace(back_x)).subs(to_scale)

    own = in_scale(sp.diff(plain_x, u[other, j])) * sp.KroneckerDelta(n, other)
    by_mean = sp.factor_terms(in_scale(sp.diff(plain_x, by_symbol[mean])))
    by_variance = sp.factor_terms(in_scale(sp.diff(plain_x, by_symbol[variance])))
    substituted = own + by_mean * d_mean + by_variance * d_variance
    to_normalised = {u[other, j]: mean + scale * x_hat[other, j], u[n, j]: mean + scale * x_hat[n, j]}
    in_normalised = sp.expand(sp.expand(substituted).xreplace(to_normalised))
    factored = _over(sp.expand(in_normalised * N_SAMPLES * scale), sp.Mul(N_SAMPLES, scale, evaluate=False))
    if not vanishes(factored.doit() - substituted.xreplace(to_normalised)):
        raise ArithmeticError(f"{factored} is not SymPy's {substituted}")
    chains.append(chain(
        f"{prefix}.normalised_du", Partial(x_hat[other, j], u[n, j]),
        step(own + _times(by_mean, Partial(mean, u[n, j])) + _times(by_variance, Partial(variance, u[n, j])),
             Reason("chain_rule")),
        step(substituted, Reason("substitute", (fact(Partial(mean, u[n, j]), d_mean),
                                                fact(Partial(variance, u[n, j]), d_variance)))),
        step(factored, Reason("definition", (fact(x_hat[other, j], layer.batch_normalised(other, j)),)),
             Reason("factor")),
    ))

    # -- the error term at the weighted sums: u_nj reaches the loss through x_hat_n'j of every sample n'
    summand = sp.Mul(g[other, j], factored, evaluate=False)
    derived = _picked(sp.Sum(sp.expand(g[other, j] * factored.doit()), (other, 1, N_SAMPLES)), n, other)
    compact = _over(N_SAMPLES * g[n, j] - sp.Sum(g[other, j], (other, 1, N_SAMPLES))
                    - x_hat[n, j] * sp.Sum(g[other, j] * x_hat[other, j], (other, 1, N_SAMPLES)),
                    sp.Mul(N_SAMPLES, scale, evaluate=False))
    if sp.simplify(sp.expand(derived - compact.doit())) != 0:
        raise ArithmeticError(f"the compact form {compact} is not SymPy's {derived}")
    chains.append(chain(
        f"{prefix}.weighted_delta", error_u[n, j],
        step(sign * Partial(SAMPLE_LOSS, u[n, j]), Reason("definition")),
        step(sign * sp.Sum(product(Partial(SAMPLE_LOSS, x_hat[other, j]), Partial(x_hat[other, j], u[n, j])),
                           (other, 1, N_SAMPLES)), Reason("total_derivative")),
        step(sp.Sum(summand, (other, 1, N_SAMPLES)), Reason("substitute")),
        step(derived, Reason("sum_rule")),
        step(compact, Reason("factor")),
        relation=":=", boxed=True,
    ))

    # -- the parameters that enter the weighted sums (the weights), through their error term, on each sample
    through_u = [route for route in parameter_routes(layer) if route.through != z_j]
    chains += route_chains(prefix, through_u, sign)

    # -- gamma_j and beta_j are shared by the batch: their gradients are sums over it
    coefficient = net.sample_coefficient
    for role, quantity, factor in (("gain", q.gain(layer_index)[j], x_hat[j]),
                                   ("shift", q.shift(layer_index)[j], sp.Integer(1))):
        per_sample = sp.Sum(AtSample(Partial(SAMPLE_LOSS, quantity), n), (n, 1, N_SAMPLES))
        in_deltas = sp.Sum(AtSample(product(q.delta(layer_index)[j], factor), n), (n, 1, N_SAMPLES))
        chains.append(chain(
            f"{prefix}.{role}_sum", Partial(LOSS, quantity),
            step(coefficient * per_sample, Reason("sum_over_samples")),
            step(sign * coefficient * in_deltas, Reason("delta_rule")),
            scope="batch",
        ))
    return Section("batch_normalisation", tuple(chains), layer_index, facts={
        "epsilon": layer.epsilon, "momentum": layer.momentum, "units": layer.units, "first": layer_index == 1,
        "keep": 1 - layer.momentum})


def _picked(total: sp.Sum, n, other) -> sp.Expr:
    """A sum over n' whose terms hold the bracket [n = n']: the bracketed terms picked out (n' = n), the others
    summed, each sum with its constant factors in front."""
    (index, low, high), = total.limits
    kept = sp.Integer(0)
    for term in sp.Add.make_args(total.function):
        if term.has(sp.KroneckerDelta):
            kept += term.xreplace({index: n}).replace(lambda e: isinstance(e, sp.KroneckerDelta), lambda e: 1)
            continue
        constant, rest = term.as_independent(index, as_Add=False)
        kept += constant * sp.Sum(rest, (index, low, high))
    return kept
