using Lab.Charts;
using Lab.Load;
using Lab.Topologies;

namespace Lab.Experiments;

/// <summary>
/// One acceptor variant under light load: how the connections spread over the threads that accept, and how often the
/// kernel woke a thread for nothing.
/// </summary>
/// <param name="Variant">How the threads waited for the one listening socket.</param>
/// <param name="PerThread">Connections each accepting thread took, by thread index (t0, t1... or acc0, acc1...).</param>
/// <param name="Connections">Connections accepted in all.</param>
/// <param name="WakeUps">Wake-ups in which a thread's wait returned something, over the accepting threads.</param>
/// <param name="EmptyWakeUps">Wake-ups for the listener whose accept4 said EAGAIN: another thread had taken the connection.</param>
/// <param name="SilentWakeUps">Voluntary context switches beyond one per wait: wake-ups epoll_wait took back without returning.</param>
/// <param name="Completed">Requests the load generator saw answered.</param>
/// <param name="Errors">Requests that failed on the client side.</param>
public sealed record AcceptorRow(AcceptorVariant Variant, IReadOnlyList<long> PerThread, long Connections, long WakeUps,
    long EmptyWakeUps, long SilentWakeUps, long Completed, long Errors)
{
    /// <summary>Wake-ups that found no connection: <see cref="EmptyWakeUps"/> + <see cref="SilentWakeUps"/>.</summary>
    public long Wasted => EmptyWakeUps + SilentWakeUps;

    /// <summary>Wasted wake-ups per accepted connection.</summary>
    public double WastedPerConnection => Connections == 0 ? 0 : (double)Wasted / Connections;

    /// <summary>The share of all connections taken by the busiest thread (1/threads when perfectly even).</summary>
    public double TopShare => Connections == 0 ? 0 : (double)PerThread.Max() / Connections;

    /// <summary>The index of the thread that took the most connections.</summary>
    public int BusiestThread => PerThread.Select((n, i) => (n, i)).MaxBy(p => p.n).i;
}

/// <summary>
/// Runs <see cref="SharedSocketAcceptors"/> once per variant under the same light load: a slow open-loop rate of
/// requests, each on a new connection, so every thread is idle in its wait when a connection arrives. The two things
/// the chapter measures come from the topology's own counters: connections per accepting thread (the spread) and
/// wake-ups that found nothing (the thundering herd).
/// </summary>
public sealed class AcceptorComparison
{
    AcceptorComparison(IReadOnlyList<AcceptorRow> rows, IReadOnlyList<TopologyRun> runs, int threads, double rate, TimeSpan duration)
    { Rows = rows; Runs = runs; Threads = threads; Rate = rate; Duration = duration; }

    /// <summary>One row per variant, in the order run.</summary>
    public IReadOnlyList<AcceptorRow> Rows { get; }
    /// <summary>The full runs (server table, client latencies, the accept queue), in the same order.</summary>
    public IReadOnlyList<TopologyRun> Runs { get; }
    /// <summary>Accepting threads per variant.</summary>
    public int Threads { get; }
    /// <summary>New connections per second.</summary>
    public double Rate { get; }
    /// <summary>How long each variant was loaded.</summary>
    public TimeSpan Duration { get; }

    /// <summary>The row of <paramref name="variant"/>.</summary>
    public AcceptorRow this[AcceptorVariant variant] => Rows.FirstOrDefault(r => r.Variant == variant)
        ?? throw new KeyNotFoundException($"{variant} was not run; run it with variants: [..., AcceptorVariant.{variant}].");

