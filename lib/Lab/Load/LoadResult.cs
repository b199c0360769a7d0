using System.Net;
using System.Text;
using Lab.Charts;

namespace Lab.Load;

/// <summary>Failed requests, by what went wrong.</summary>
/// <param name="Refused">connect said ECONNREFUSED: nothing listening (or the accept queue overflowed with tcp_abort_on_overflow).</param>
/// <param name="Reset">The connection was reset (ECONNRESET/EPIPE) before the response was whole.</param>
/// <param name="Timeout">No handshake within ConnectTimeout, or no whole response within RequestTimeout.</param>
/// <param name="BadResponse">A response that was not 2xx, or not HTTP.</param>
/// <param name="Closed">The server closed the connection (FIN) before the response was whole.</param>
/// <param name="Other">Any other connect error (the message of the first is in <see cref="LoadResult.FirstError"/>).</param>
public sealed record LoadErrors(long Refused, long Reset, long Timeout, long BadResponse, long Closed, long Other)
{
    /// <summary>All failed requests.</summary>
    public long Total => Refused + Reset + Timeout + BadResponse + Closed + Other;
    public override string ToString() => Total == 0 ? "none" :
        string.Join(", ", new[] { ("refused", Refused), ("reset", Reset), ("timeout", Timeout), ("bad response", BadResponse), ("closed", Closed), ("other", Other) }
            .Where(e => e.Item2 > 0).Select(e => $"{e.Item1} {e.Item2:N0}"));
}

/// <summary>Where a long run is, reported about once a second.</summary>
public sealed record LoadProgress(TimeSpan Elapsed, long Sent, long Completed, long Errors, double LastSecondRate)
{
    public override string ToString() => $"{Elapsed.TotalSeconds,5:0}s  {Completed:N0} done, {Errors:N0} errors, {LastSecondRate:N0} req/s";
}

/// <summary>What a load run measured.</summary>
public sealed record LoadResult
{
    /// <summary>The options it ran with.</summary>
    public required LoadOptions Options { get; init; }
    /// <summary>Where it sent.</summary>
    public required IPEndPoint Target { get; init; }
    /// <summary>Whether it ran open loop (a fixed rate).</summary>
    public bool OpenLoop => Options.Rate is not null;
    /// <summary>From the first request to the end of the run.</summary>
    public required TimeSpan Elapsed { get; init; }
    /// <summary>Requests whose first byte was written.</summary>
    public required long Sent { get; init; }
    /// <summary>Requests answered with a whole 2xx response.</summary>
    public required long Completed { get; init; }
    /// <summary>Connections whose handshake was started (connect calls).</summary>
    public required long ConnectionsOpened { get; init; }
    /// <summary>Failed requests by kind.</summary>
    public required LoadErrors Errors { get; init; }
    /// <summary>Requests still in flight when the time ran out (neither completed nor failed).</summary>
    public required long Unfinished { get; init; }
    /// <summary>Open loop: requests that were due but never sent because every connection was busy until the end.</summary>
    public required long Missed { get; init; }
    /// <summary>
    /// Latency of each completed request, in µs resolution. Closed loop: from writing the request (after the
    /// handshake when each request opens its own connection, the handshake included) to the whole response. Open
    /// loop: from the moment the request was due, so time spent waiting for a free connection counts (coordinated omission corrected).
    /// </summary>
    public required LatencyHistogram Latency { get; init; }
    /// <summary>From writing the request to the whole response (the same as <see cref="Latency"/> for closed loop).</summary>
    public required LatencyHistogram ServiceLatency { get; init; }
    /// <summary>
    /// <see cref="Latency"/> split by request path (one histogram per distinct path of the mix), so a mix's fast
    /// requests can be read apart from its slow ones. Empty when not measured.
    /// </summary>
    public IReadOnlyDictionary<string, LatencyHistogram> LatencyByPath { get; init; } = new Dictionary<string, LatencyHistogram>();
    /// <summary>Completed requests in each second of the run.</summary>
    public required IReadOnlyList<double> Throughput { get; init; }
    /// <summary>The first unexpected error message, if any.</summary>
    public string? FirstError { get; init; }

    /// <summary>Completed requests per second over the whole run.</summary>
    public double RequestsPerSecond => Elapsed.TotalSeconds > 0 ? Completed / Elapsed.TotalSeconds : 0;

    /// <summary>The percentile curve (log-scaled "percentile" axis in the HdrHistogram way: 1/(1-p)).</summary>
    public Figure LatencyChart(string? title = null)
        => LabCharts.TimeSeries(title ?? $"Latency by percentile ({(OpenLoop ? "open" : "closed")} loop)", "latency (ms)", LatencySeries("latency"))
            .WithXAxis("percentile: 90 at 1, 99 at 2, 99.9 at 3 (−log10 of the fraction slower)");

    internal Series LatencySeries(string name)
    {
        var curve = Latency.Curve();
        return new Series(name, curve.Select(c => c.Percentile >= 100 ? Math.Log10(1.0 / (1 - 0.99999)) : -Math.Log10(1 - c.Percentile / 100)).ToList(),
            curve.Select(c => c.Latency.TotalMilliseconds).ToList());
    }

    /// <summary>Completed requests per second over the run.</summary>
    public Figure ThroughputChart(string? title = null)
        => LabCharts.TimeSeries(title ?? "Throughput", "requests/s", new Series("completed", Throughput.Select((_, i) => (double)i + 1).ToList(), Throughput));

    /// <summary>A summary in the shape wrk prints.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{(OpenLoop ? $"open loop at {Options.Rate:N0} req/s" : "closed loop")}, {Options.Connections} connections{(Options.KeepAlive ? "" : " (new connection per request)")}, {Elapsed.TotalSeconds:0.00} s to {Target}");
        sb.AppendLine($"  {Completed:N0} completed, {Sent:N0} sent, {ConnectionsOpened:N0} connections opened; {RequestsPerSecond:N0} requests/s");
        sb.AppendLine($"  latency: {Latency}");
        if (OpenLoop) sb.AppendLine($"  service time (from send): {ServiceLatency}");
        sb.AppendLine($"  errors: {Errors}{(FirstError is null ? "" : $" (first: {FirstError})")}");
        if (Unfinished > 0 || Missed > 0) sb.AppendLine($"  unfinished at the end: {Unfinished:N0}; due but never sent: {Missed:N0}");
        return sb.ToString();
    }
}
