namespace Lab;

/// <summary>A claim the kernel agreed with, with the evidence; shows as "✓ claim (evidence)".</summary>
public sealed record CheckResult(string Claim, string? Evidence)
{
    public override string ToString() => "✓ " + Claim + (Evidence is null ? "" : $" ({Evidence})");
}

/// <summary>A chapter's claim that did not hold on this kernel: the run fails, naming the claim and what was read.</summary>
public sealed class CheckFailedException(string claim, string? evidence)
    : Exception($"Check failed: {claim}. What this kernel showed: {evidence ?? "(no evidence given)"}. " +
                "The chapter's claim did not hold here: look at the readings above, and at `lab doctor` for this machine's settings.")
{
    public string Claim { get; } = claim;
    public string? Evidence { get; } = evidence;
}

/// <summary>
/// The check cell after each experiment: "predict, then observe", then let the kernel's readings decide.
/// A passing check returns a value that shows as ✓; a failing one throws, so <c>lab run</c> and CI fail.
/// </summary>
public static class Check
{
    /// <summary>Passes when <paramref name="condition"/> holds.</summary>
    public static CheckResult That(bool condition, string claim, object? evidence = null)
    {
        var text = evidence?.ToString();
        return condition ? new CheckResult(claim, text) : throw new CheckFailedException(claim, text);
    }

    /// <summary>Passes when <paramref name="actual"/> equals <paramref name="expected"/>.</summary>
    public static CheckResult Equal<T>(T expected, T actual, string claim) =>
        That(EqualityComparer<T>.Default.Equals(expected, actual), claim, $"expected {expected}, read {actual}");

    /// <summary>Passes when <paramref name="actual"/> is at least <paramref name="minimum"/>.</summary>
    public static CheckResult AtLeast(double actual, double minimum, string claim) =>
        That(actual >= minimum, claim, $"read {actual}, needed at least {minimum}");

    /// <summary>Passes when <paramref name="actual"/> is at most <paramref name="maximum"/>.</summary>
    public static CheckResult AtMost(double actual, double maximum, string claim) =>
        That(actual <= maximum, claim, $"read {actual}, allowed at most {maximum}");

    /// <summary>Passes when <paramref name="actual"/> lies in [<paramref name="low"/>, <paramref name="high"/>].</summary>
    public static CheckResult InRange(double actual, double low, double high, string claim) =>
        That(actual >= low && actual <= high, claim, $"read {actual}, expected {low}..{high}");
}

/// <summary>
/// A cell that cannot run here for a reason the reader can fix (a missing capability): the host shows the reason
/// and what the cell would have shown, and reports the cell as skipped, not failed.
/// </summary>
public sealed class CellSkippedException(string reason, string? wouldShow = null) : Exception(reason)
{
    /// <summary>Why the cell cannot run here and what to do.</summary>
    public string Reason { get; } = reason;
    /// <summary>A description of what the cell shows where it can run.</summary>
    public string? WouldShow { get; } = wouldShow;
}
