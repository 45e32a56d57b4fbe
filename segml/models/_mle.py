"""Maximum likelihood on log-parameters: L-BFGS-B with an analytic gradient, then Newton.

Both CLV models are fitted the way lifetimes fits them: the objective is the mean
negative log-likelihood over customers plus ``penalizer_coef * sum(params ** 2)``,
minimised over the logarithms of the (positive) parameters. L-BFGS-B gets close fast;
a few Newton steps with a Hessian from central differences of the analytic gradient
then land on the optimum to machine precision, so two engines that both converge
agree to far better than 1e-6. The same Hessian gives the standard errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A parameter whose logarithm leaves this range ran off to 0 or infinity: the data do
# not identify it (e.g. BG/NBD with no visible drop-out), whatever the optimiser says.
MAX_ABS_LOG_PARAM = 20.0
# Mean negative log-likelihood gradient below which the optimum is accepted.
_GRADIENT_TOLERANCE = 1e-6


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product of two vectors without BLAS.

    BLAS ``ddot`` splits long vectors over threads; on a busy machine those threads
    stall and one likelihood evaluation takes 100x longer. einsum's own loop does not.
    """
    return np.einsum("i,i->", a, b)


@dataclass(frozen=True)
class MLEResult:
    """Outcome of one maximum-likelihood fit (log-parameters and their Hessian)."""

    log_params: np.ndarray
    hessian: np.ndarray
    objective: float
    converged: bool
    message: str
    n_iterations: int


def start_log_params(start, names, time_names, scale) -> np.ndarray:
    """Log-parameters in rescaled time from parameters in the data's time unit (warm start)."""
    values = np.array([float(v) for v in start], dtype=float)
    for k, name in enumerate(names):
        if name in time_names:
            values[k] *= scale
    return np.log(values)


