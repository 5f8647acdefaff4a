"""The scenario catalogue: one YAML file per scenario, validated by ``model.Scenario``."""
