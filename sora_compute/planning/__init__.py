"""Planning: training (scenarios, compute, the GPT-3 yardstick), inference per video, cluster and serving plans,
sweeps and sensitivity. Each module does one job; this package names the public API.
"""

from sora_compute.planning.cluster import (
    Cluster,
    ClusterPlan,
    ServingPlan,
    budget_plan,
    gpus_for_days,
    plan_cluster,
    plan_serving,
)
from sora_compute.planning.demand import DemandEstimate, estimate_demand
from sora_compute.planning.demand_analysis import demand_sensitivity, throughput_gap
from sora_compute.planning.demand_spec import (
    DemandScenario,
    DemandSource,
    UnknownDemandError,
    demand_names,
    load_demand,
    resolve_demand,
)
from sora_compute.planning.inference import (
    InferenceEstimate,
    InferenceSettings,
    VAETiling,
    estimate_inference,
    sampling_defaults,
)
from sora_compute.planning.recipe_plans import compare_gpu_types, recipe_gpus_for_days
from sora_compute.planning.recipe_spec import Recipe, RecipeStage, load_recipe, load_recipe_file, recipe_names
from sora_compute.planning.recipe_time import RecipeEstimate, estimate_recipe
from sora_compute.planning.scenarios import (
    DataBucket,
    ScenarioFileError,
    TrainingScenario,
    TrainingStage,
    UnknownScenarioError,
    load_scenario,
    load_scenario_file,
    resolve_scenario,
    scenario_from_dict,
    scenario_names,
)
from sora_compute.planning.sweep import SweepQuery, sweep
from sora_compute.planning.training import TrainingEstimate, estimate_training, with_main_stage_shape
from sora_compute.planning.yardstick import GPT3_6ND_FLOPS, GPT3_PAPER_FLOPS, GPT3_PARAMS, GPT3_TOKENS, six_nd

__all__ = [
    "GPT3_PAPER_FLOPS",
    "GPT3_PARAMS",
    "GPT3_TOKENS",
    "GPT3_6ND_FLOPS",
    "six_nd",
    "DataBucket",
    "TrainingStage",
    "TrainingScenario",
    "TrainingEstimate",
    "estimate_training",
    "load_scenario",
    "load_scenario_file",
    "resolve_scenario",
    "sampling_defaults",
    "scenario_from_dict",
    "with_main_stage_shape",
    "ScenarioFileError",
    "UnknownScenarioError",
    "scenario_names",
    "VAETiling",
    "InferenceSettings",
    "InferenceEstimate",
    "estimate_inference",
    "Cluster",
    "ClusterPlan",
    "plan_cluster",
    "gpus_for_days",
    "budget_plan",
    "ServingPlan",
    "plan_serving",
    "sweep",
    "SweepQuery",
    "DemandSource",
    "DemandScenario",
    "DemandEstimate",
    "UnknownDemandError",
    "demand_names",
    "load_demand",
    "resolve_demand",
    "estimate_demand",
    "demand_sensitivity",
    "throughput_gap",
    "Recipe",
    "RecipeStage",
    "RecipeEstimate",
    "estimate_recipe",
    "load_recipe",
    "load_recipe_file",
    "recipe_names",
    "recipe_gpus_for_days",
    "compare_gpu_types",
]
