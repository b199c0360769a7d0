using Lab.Display;
using System.Diagnostics;
using System.Net;
using Lab.Charts;
using Lab.Load;
using Lab.Sockets;
using Lab.Topologies;

namespace Lab.Experiments;

/// <summary>One client connection of a <see cref="PlannedRun"/>: a label, the one request it repeats, and its fixed rate.</summary>
/// <param name="Label">How charts name it, e.g. "heavy" or "light".</param>
/// <param name="Request">What every request on this connection asks for.</param>
/// <param name="PerSecond">Its requests per second (open loop: due at this rate whether or not the last was answered).</param>
public sealed record PlannedConnection(string Label, RequestMix Request, double PerSecond)
{
    /// <summary>A connection whose every request is <c>/work?ms=<paramref name="workMs"/></c>: CPU work on the server thread.</summary>
    public static PlannedConnection Heavy(int workMs, double perSecond) => new("heavy", RequestMix.Work(workMs), perSecond);
    /// <summary>A connection whose every request is <c>/</c>: the fixed body at once.</summary>
    public static PlannedConnection Light(double perSecond) => new("light", RequestMix.Hello(), perSecond);
}

/// <summary>What one planned connection measured from the client's side.</summary>
/// <param name="Order">Its place in the order of connecting (0 first).</param>
/// <param name="Label">Its label from the plan.</param>
/// <param name="Path">What it requested.</param>
/// <param name="Thread">The server thread the dispatcher handed it to ("w0", "w1"...), or the thread that read it when nothing was handed over.</param>
/// <param name="Completed">Requests answered.</param>
/// <param name="Errors">Requests that failed.</param>
/// <param name="P50Ms">Median latency, from when each request was due (ms).</param>
/// <param name="P90Ms">90th percentile latency (ms).</param>
/// <param name="P99Ms">99th percentile latency (ms).</param>
public sealed record ConnectionOutcome(int Order, string Label, string Path, string Thread, long Completed, long Errors, double P50Ms, double P90Ms, double P99Ms);

/// <summary>One server thread's share of a <see cref="PlannedRun"/>.</summary>
/// <param name="Thread">Its name ("disp", "w0"...).</param>
/// <param name="Role">What it does.</param>
/// <param name="Connections">Connections it read from (ConnectionsServed).</param>
/// <param name="Requests">Requests whose work it did.</param>
/// <param name="HeavyRequests">Of those, requests that asked for work (their RequestStarted event carried milliseconds &gt; 0).</param>
/// <param name="BusyMs">Time it spent outside its wait (epoll_wait or the wait for a hand-off), ms.</param>
/// <param name="BusyFraction">BusyMs over the run's length.</param>
public sealed record ThreadShare(string Thread, WorkerRole Role, long Connections, long Requests, long HeavyRequests, double BusyMs, double BusyFraction);

/// <summary>
/// Clients whose connections differ: connections are opened one at a time, in the plan's order, each by its own
/// <see cref="LoadGenerator"/> (one connection, open loop at the connection's rate), the next only once the server
/// has accepted the last. With a round-robin dispatcher the order decides which worker gets which client, so a
/// plan such as heavy, light, light, light puts the heavy client and one light client on worker 0 every time.
/// </summary>
public sealed class PlannedRun
{
    PlannedRun(string topology, TimeSpan elapsed, TopologyMetrics server, IReadOnlyList<ConnectionOutcome> connections, IReadOnlyList<ThreadShare> threads)
    { Topology = topology; Elapsed = elapsed; Server = server; Connections = connections; Threads = threads; }

    /// <summary>The topology's name.</summary>
    public string Topology { get; }
    /// <summary>From the first connection's start to the last one's end.</summary>
    public TimeSpan Elapsed { get; }
    /// <summary>The server's counters at the end of the load, before it stopped.</summary>
    public TopologyMetrics Server { get; }
    /// <summary>Each client connection, in the order it connected.</summary>
    public IReadOnlyList<ConnectionOutcome> Connections { get; }
    /// <summary>Every server thread: the dispatcher first, then the workers.</summary>
    public IReadOnlyList<ThreadShare> Threads { get; }
    /// <summary>The worker threads only.</summary>
    public IReadOnlyList<ThreadShare> Workers => Threads.Where(t => t.Role == WorkerRole.Worker).ToList();

    /// <summary>The busiest worker's busy time over the idlest one's (the idlest counted as at least 1 ms).</summary>
    public double BusyRatio => Workers.Max(w => w.BusyMs) / Math.Max(1, Workers.Min(w => w.BusyMs));

