"""Evaluators: functions of a ledger that know nothing of model families (FLOPs, parameters, traffic)."""