def numerical_hessian(gradient: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Hessian by central differences of an analytic gradient, symmetrised."""
    n = len(x)
    hessian = np.empty((n, n))
    for i in range(n):
        step = 1e-5 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        hessian[:, i] = (gradient(up) - gradient(down)) / (2 * step)
    return (hessian + hessian.T) / 2


def minimize_log_params(
    objective_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    *,
    max_iter: int,
    hessian_guess: np.ndarray | None = None,
) -> MLEResult:
    """Minimise over log-parameters; report whether a true interior optimum was found.

    ``hessian_guess``: the Hessian of a closely related problem at ``x0`` (e.g. the
    same model fitted on a shorter period, whose optimum ``x0`` is). Given, the
    search starts with quasi-Newton steps on it, which from such a start reach the
    optimum in a few gradients instead of L-BFGS-B's dozen or more iterations; the
    optimum and the checks are the same.
    """
    from threadpoolctl import threadpool_limits

    # The problem has 3-4 parameters: BLAS threads (inside the optimiser and the
    # small linear algebra) only add wake-up latency, 5-10x the whole fit on a busy
    # machine. One thread for the duration of the fit; the setting is restored after.
    with threadpool_limits(limits=1, user_api="blas"):
        return _minimize_log_params(
            objective_and_gradient, x0, max_iter=max_iter, hessian_guess=hessian_guess
        )


def _steps_on_guess(objective_and_gradient, x, hessian_guess, max_steps=25, tolerance=1e-8):
    """Quasi-Newton (BFGS) steps from a Hessian guess, with backtracking.

    Returns ``(x, steps)`` once the largest gradient component is below ``tolerance``
    (the Newton polish takes it further), or None if the steps stall.
    """
    try:
        np.linalg.cholesky(hessian_guess)
    except np.linalg.LinAlgError:
        return None
    hessian = np.array(hessian_guess, dtype=float)
    with np.errstate(all="ignore"):
        objective, gradient = objective_and_gradient(x)
        for n_steps in range(1, max_steps + 1):
            if not (np.isfinite(objective) and np.all(np.isfinite(gradient))):
                return None
            if np.max(np.abs(gradient)) < tolerance:
                return x, n_steps
            step = np.linalg.solve(hessian, gradient)
            for _ in range(8):  # halve until the objective does not rise
                candidate = x - step
                cand_objective, cand_gradient = objective_and_gradient(candidate)
                if np.isfinite(cand_objective) and cand_objective <= objective + 1e-12 * max(
                    1.0, abs(objective)
                ):
                    break
                step = step / 2
            else:
                return None
            # BFGS update of the Hessian with the step taken and the gradient change.
            moved, change = -step, cand_gradient - gradient
            curvature = float(change @ moved)
            if curvature > 0:
                pushed = hessian @ moved
                hessian += np.outer(change, change) / curvature - np.outer(pushed, pushed) / (
                    moved @ pushed
                )
            x, objective, gradient = candidate, cand_objective, cand_gradient
    return None


def _minimize_log_params(objective_and_gradient, x0, *, max_iter, hessian_guess=None):
    from scipy.optimize import minimize  # scipy.optimize is slow to import; only on fit

    guessed = None
    if hessian_guess is not None and np.all(np.isfinite(hessian_guess)):
        guessed = _steps_on_guess(
            objective_and_gradient, np.asarray(x0, dtype=float), hessian_guess
        )
    if guessed is not None:
        x, n_iterations = guessed
    else:
        with np.errstate(all="ignore"):  # far trial points may overflow; they are rejected
            output = minimize(
                objective_and_gradient,
                x0,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": max_iter, "ftol": 1e-12, "gtol": 1e-8},
            )
        x, n_iterations = np.asarray(output.x, dtype=float), int(output.nit)
    objective, gradient = objective_and_gradient(x)

    def gradient_only(point):
        return objective_and_gradient(point)[1]

    hessian = np.full((len(x), len(x)), np.nan)
    finite = np.isfinite(objective) and np.all(np.isfinite(x))
    in_range = finite and bool(np.all(np.abs(x) < MAX_ABS_LOG_PARAM))
    if in_range and n_iterations < max_iter:
        # Newton polish: L-BFGS-B stops on relative criteria; a few Newton steps make
        # the optimum independent of where and how the optimiser approached it. So
        # close to the optimum the Hessian does not change in the digits that matter:
        # it is computed once (2k gradients) and reused for the steps and the errors.
        hessian = numerical_hessian(gradient_only, x)
        for _ in range(4):
            if np.max(np.abs(gradient)) < 1e-12:
                break
            try:
                step = np.linalg.solve(hessian, gradient)
            except np.linalg.LinAlgError:
                break
            candidate = x - step
            cand_objective, cand_gradient = objective_and_gradient(candidate)
            # Near the optimum the objective is flat to rounding; judge a step by the
            # gradient, which still resolves the last digits.
            if not (
                np.isfinite(cand_objective)
                and cand_objective <= objective + 1e-12 * max(1.0, abs(objective))
                and np.max(np.abs(cand_gradient)) < np.max(np.abs(gradient))
            ):
                break
            x, objective, gradient = candidate, cand_objective, cand_gradient
        in_range = bool(np.all(np.abs(x) < MAX_ABS_LOG_PARAM))
    gradient_ok = bool(np.all(np.isfinite(gradient))) and np.max(np.abs(gradient)) < (
        _GRADIENT_TOLERANCE
    )
    try:
        # An optimum is a bowl: a Hessian that is not positive definite means a ridge
        # or a saddle, where the parameters are not identified.
        np.linalg.cholesky(hessian)
        curved = True
    except np.linalg.LinAlgError:
        curved = False
    converged = bool(in_range and gradient_ok and curved and n_iterations < max_iter)
    if converged:
        message = "converged"
    elif not finite:
        message = "the likelihood became non-finite"
    elif not in_range:
        message = "a parameter ran off to 0 or infinity (the data do not identify it)"
    elif n_iterations >= max_iter:
        message = f"no optimum within max_iter={max_iter} iterations"
    elif not gradient_ok:
        message = f"the gradient did not vanish (max |gradient| {np.max(np.abs(gradient)):.2g})"
    else:
        message = "the Hessian at the optimum is not positive definite (a ridge or saddle)"
    return MLEResult(
        log_params=x,
        hessian=hessian,
        objective=float(objective),
        converged=converged,
        message=message,
        n_iterations=n_iterations,
    )


@dataclass(frozen=True)
class PurchaseLikelihood:
    """Fit, Hessian and log-likelihood of a purchase model from its two pieces.

    Every purchase model (BG/NBD, MBG/NBD, Pareto/NBD) fits the same way: collapse
    the customers to distinct rows in rescaled time (``rows_of(frequency, recency,
    T, scale, weights)``, with ``total_weight`` the number of customers), minimise
    the mean penalised negative log-likelihood ``objective(log_params, rows,
    penalizer_coef) -> (value, gradient)`` over log-parameters, and measure the
    curvature there. Only those pieces and the starting point differ.

    Parameters
    ----------
    rows_of, objective : callable
        As above.
    param_names, time_params : tuple of str
        The parameters, and those measured in the time unit (rescaled with time).
    default_start : float
        Every log-parameter's starting value when no warm start is given.
    value : callable, optional
        ``value(log_params, rows, penalizer_coef)`` alone, when cheaper than the
        objective with its gradient.
    """

    rows_of: Callable
    objective: Callable
    param_names: tuple[str, ...]
    time_params: tuple[str, ...]
    default_start: float
    value: Callable | None = None

    def fit(
        self,
        frequency,
        recency,
        T,
        *,
        penalizer_coef: float,
        max_iter: int,
        start=None,
        weights=None,
        hessian_guess=None,
    ) -> tuple[MLEResult, float]:
        """The result (log-parameters in rescaled time) and the time scale.

        Time is rescaled as lifetimes does, so that the oldest customer has ``T = 1``
        (``scale = 1 / max(T)``); the penalty applies to the rescaled parameters.
        ``start``: parameters in the data's time unit to start from (warm start).
        """
        frequency, recency, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        scale = 1.0 / float(np.max(T))
        rows = self.rows_of(frequency, recency, T, scale, weights)
        if start is None:
            x0 = np.full(len(self.param_names), float(self.default_start))
        else:
            x0 = start_log_params(start, self.param_names, self.time_params, scale)
        result = minimize_log_params(
            lambda lp: self.objective(lp, rows, penalizer_coef),
            x0,
            max_iter=max_iter,
            hessian_guess=hessian_guess,
        )
        return result, scale

    def hessian(
        self, log_params, frequency, recency, T, *, scale, penalizer_coef, weights=None
    ) -> np.ndarray:
        """Hessian of the mean penalised objective at ``log_params`` (rescaled time)."""
        rows = self.rows_of(frequency, recency, T, scale, weights)
        return numerical_hessian(lambda lp: self.objective(lp, rows, penalizer_coef)[1], log_params)

    def log_likelihood(self, params, frequency, recency, T, weights=None) -> float:
        """Total (unpenalised) log-likelihood of the customers, times in the data's unit."""
        rows = self.rows_of(frequency, recency, T, 1.0, weights)
        if self.value is not None:
            mean = self.value(np.log(params), rows, 0.0)
        else:
            mean = self.objective(np.log(params), rows, 0.0)[0]
        return float(-mean * rows.total_weight)