    /// <summary>
    /// Runs each of <paramref name="variants"/> (all five when null) with <paramref name="threads"/> accepting threads,
    /// <paramref name="rate"/> new connections per second for <paramref name="duration"/> (at most 10 s each).
    /// <paramref name="update"/>, when given, receives a line per finished variant (text, cheap to draw: a chart redrawn
    /// between runs costs seconds of CPU that the next run's threads would compete with).
    /// </summary>
    public static AcceptorComparison Run(int threads = 4, double rate = 50, TimeSpan? duration = null,
        IEnumerable<AcceptorVariant>? variants = null, Action<object>? update = null, TimeSpan? acceptMutexDelay = null)
    {
        var d = duration ?? TimeSpan.FromSeconds(2);
        if (threads is < 2 or > 16) throw new ArgumentOutOfRangeException(nameof(threads), threads, "Use 2 to 16 threads: the point is several threads on one socket.");
        if (rate is < 1 or > 2000) throw new ArgumentOutOfRangeException(nameof(rate), rate, "Use 1 to 2000 connections/s: light load means the threads are idle between connections.");
        if (d <= TimeSpan.Zero || d > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(nameof(duration), d, "Run each variant for more than 0 and at most 10 s.");
        var list = (variants ?? Enum.GetValues<AcceptorVariant>()).ToList();
        var rows = new List<AcceptorRow>();
        var runs = new List<TopologyRun>();
        foreach (var v in list)
        {
            using var topology = new SharedSocketAcceptors(new TopologyOptions { Workers = threads, RequestEvents = false }, v, acceptMutexDelay);
            var run = TopologyRunner.Run(topology, new LoadOptions { Rate = rate, KeepAlive = false, Duration = d, Connections = 8 });
            runs.Add(run);
            rows.Add(RowOf(v, run));
            update?.Invoke(string.Join("\n", rows.Select(r => $"{r.Variant}: {r.Connections} connections, per thread {string.Join(" / ", r.PerThread)}, wasted wake-ups {r.Wasted}")));
        }
        return new AcceptorComparison(rows, runs, threads, rate, d);
    }

    static AcceptorRow RowOf(AcceptorVariant v, TopologyRun run)
    {
        // BlockingAccept has acceptor threads (acc*) and reader threads (rd*); the readers never accept.
        var accepting = run.Server.Workers.Where(w => w.Role is WorkerRole.Loop or WorkerRole.Acceptor).OrderBy(w => w.Index).ToList();
        return new AcceptorRow(v, accepting.Select(w => w.ConnectionsAccepted).ToList(), accepting.Sum(w => w.ConnectionsAccepted),
            accepting.Sum(w => w.WakeUps), accepting.Sum(w => w.EmptyWakeUps), accepting.Sum(w => w.SilentWakeUps),
            run.Load.Completed, run.Load.Errors.Total);
    }

    static Figure SpreadChart(IReadOnlyList<AcceptorRow> rows, int threads, double rate)
    {
        var labels = rows.Select(r => r.Variant.ToString()).ToList();
        var groups = Enumerable.Range(0, threads)
            .Select(i => ($"thread {i}", (IReadOnlyList<double>)rows.Select(r => r.Connections == 0 ? 0 : 100.0 * r.PerThread[i] / r.Connections).ToList()))
            .ToArray();
        return LabCharts.GroupedBars($"Share of connections per accepting thread, {rate:0} new connections/s", "% of connections", labels, groups);
    }

    /// <summary>For each variant, the share of connections each accepting thread took (even is 100/threads %).</summary>
    public Figure SpreadChart() => SpreadChart(Rows, Threads, Rate);

    /// <summary>For each variant, the wake-ups per connection that found nothing: seen (EAGAIN) and hidden inside epoll_wait.</summary>
    public Figure WastedChart()
    {
        var labels = Rows.Select(r => r.Variant.ToString()).ToList();
        return LabCharts.GroupedBars($"Wake-ups for nothing per connection ({Threads} threads)", "per connection", labels,
            ("accept4 said EAGAIN (EmptyWakeUps)", Rows.Select(r => r.Connections == 0 ? 0 : (double)r.EmptyWakeUps / r.Connections).ToList()),
            ("woken and put back to sleep inside epoll_wait (SilentWakeUps)", Rows.Select(r => r.Connections == 0 ? 0 : (double)r.SilentWakeUps / r.Connections).ToList()));
    }
}
