using System.Diagnostics;
using System.Net;
using Lab.Charts;
using Lab.Load;
using Lab.Sockets;

namespace Lab.Topologies;

/// <summary>One reading of a listening socket's accept queue during a run.</summary>
/// <param name="At">Since the sampler started.</param>
/// <param name="Listener">Which listener (the shard, for SO_REUSEPORT; else 0).</param>
/// <param name="Length">Connections waiting to be accepted (tcpi_unacked, ss's Recv-Q).</param>
/// <param name="Limit">The queue's limit (tcpi_sacked, ss's Send-Q).</param>
public readonly record struct QueueSample(TimeSpan At, int Listener, int Length, int Limit);

/// <summary>
/// Reads a topology's accept queues every few milliseconds, bounded in samples and stopped by Dispose: the topology
/// runs' use of Lab.Observe's Sampler.
/// </summary>
internal sealed class QueueSampler : IDisposable
{
    public const int MaxSamples = 200_000;
    readonly ITopology _topology;
    readonly bool[] _over = new bool[1024];
    readonly Lab.Observe.Sampler<IReadOnlyList<AcceptQueueReading>> _sampler;

    /// <summary>Reads every listener's accept queue every <paramref name="every"/> on the lab's one <see cref="Lab.Observe.Sampler"/>
    /// (a fixed schedule, so a slow reading does not space the samples out), and records an AcceptQueueOverflow event
    /// when a queue becomes full. A topology that stopped (its reading throws) ends the sampling, never the process.</summary>
    public QueueSampler(ITopology topology, TimeSpan every)
    {
        if (every < TimeSpan.FromMilliseconds(1) || every > TimeSpan.FromSeconds(10))
            throw new ArgumentOutOfRangeException(nameof(every), every, "Sample every 1 ms to 10 s.");
        _topology = topology;
        _sampler = Lab.Observe.Sampler.Start(every, Read, maxDuration: TimeSpan.FromHours(24), maxSamples: MaxSamples);
    }

    IReadOnlyList<AcceptQueueReading> Read()
    {
        var readings = _topology.AcceptQueues();
        for (int i = 0; i < readings.Count && i < _over.Length; i++)
        {
            // Length above Limit is the kernel's "full" test (sk_acceptq_is_full): it is dropping handshakes now.
            bool full = readings[i].Full;
            if (full && !_over[i] && _topology is Topology t) t.Event(TopologyEventKind.AcceptQueueOverflow, -1, readings[i].Length);
            _over[i] = full;
        }
        return readings;
    }

    public IReadOnlyList<QueueSample> Samples =>
        _sampler.Samples.SelectMany(s => s.Value.Select((r, i) => new QueueSample(s.Elapsed, i, r.Length, r.Limit))).Take(MaxSamples).ToList();

    public void Dispose() => _sampler.Dispose();
}

/// <summary>What one experiment measured: the server's threads, the client's latencies, the accept queue over time.</summary>
public sealed record TopologyRun(string Topology, TopologyMetrics Server, LoadResult Load, IReadOnlyList<QueueSample> Queue, StopReport? Stop)
{
    /// <summary>Per thread: connections accepted and served, requests served.</summary>
    public Figure WorkerBars()
    {
        var labels = Server.Workers.Select(w => w.Name).ToList();
        return LabCharts.GroupedBars($"{Topology}: work per thread", "count", labels,
            ("connections accepted", Server.Workers.Select(w => (double)w.ConnectionsAccepted).ToList()),
            ("connections served", Server.Workers.Select(w => (double)w.ConnectionsServed).ToList()),
            ("requests served", Server.Workers.Select(w => (double)w.RequestsServed).ToList()));
    }

    /// <summary>Per thread: busy time (ms) and wake-ups, wasted ones apart.</summary>
    public Figure BusyBars()
    {
        var labels = Server.Workers.Select(w => w.Name).ToList();
        return LabCharts.GroupedBars($"{Topology}: time and wake-ups per thread", "ms / count", labels,
            ("busy (ms)", Server.Workers.Select(w => w.BusyTime.TotalMilliseconds).ToList()),
            ("wake-ups", Server.Workers.Select(w => (double)w.WakeUps).ToList()),
            ("empty + silent wake-ups", Server.Workers.Select(w => (double)(w.EmptyWakeUps + w.SilentWakeUps)).ToList()));
    }

    /// <summary>The client's latency by percentile.</summary>
    public Figure LatencyPercentiles() => Load.LatencyChart($"{Topology}: latency by percentile");

