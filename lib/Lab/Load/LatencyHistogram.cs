using System.Numerics;

namespace Lab.Load;

/// <summary>
/// Latencies in microseconds, kept HdrHistogram-style: log-linear buckets (each power of two split into 1024
/// linear steps), so any value up to about 19 hours is kept within 0.1% and recording is one array increment.
/// Not thread-safe: the load generator keeps one per thread and merges them.
/// </summary>
public sealed class LatencyHistogram
{
    const int SubBucketHalfCountMagnitude = 10;                 // 1024 linear steps per power of two
    const int SubBucketCount = 1 << (SubBucketHalfCountMagnitude + 1);
    const int SubBucketHalfCount = SubBucketCount / 2;
    const long SubBucketMask = SubBucketCount - 1;
    const int Buckets = 26;                                     // values to 2^36 µs
    /// <summary>The largest value kept exactly (larger ones are recorded as this): about 19 hours.</summary>
    public const long MaxMicros = (1L << 36) - 1;

    readonly long[] _counts = new long[(Buckets + 1) * SubBucketHalfCount];
    long _count, _sum, _min = long.MaxValue, _max;

    /// <summary>Records one latency of <paramref name="micros"/> µs (negative counts as 0).</summary>
    public void Record(long micros)
    {
        if (micros < 0) micros = 0;
        if (micros > MaxMicros) micros = MaxMicros;
        _counts[Index(micros)]++;
        _count++;
        _sum += micros;
        if (micros < _min) _min = micros;
        if (micros > _max) _max = micros;
    }

    static int Index(long v)
    {
        int bucket = 63 - BitOperations.LeadingZeroCount((ulong)(v | SubBucketMask)) - SubBucketHalfCountMagnitude;
        int sub = (int)(v >> bucket);
        return (bucket << SubBucketHalfCountMagnitude) + sub;
    }

    /// <summary>The highest value that lands in the same bucket as index <paramref name="i"/> (what percentiles report).</summary>
    static long ValueAt(int i)
    {
        int bucket = (i >> SubBucketHalfCountMagnitude) - 1;
        int sub = (i & (SubBucketHalfCount - 1)) + SubBucketHalfCount;
        if (bucket < 0) { bucket = 0; sub -= SubBucketHalfCount; }
        return ((long)sub << bucket) + (1L << bucket) - 1;
    }

    /// <summary>Adds every value of <paramref name="other"/>.</summary>
    public void Merge(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        _count += other._count;
        _sum += other._sum;
        if (other._count > 0) { _min = Math.Min(_min, other._min); _max = Math.Max(_max, other._max); }
    }

    /// <summary>How many latencies were recorded.</summary>
    public long Count => _count;
    /// <summary>The smallest, exactly (0 when empty).</summary>
    public TimeSpan Min => _count == 0 ? TimeSpan.Zero : TimeSpan.FromMicroseconds(_min);
    /// <summary>The largest, exactly.</summary>
    public TimeSpan Max => TimeSpan.FromMicroseconds(_max);
    /// <summary>The mean, exactly.</summary>
    public TimeSpan Mean => _count == 0 ? TimeSpan.Zero : TimeSpan.FromMicroseconds((double)_sum / _count);

    /// <summary>The latency at or below which <paramref name="percentile"/>% of requests completed (0 to 100), within 0.1%: the
    /// nearest rank, the lab's one definition (<see cref="Stats.Percentile"/>), read from the buckets.</summary>
    public TimeSpan Percentile(double percentile)
    {
        if (percentile is < 0 or > 100 || double.IsNaN(percentile)) throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "A percentile is between 0 and 100.");
        if (_count == 0) return TimeSpan.Zero;
        if (percentile >= 100) return Max;
        long target = Math.Max(1, (long)Math.Ceiling(percentile / 100 * _count));
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= target) return TimeSpan.FromMicroseconds(Math.Min(ValueAt(i), _max));
        }
        return Max;
    }

    public TimeSpan P50 => Percentile(50);
    public TimeSpan P90 => Percentile(90);
    public TimeSpan P99 => Percentile(99);
    public TimeSpan P999 => Percentile(99.9);

    /// <summary>
    /// The percentile curve HdrHistogram plots: (percentile, latency) at 0, 10, ... 90, then each step halving what
    /// is left (95, 97.5, 98.75, ...), then the maximum, so the tail gets as many points as the body.
    /// </summary>
    public IReadOnlyList<(double Percentile, TimeSpan Latency)> Curve(int halvings = 12)
    {
        var list = new List<(double, TimeSpan)>();
        if (_count == 0) return list;
        for (int p = 0; p < 100; p += 10) list.Add((p, Percentile(p)));
        double left = 10;
        for (int i = 0; i < halvings; i++) { left /= 2; list.Add((100 - left, Percentile(100 - left))); }
        list.Add((100, Max));
        return list;
    }

    /// <summary>"p50 120 µs, p90 ..., max ...".</summary>
    public override string ToString() => _count == 0 ? "no samples" :
        $"p50 {Format(P50)}, p90 {Format(P90)}, p99 {Format(P99)}, p99.9 {Format(P999)}, max {Format(Max)}, mean {Format(Mean)} ({_count:N0} samples)";

    /// <summary>"850 µs", "12.3 ms", "1.20 s".</summary>
    public static string Format(TimeSpan t) => t.TotalMicroseconds < 1000 ? $"{t.TotalMicroseconds:0} µs"
        : t.TotalMilliseconds < 1000 ? $"{t.TotalMilliseconds:0.##} ms" : $"{t.TotalSeconds:0.00} s";
}
