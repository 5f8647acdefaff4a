"""Running one scenario against a stack: fault control and the fault timeline, the generation protocol
and traffic, forged-token probes, the breaker sampler and image checks, gathered into an Observation."""
