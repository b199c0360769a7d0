namespace Lab.Tests;

/// <summary>
/// Tests whose assertions are about time (a Nagle stall of tens of ms, a write that leaves at once, a slow request
/// stalling a loop, busy time per worker) run alone, never beside the heavy tests (the topology contract, faults,
/// soak, benchmarks) that would otherwise take both cores of a 2-core machine while they measure.
/// </summary>
[CollectionDefinition(nameof(TimingCollection), DisableParallelization = true)]
public sealed class TimingCollection;