    /// <summary>Latency percentile <paramref name="p"/> (50, 90 or 99) of the connections labelled <paramref name="label"/> served by <paramref name="thread"/> (any thread when null); NaN when none.</summary>
    public double Latency(string label, double p, string? thread = null)
    {
        var rows = Connections.Where(c => c.Label == label && (thread is null || c.Thread == thread)).ToList();
        if (rows.Count == 0) return double.NaN;
        return rows.Max(c => p >= 99 ? c.P99Ms : p >= 90 ? c.P90Ms : c.P50Ms);
    }

    /// <summary>The largest number of simultaneously open client connections allowed in a plan.</summary>
    public const int MaxConnections = 64;

    /// <summary>
    /// Starts <paramref name="topology"/> (when not running), connects the plan's clients in order, loads them for
    /// <paramref name="duration"/> (0.5 to 20 s), reads the server's counters and stops it again (when this call
    /// started it). <paramref name="update"/> hears a chart of busy time per thread about every 250 ms.
    /// </summary>
    public static PlannedRun Run(Topology topology, IReadOnlyList<PlannedConnection> plan, TimeSpan duration, Action<object>? update = null)
    {
        var live = LiveView.Of(update);
        ArgumentNullException.ThrowIfNull(topology);
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Count is < 1 or > MaxConnections)
            throw new ArgumentOutOfRangeException(nameof(plan), plan.Count, $"A plan has 1 to {MaxConnections} connections.");
        if (duration < TimeSpan.FromSeconds(0.5) || duration > TimeSpan.FromSeconds(20))
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "Run each plan for 0.5 to 20 s.");
        foreach (var p in plan)
            if (!(p.PerSecond > 0) || p.PerSecond > 10_000)
                throw new ArgumentOutOfRangeException(nameof(plan), p.PerSecond, $"Connection '{p.Label}' asks for {p.PerSecond} requests/s; give 0 < rate ≤ 10000.");

        bool started = !topology.Running;
        if (started) topology.Start();
        var results = new LoadResult?[plan.Count];
        var errors = new Exception?[plan.Count];
        var threads = new Thread[plan.Count];
        using var cancel = new CancellationTokenSource();
        try
        {
            var ep = topology.LocalEndPoint;
            if (ep.Address.Equals(IPAddress.Any)) ep = new IPEndPoint(IPAddress.Loopback, ep.Port);
            var target = Endpoints.Format(ep);
            long acceptedBefore = topology.Events.Count(TopologyEventKind.Accepted);
            long handoffsBefore = topology.Events.Total;
            var clock = Stopwatch.StartNew();
            for (int i = 0; i < plan.Count; i++)
            {
                int k = i;
                var options = new LoadOptions
                {
                    Target = target, Connections = 1, Threads = 1, Rate = plan[k].PerSecond, Duration = duration, Mix = [plan[k].Request],
                };
                threads[k] = new Thread(() =>
                {
                    try { results[k] = LoadGenerator.Run(options, null, cancel.Token); }
                    catch (Exception e) { errors[k] = e; }
                }) { IsBackground = true, Name = $"lab-plan {k}" };
                threads[k].Start();
                // The next client connects only after the server accepted this one, so the dispatcher sees them in plan order.
                var until = Stopwatch.GetTimestamp() + 2 * Stopwatch.Frequency;
                while (topology.Events.Count(TopologyEventKind.Accepted) < acceptedBefore + k + 1 && Stopwatch.GetTimestamp() < until && errors[k] is null)
                    Thread.Sleep(1);
                if (topology.Events.Count(TopologyEventKind.Accepted) < acceptedBefore + k + 1)
                    throw new InvalidOperationException($"The server did not accept client {k} ({plan[k].Label}) within 2 s{(errors[k] is { } e ? $": {e.Message}" : "")}.");
            }
            var nextDraw = TimeSpan.FromMilliseconds(250);
            foreach (var t in threads)
            {
                while (!t.Join(TimeSpan.FromMilliseconds(50)))
                {
                    if (clock.Elapsed > duration + TimeSpan.FromSeconds(20)) { cancel.Cancel(); t.Join(TimeSpan.FromSeconds(5)); break; }
                    if (update is not null && clock.Elapsed >= nextDraw)
                    {
                        live!.Frame(BusyChart(topology.Name, Shares(topology.Metrics, topology.Events, clock.Elapsed)));
                        nextDraw = clock.Elapsed + TimeSpan.FromMilliseconds(250);
                    }
                }
            }
            var elapsed = clock.Elapsed;
            if (errors.FirstOrDefault(e => e is not null) is { } failure)
                throw new InvalidOperationException($"A planned client failed: {failure.Message}", failure);
            var metrics = topology.Metrics;
            var events = topology.Events;
            var handoffs = events.Since(handoffsBefore).Where(e => e.Kind == TopologyEventKind.Handoff).Select(e => (int)e.Value).ToList();
            string ThreadOf(int order)
            {
                // A connection handed over goes to the worker its Handoff event names; otherwise the thread that accepted it reads it.
                int index = order < handoffs.Count ? handoffs[order] : metrics.Workers.FirstOrDefault(w => w.ConnectionsAccepted > 0)?.Index ?? -1;
                return metrics.Workers.FirstOrDefault(w => w.Index == index)?.Name ?? "?";
            }
            var outcomes = plan.Select((p, i) =>
            {
                var r = results[i]!;
                return new ConnectionOutcome(i, p.Label, p.Request.Path, ThreadOf(i), r.Completed, r.Errors.Total,
                    Math.Round(r.Latency.P50.TotalMilliseconds, 2), Math.Round(r.Latency.P90.TotalMilliseconds, 2), Math.Round(r.Latency.P99.TotalMilliseconds, 2));
            }).ToList();
            var run = new PlannedRun(topology.Name, elapsed, metrics, outcomes, Shares(metrics, events, elapsed));
            live?.Final(run.BusyChart());
            return run;
        }
        finally
        {
            cancel.Cancel();
            foreach (var t in threads) t?.Join(TimeSpan.FromSeconds(5));
            if (started) topology.Stop(Topologies.Topology.DefaultStopTimeout);
        }
    }

    static IReadOnlyList<ThreadShare> Shares(TopologyMetrics m, TopologyEvents events, TimeSpan elapsed)
    {
        var heavy = events.Snapshot().Where(e => e.Kind == TopologyEventKind.RequestStarted && e.Value > 0)
            .GroupBy(e => e.Worker).ToDictionary(g => g.Key, g => (long)g.Count());
        return m.Workers.Select(w => new ThreadShare(w.Name, w.Role, w.ConnectionsServed, w.RequestsServed, heavy.GetValueOrDefault(w.Index),
            Math.Round(w.BusyTime.TotalMilliseconds, 1), Math.Round(w.BusyTime / elapsed, 3))).ToList();
    }

    static Figure BusyChart(string topology, IReadOnlyList<ThreadShare> threads) => LabCharts.GroupedBars(
        $"{topology}: busy time per thread", "ms", threads.Select(t => t.Thread).ToList(),
        ("busy (ms)", threads.Select(t => t.BusyMs).ToList()));

    /// <summary>Busy time per thread (the dispatcher and each worker).</summary>
    public Figure BusyChart() => BusyChart(Topology, Threads);

    /// <summary>Per worker: connections, requests, and heavy requests it served, side by side.</summary>
    public Figure WorkerChart() => LabCharts.GroupedBars($"{Topology}: what each worker served", "count", Workers.Select(w => w.Thread).ToList(),
        ("connections", Workers.Select(w => (double)w.Connections).ToList()),
        ("requests", Workers.Select(w => (double)w.Requests).ToList()),
        ("heavy requests", Workers.Select(w => (double)w.HeavyRequests).ToList()));

    /// <summary>Each client connection's median and 99th percentile latency, labelled with the thread that served it.</summary>
    public Figure LatencyChart() => LabCharts.GroupedBars($"{Topology}: latency per client connection", "ms (from when each request was due)",
        Connections.Select(c => $"{c.Order}: {c.Label} → {c.Thread}").ToList(),
        ("p50", Connections.Select(c => c.P50Ms).ToList()),
        ("p99", Connections.Select(c => c.P99Ms).ToList()));

    /// <summary>The same plan under several topologies: each client connection's 90th percentile latency, one bar per run.</summary>
    public static Figure CompareLatency(params PlannedRun[] runs)
    {
        if (runs.Length == 0) throw new ArgumentException("Give at least one run to compare.", nameof(runs));
        var labels = runs[0].Connections.Select(c => $"{c.Order}: {c.Label}").ToList();
        return LabCharts.GroupedBars("p90 latency per client connection", "ms (from when each request was due)", labels,
            runs.Select(r => (r.Topology, (IReadOnlyList<double>)r.Connections.Select(c => c.P90Ms).ToList())).ToArray());
    }

    /// <summary>A short table: each thread's share.</summary>
    public override string ToString() =>
        $"{Topology}, {Elapsed.TotalSeconds:0.0} s, {Connections.Count} connections\n" +
        string.Join("\n", Threads.Select(t => $"  {t.Thread,-5} conns {t.Connections,3}  requests {t.Requests,6}  heavy {t.HeavyRequests,5}  busy {t.BusyMs,8:0} ms ({t.BusyFraction:P0})"));
}
