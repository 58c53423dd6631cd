"""The calibration side, the only part of sora_compute that imports torch and fvcore: reference modules built from
specs (``build``), FLOPs profiled with fvcore and FlopCounterMode and compared module by module with the ledger
(``profile``), and memory measured with saved-tensor hooks and a live-tensor tracker (``measure``).

Import the modules themselves (``from sora_compute.calibration.profile import calibrate``): this package imports
nothing on its own, so the analytic layer never loads torch.
"""
