namespace Lab;

/// <summary>
/// Percentiles and medians, by one definition everywhere in the lab: the <em>nearest rank</em>. The pth percentile is
/// the smallest recorded value with at least p% of the values at or below it, so it is always a value that was
/// measured, never one between two. <see cref="Lab.Load.LatencyHistogram"/> answers the same question from its buckets
/// (within 0.1%).
/// </summary>
public static class Stats
{
    /// <summary>The <paramref name="p"/>th percentile (0-100) of <paramref name="values"/> by nearest rank; NaN when
    /// there are none.</summary>
    public static double Percentile(IEnumerable<double> values, double p)
    {
        if (p is < 0 or > 100 || double.IsNaN(p)) throw new ArgumentOutOfRangeException(nameof(p), p, "A percentile is between 0 and 100.");
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        long rank = Math.Max(1, (long)Math.Ceiling(p / 100 * sorted.Length));
        return sorted[Math.Min(rank, sorted.Length) - 1];
    }

    /// <summary>The median: the 50th percentile by nearest rank (for an even count, the lower of the middle two).</summary>
    public static double Median(IEnumerable<double> values) => Percentile(values, 50);
}