    /// <summary>Each accept queue's length over the run, with its limit.</summary>
    public Figure QueueDepth()
    {
        if (Queue.Count == 0) throw new InvalidOperationException("No queue samples: the run was shorter than one sampling interval.");
        var series = Queue.GroupBy(q => q.Listener).OrderBy(g => g.Key)
            .Select(g => Series.From(Queue.Select(q => q.Listener).Distinct().Count() == 1 ? "accept queue" : $"shard {g.Key}", g, q => q.At.TotalSeconds, q => q.Length))
            .ToList();
        var first = Queue.Where(q => q.Listener == 0).ToList();
        series.Add(new Series("limit", [first[0].At.TotalSeconds, first[^1].At.TotalSeconds], [first[0].Limit, first[0].Limit]));
        return LabCharts.TimeSeries($"{Topology}: accept queue", "connections waiting", series.ToArray());
    }

    /// <summary>Server table, then the client's summary.</summary>
    public override string ToString() => $"{Server}\n{Load}" + (Queue.Count > 0 ? $"accept queue: max {Queue.Max(q => q.Length)} of {Queue[0].Limit}, {Queue.Count} samples\n" : "");
}

/// <summary>
/// A server thread ended with an exception during <see cref="TopologyRunner.Run"/>: the load was stopped, the topology
/// stopped (when the run started it), and the thread's exception is the inner exception.
/// </summary>
public sealed class TopologyFailedException(Topology topology, TimeSpan after, StopReport? stop, Exception first)
    : Exception($"{topology.Name}: a server thread threw after {after.TotalSeconds:0.0} s, so the run was stopped: {string.Join("; ", topology.Failures)}. " +
                (stop is null ? "The topology is still running (it was running before the run)." : $"The topology {stop}."), first)
{
    /// <summary>Each failed thread: "name: Type: message".</summary>
    public IReadOnlyList<string> Failures { get; } = topology.Failures;
    /// <summary>How the topology stopped; null when the run did not start it (it is left running, as Run promises).</summary>
    public StopReport? Stop { get; } = stop;
}

/// <summary>
/// Drives a topology under load and samples it: starts it (if it is not running), runs the lab's load generator
/// against it while sampling its accept queues, stops it, and returns the <see cref="TopologyRun"/>. One notebook cell.
/// </summary>
public static class TopologyRunner
{
    /// <summary>
    /// Runs <paramref name="load"/> against <paramref name="topology"/> (its own address when load.Target is null),
    /// sampling its accept queue(s) every <paramref name="sampleEvery"/> (default 10 ms). A topology not yet running
    /// is started here and stopped at the end (bounded, 5 s); a running one is left running. When a server thread
    /// throws, the load stops at once and <see cref="TopologyFailedException"/> carries the exception to the caller.
    /// </summary>
    public static TopologyRun Run(ITopology topology, LoadOptions load, TimeSpan? sampleEvery = null,
        IProgress<LoadProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(load);
        bool started = topology is Topology { Running: false };
        if (started) topology.Start();
        StopReport? stop = null;
        try
        {
            var ep = topology.LocalEndPoint;
            if (ep.Address.Equals(IPAddress.Any)) ep = new IPEndPoint(IPAddress.Loopback, ep.Port);
            else if (ep.Address.Equals(IPAddress.IPv6Any)) ep = new IPEndPoint(IPAddress.IPv6Loopback, ep.Port);
            LoadResult result;
            IReadOnlyList<QueueSample> samples;
            var failed = topology is Topology t ? t.Failed : CancellationToken.None;
            using var either = CancellationTokenSource.CreateLinkedTokenSource(ct, failed);
            var clock = Stopwatch.StartNew();
            using (var sampler = new QueueSampler(topology, sampleEvery ?? TimeSpan.FromMilliseconds(10)))
            {
                // A server thread that throws ends the load at once: its connections would otherwise wait out RequestTimeout.
                try { result = LoadGenerator.Run(load, load.Target ?? Endpoints.Format(ep), progress, either.Token); }
                catch (OperationCanceledException) when (failed.IsCancellationRequested && !ct.IsCancellationRequested)
                {
                    result = null!;
                }
                sampler.Dispose();
                samples = sampler.Samples;
            }
            if (started) stop = topology.Stop(Topologies.Topology.DefaultStopTimeout);
            if (topology is Topology { FirstFailure: { } first } failing)
                throw new TopologyFailedException(failing, clock.Elapsed, stop, first);
            return new TopologyRun(topology.Name, topology.Metrics, result, samples, stop);
        }
        finally
        {
            if (started && stop is null) topology.Stop(Topologies.Topology.DefaultStopTimeout);
        }
    }
}
