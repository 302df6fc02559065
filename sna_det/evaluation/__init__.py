from .evaluator import EVALUATORS, build_evaluator

__all__ = ["EVALUATORS", "build_evaluator"]
